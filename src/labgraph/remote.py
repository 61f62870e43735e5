"""A release on any SPARQL 1.1 server: publish it there, then query it like the embedded store.

One machine's embedded store stops being enough when several labgraph servers must share one
dataset, or when the data belongs on an existing triple store (Oxigraph server, Fuseki, GraphDB,
Virtuoso). Such a server holds each release in its own named graph, ``{base}/graph/{id}``; a tiny
pointer graph, ``{base}/graph/current``, names the graph being served. :func:`publish` loads the
new graph beside the old one with the Graph Store Protocol, checks its triple count, and only then
replaces the pointer with one request: readers see one complete release or the other, never half
of one. The previous release's graph is kept (engines still pinned to it finish their requests;
publishing it again rolls back); older ones are deleted.

:class:`RemoteEngine` offers the surface of :class:`labgraph.store.Engine` over the SPARQL 1.1
Protocol: the release graph is sent as ``default-graph-uri`` so users see the release as the
default graph, exactly as with the embedded store; the deadline, result cap and concurrency bound
are enforced on the client side, and every answer is parsed and serialised again by pyoxigraph, so
a cut-short answer is caught and the bytes match what the embedded engine writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import traceback
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pyoxigraph as ox

from . import formats, guard
from .guard import TOKEN
from .release import MANIFEST, Release
from .store import (
    Answer,
    Busy,
    Job,
    NotAcceptable,
    QueryError,
    QueryTimeout,
    ResultTooLarge,
    _CappedBuffer,
    result_format,
)

log = logging.getLogger("labgraph.remote")

#: Oxigraph server's endpoints; Fuseki uses ``/query`` (or ``/sparql``), ``/data`` and ``/update``.
DEFAULT_QUERY_PATH = "/query"
DEFAULT_GSP_PATH = "/store"

PROV_DERIVED = "http://www.w3.org/ns/prov#wasDerivedFrom"
DCT_IDENTIFIER = "http://purl.org/dc/terms/identifier"
DCT_CREATED = "http://purl.org/dc/terms/created"
DCT_ISSUED = "http://purl.org/dc/terms/issued"
SPDX_CHECKSUM_VALUE = "http://spdx.org/rdf/terms#checksumValue"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"

_JSON = "application/sparql-results+json"
_NTRIPLES = "application/n-triples"
#: What the engine asks the store for: lossless formats every SPARQL server writes.
_ACCEPT = f"{_JSON}, {_NTRIPLES};q=0.9, application/sparql-results+xml;q=0.5, text/turtle;q=0.4"
_KIND_OF_FORM = {"SELECT": "solutions", "ASK": "boolean", "CONSTRUCT": "graph", "DESCRIBE": "graph"}
#: A graph nothing is ever written to: the default graph of a query whose client names its own.
#: In the embedded store every graph but the release (the default graph) is empty; here the
#: pointer, the previous release and the release's own graph have names a client could give.
EMPTY_GRAPH = f"urn:uuid:{uuid.uuid4()}"
_UPLOAD_BATCH = 20_000
_ERROR_TEXT = 2000

Auth = httpx.Auth | tuple[str, str] | None


class PublishError(Exception):
    """Publishing failed; the pointer still names the release it named before."""


class StoreUnavailable(Exception):
    """The remote store could not be reached or answered wrongly: the operator's problem.

    ``status`` is what the web layer should answer: 503 when the store cannot be reached (retry
    later), 502 when it answered something unusable (a 5xx, a refused login, a malformed body).
    """

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Pointer:
    """What ``{base}/graph/current`` says: the release served and where its triples are."""

    release_id: str
    graph: str
    digest: str | None = None
    built: dt.datetime | None = None
    published: dt.datetime | None = None


def graph_iri(base: str, release_id: str) -> str:
    """The named graph holding one release's triples."""
    return f"{base.rstrip('/')}/graph/{release_id}"


def pointer_iri(base: str) -> str:
    """The pointer graph (also its own subject) naming the release being served."""
    return f"{base.rstrip('/')}/graph/current"


def endpoint(store_url: str, path: str) -> str:
    """``path`` under ``store_url``; an absolute ``http(s)://`` path is used as it is."""
    if path.startswith(("http://", "https://")):
        return path
    return store_url.rstrip("/") + path


def redact(url: str) -> str:
    """``url`` without user name or password, fit for messages and logs."""
    return str(httpx.URL(url).copy_with(username=None, password=None))


# --- reading answers --------------------------------------------------------------------------


def _raise_for_status(status: int, text: str, url: str, kind: str | None) -> NoReturn:
    """An HTTP error of the store as the engine's exception: the client's or the operator's."""
    message = " ".join(text.split())[:_ERROR_TEXT] or f"HTTP {status}"
    if status in (400, 413, 422):
        raise QueryError(message)
    if status == 406:
        raise NotAcceptable(kind or "solutions")
    if status in (408, 504):
        raise QueryTimeout()
    if status == 429:
        raise Busy()
    raise StoreUnavailable(
        f"{redact(url)} answered {status}: {message}", 503 if status == 503 else 502
    )


def _transport_error(err: httpx.TransportError, url: str) -> Exception:
    """A network failure as the engine's exception: no answer is a timeout or an outage."""
    detail = str(err) or type(err).__name__
    if isinstance(err, httpx.ConnectTimeout | httpx.ConnectError):
        return StoreUnavailable(f"cannot reach the store at {redact(url)}: {detail}", 503)
    if isinstance(err, httpx.TimeoutException):
        return QueryTimeout()
    return StoreUnavailable(f"the store at {redact(url)} failed: {detail}", 502)


def _too_big(response: httpx.Response, cap: int) -> bool:
    length = response.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) > cap


def _read_capped(chunks: Iterable[bytes], cap: int) -> bytes:
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > cap:
            raise ResultTooLarge(cap)
    return bytes(body)


async def _aread_capped(chunks: AsyncIterator[bytes], cap: int) -> bytes:
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > cap:
            raise ResultTooLarge(cap)
    return bytes(body)


def _cut_short(body: bytes) -> bool:
    """Whether the store stopped mid-answer on its own deadline (Oxigraph appends a note)."""
    tail = body[-400:].lower()
    return any(word in tail for word in (b"cancel", b"timeout", b"timed out"))


def _malformed(err: Exception, body: bytes) -> Exception:
    """A body that does not parse: cut short by the store's own deadline, or a broken store."""
    if _cut_short(body):
        return QueryTimeout()
    return StoreUnavailable(f"the store sent a malformed answer: {err}", 502)


def _parse(body: bytes, content_type: str) -> ox.QuerySolutions | ox.QueryBoolean | list[ox.Triple]:
    """The store's answer as pyoxigraph objects (solutions are parsed lazily, as they are read)."""
    media = content_type.split(";", 1)[0].strip().lower()
    results = formats.by_media_type(media, formats.RESULTS_FORMATS)
    graph = formats.by_media_type(media, formats.GRAPH_FORMATS)
    try:
        if results is not None and results.results is not None and results is not formats.CSV:
            return ox.parse_query_results(body, format=results.results)
        if graph is not None and graph.rdf is not None:
            return [
                q.triple if isinstance(q, ox.Quad) else q for q in ox.parse(body, format=graph.rdf)
            ]
    except (SyntaxError, ValueError) as err:
        raise _malformed(err, body) from None
    raise StoreUnavailable(
        f"the store answered with {media or 'no content type'}, which labgraph cannot read", 502
    )


def _rows(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """Solutions of a SELECT answer as {variable: term} dicts."""
    parsed = _parse(body, content_type)
    if not isinstance(parsed, ox.QuerySolutions):
        raise QueryError("expected a SELECT query's solutions")
    names = [v.value for v in parsed.variables]
    try:
        return [{n: row[n] for n in names} for row in parsed]
    except SyntaxError as err:
        raise _malformed(err, body) from None


def _serialize(body: bytes, content_type: str, job: Job, max_bytes: int) -> Answer:
    """The store's answer in the format the job asked for, as :func:`labgraph.store.execute`
    writes it: parsing checks the answer is whole, and the bytes match the embedded engine's.

    Runs in a worker thread. pyoxigraph's parsed results must be dropped by the thread that made
    them, so a failure forgets its frames here rather than carry the results to the event loop.
    """
    try:
        return _write(_parse(body, content_type), body, job, max_bytes)
    except Exception as err:
        seen: Exception | BaseException | None = err
        while seen is not None:
            traceback.clear_frames(seen.__traceback__)
            seen = seen.__context__
        raise


def _write(parsed: Any, body: bytes, job: Job, max_bytes: int) -> Answer:
    """``parsed`` written in the job's format, capped; ``body`` only serves to explain failures."""
    if isinstance(parsed, list):
        kind = "graph"
    else:
        kind = "boolean" if isinstance(parsed, ox.QueryBoolean) else "solutions"
    fmt, target = result_format(kind, job)
    buffer = _CappedBuffer(max_bytes)
    try:
        if kind == "graph":
            ox.serialize(parsed, buffer, format=target)
        else:
            parsed.serialize(buffer, format=target)
    except ResultTooLarge:
        raise
    except SyntaxError as err:  # lazily parsed solutions fail while they are written
        raise _malformed(err, body) from None
    except OSError as err:
        if isinstance(err.__context__, ResultTooLarge) or "ResultTooLarge" in repr(err):
            raise ResultTooLarge(max_bytes) from None
        raise StoreUnavailable(f"cannot write the store's answer: {err}", 502) from None
    return Answer(kind, fmt.name, bytes(buffer.data))


# --- rewriting trusted queries ------------------------------------------------------------------

_ABSOLUTE = re.compile(r"<[A-Za-z][A-Za-z0-9+.\-]*:")
_PREFIX_NAME = re.compile(r"(?:[A-Za-z](?:[\w.-]*[\w-])?)?")


def _tokens(text: str) -> Iterator[re.Match[str]]:
    return (m for m in TOKEN.finditer(text) if m.lastgroup not in ("comment", "string"))


def _with_base(query: str, base_iri: str | None) -> str:
    """The query with ``BASE`` declared when it has relative IRIs (the protocol has no base).

    Only then: the added line would shift the line numbers in the store's syntax errors.
    """
    if not base_iri:
        return query
    relative = any(m.lastgroup == "iri" and not _ABSOLUTE.match(m.group()) for m in _tokens(query))
    return f"BASE {ox.NamedNode(base_iri)}\n{query}" if relative else query


def _with_prefixes(query: str, prefixes: Mapping[str, str]) -> str:
    """The query after ``PREFIX`` declarations, like pyoxigraph's ``prefixes`` argument."""
    lines = []
    for name, iri in prefixes.items():
        if not _PREFIX_NAME.fullmatch(name):
            raise ValueError(f"invalid SPARQL prefix name {name!r}")
        lines.append(f"PREFIX {name}: {ox.NamedNode(iri)}\n")
    return "".join(lines) + query


def _sparql_term(term: Any) -> str:
    """A term in SPARQL syntax: pyoxigraph's N-Triples form, escaped by pyoxigraph itself."""
    if isinstance(term, ox.NamedNode | ox.Literal):
        return str(term)
    raise ValueError(f"cannot send {term!r} to a remote store (IRIs and literals only)")


def _where_brace(query: str) -> int:
    """Offset just after the ``{`` opening the query's WHERE group (after a CONSTRUCT template)."""
    tokens = list(_tokens(query))
    i = 0
    while i < len(tokens) and not (
        tokens[i].lastgroup == "word" and tokens[i].group().upper() in _KIND_OF_FORM
    ):
        i += 1
    if i == len(tokens):
        raise ValueError("not a SPARQL query: no SELECT, ASK, CONSTRUCT or DESCRIBE")
    form = tokens[i].group().upper()
    i += 1
    if form == "CONSTRUCT" and i < len(tokens) and tokens[i].group() == "{":
        depth = 0
        while i < len(tokens):  # skip the template
            depth += {"{": 1, "}": -1}.get(tokens[i].group(), 0)
            i += 1
            if depth == 0:
                break
    while i < len(tokens):
        if tokens[i].group() == "{":
            return tokens[i].end()
        i += 1
    raise ValueError(f"{form} query without a WHERE group: nothing to substitute into")


def substitute(query: str, substitutions: Mapping[ox.Variable, Any]) -> str:
    """``query`` with variables bound up front, like pyoxigraph's ``substitutions`` argument.

    A ``VALUES`` block opens the WHERE group, so the store binds the variables before anything
    else (and uses them to pick its index); terms are written in pyoxigraph's own escaped form,
    so no value can change the query's structure. Blank nodes cannot be sent.
    """
    if not substitutions:
        return query
    names = " ".join(str(ox.Variable(v.value)) for v in substitutions)
    values = " ".join(_sparql_term(t) for t in substitutions.values())
    at = _where_brace(query)
    return f"{query[:at]} VALUES ({names}) {{ ({values}) }} {query[at:]}"


# --- synchronous calls (publishing, trusted queries) ------------------------------------------


def _query_sync(
    client: httpx.Client, url: str, form: dict[str, Any], accept: str, cap: int
) -> tuple[bytes, str]:
    try:
        with client.stream("POST", url, data=form, headers={"Accept": accept}) as response:
            if response.status_code != 200:
                text = _read_error(response.iter_bytes())
                _raise_for_status(response.status_code, text, url, None)
            if _too_big(response, cap):
                raise ResultTooLarge(cap)
            body = _read_capped(response.iter_bytes(), cap)
            return body, response.headers.get("content-type", "")
    except httpx.TransportError as err:
        raise _transport_error(err, url) from None


def _read_error(chunks: Iterable[bytes]) -> str:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > _ERROR_TEXT:
            break
    return data.decode("utf-8", "replace")


def _select(
    client: httpx.Client, url: str, query: str, *, cap: int = 1 << 26
) -> list[dict[str, Any]]:
    return _rows(*_query_sync(client, url, {"query": query}, _JSON, cap))


def _pointer_query(base: str) -> str:
    p = ox.NamedNode(pointer_iri(base))
    return f"""SELECT ?graph ?id ?digest ?built ?issued WHERE {{ GRAPH {p} {{
      {p} <{PROV_DERIVED}> ?graph .
      OPTIONAL {{ {p} <{DCT_IDENTIFIER}> ?id }}
      OPTIONAL {{ {p} <{SPDX_CHECKSUM_VALUE}> ?digest }}
      OPTIONAL {{ {p} <{DCT_CREATED}> ?built }}
      OPTIONAL {{ {p} <{DCT_ISSUED}> ?issued }} }} }}"""


def _datetime(term: Any) -> dt.datetime | None:
    if term is None:
        return None
    try:
        return dt.datetime.fromisoformat(term.value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _read_pointer(client: httpx.Client, query_url: str, base: str) -> Pointer | None:
    rows = _select(client, query_url, _pointer_query(base))
    graphs = {row["graph"].value for row in rows if isinstance(row["graph"], ox.NamedNode)}
    if not graphs:
        return None
    if len(graphs) > 1:
        raise StoreUnavailable(f"{pointer_iri(base)} names {len(graphs)} graphs; it must name one")
    row = rows[0]
    graph = graphs.pop()
    prefix = graph_iri(base, "")
    release_id = row["id"].value if row["id"] is not None else graph.removeprefix(prefix)
    return Pointer(
        release_id,
        graph,
        row["digest"].value if row["digest"] is not None else None,
        _datetime(row["built"]),
        _datetime(row["issued"]),
    )


def read_pointer(
    store_url: str,
    base: str,
    *,
    query_path: str = DEFAULT_QUERY_PATH,
    timeout: float = 30,
    auth: Auth = None,
) -> Pointer | None:
    """The release a store serves for ``base``, or None when nothing was published there.

    The server's release watcher calls this to notice a new publication; raises
    :class:`StoreUnavailable` when the store cannot answer.
    """
    with httpx.Client(timeout=timeout, auth=auth) as client:
        return _read_pointer(client, endpoint(store_url, query_path), base)


def _count_graph(client: httpx.Client, query_url: str, graph: str) -> int:
    query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {ox.NamedNode(graph)} {{ ?s ?p ?o }} }}"
    rows = _select(client, query_url, query)
    return int(rows[0]["n"].value) if rows and rows[0]["n"] is not None else 0


def _manifest_digest(release: Release) -> str:
    return hashlib.sha256((release.path / MANIFEST).read_bytes()).hexdigest()


def _ntriples_chunks(path: Path, seen: list[int]) -> Iterator[bytes]:
    """The release's triples as N-Triples, in batches (named graphs are merged into one)."""
    batch: list[ox.Triple] = []
    for quad in ox.parse(path=str(path), format=ox.RdfFormat.N_QUADS):
        batch.append(quad.triple)
        if len(batch) >= _UPLOAD_BATCH:
            seen[0] += len(batch)
            yield ox.serialize(batch, format=ox.RdfFormat.N_TRIPLES)
            batch = []
    seen[0] += len(batch)
    if batch:
        yield ox.serialize(batch, format=ox.RdfFormat.N_TRIPLES)


def _gsp(
    client: httpx.Client,
    method: str,
    gsp_url: str,
    graph: str,
    content: bytes | Iterator[bytes] | None = None,
    ok: tuple[int, ...] = (),
) -> None:
    """One Graph Store Protocol request; anything but success is a :class:`PublishError`."""
    headers = {"Content-Type": _NTRIPLES} if content is not None else {}
    try:
        response = client.request(
            method, gsp_url, params={"graph": graph}, content=content, headers=headers
        )
    except httpx.TransportError as err:
        raise PublishError(
            f"{method} {redact(gsp_url)} (graph {graph}) failed: {str(err) or type(err).__name__}"
        ) from None
    if not (response.is_success or response.status_code in ok):
        text = " ".join(response.text.split())[:_ERROR_TEXT]
        raise PublishError(
            f"{method} {redact(gsp_url)} (graph {graph}) answered "
            f"{response.status_code}: {text or response.reason_phrase}"
        )


def _pointer_triples(base: str, release: Release, graph: str, digest: str) -> list[ox.Triple]:
    p = ox.NamedNode(pointer_iri(base))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    xsd_datetime = ox.NamedNode(XSD_DATETIME)
    triples = [
        ox.Triple(p, ox.NamedNode(PROV_DERIVED), ox.NamedNode(graph)),
        ox.Triple(p, ox.NamedNode(DCT_IDENTIFIER), ox.Literal(release.id)),
        ox.Triple(p, ox.NamedNode(SPDX_CHECKSUM_VALUE), ox.Literal(digest)),
        ox.Triple(p, ox.NamedNode(DCT_ISSUED), ox.Literal(now, datatype=xsd_datetime)),
    ]
    built = release.manifest.get("built")
    if built:
        triples.append(
            ox.Triple(p, ox.NamedNode(DCT_CREATED), ox.Literal(str(built), datatype=xsd_datetime))
        )
    return triples


def _switch(
    client: httpx.Client,
    *,
    gsp_url: str,
    update_url: str | None,
    base: str,
    triples: list[ox.Triple],
) -> None:
    """Replace the pointer graph with one request: the single moment readers can notice."""
    data = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
    pointer = pointer_iri(base)
    if update_url is None:
        _gsp(client, "PUT", gsp_url, pointer, data)
        return
    p = ox.NamedNode(pointer)
    update = f"DROP SILENT GRAPH {p} ;\nINSERT DATA {{ GRAPH {p} {{\n{data.decode()}}} }}"
    try:
        response = client.post(update_url, data={"update": update})
    except httpx.TransportError as err:
        detail = str(err) or type(err).__name__
        raise PublishError(f"POST {redact(update_url)} failed: {detail}") from None
    if not response.is_success:
        text = " ".join(response.text.split())[:_ERROR_TEXT]
        raise PublishError(
            f"POST {redact(update_url)} (switching {pointer}) answered "
            f"{response.status_code}: {text or response.reason_phrase}"
        )


def _prune(
    client: httpx.Client, *, query_url: str, gsp_url: str, base: str, keep: set[str]
) -> list[str]:
    """Delete the release graphs under ``{base}/graph/`` other than ``keep``; returns them."""
    prefix = graph_iri(base, "")
    rows = _select(client, query_url, "SELECT DISTINCT ?g WHERE { GRAPH ?g { } }")
    old = sorted(
        row["g"].value
        for row in rows
        if isinstance(row["g"], ox.NamedNode)
        and row["g"].value.startswith(prefix)
        and row["g"].value not in keep
    )
    for graph in old:
        _gsp(client, "DELETE", gsp_url, graph, ok=(404,))
    return old


def publish(
    release: Release,
    store_url: str,
    *,
    timeout: float = 300,
    query_path: str = DEFAULT_QUERY_PATH,
    gsp_path: str = DEFAULT_GSP_PATH,
    update_path: str | None = None,
    auth: Auth = None,
) -> str:
    """Load ``release`` into the store at ``store_url`` and serve it there; returns its graph IRI.

    The triples of ``labgraph.nq`` go into a new graph ``{base}/graph/{id}`` (Graph Store
    Protocol PUT), whose triple count must then equal the manifest's; only then is the pointer
    ``{base}/graph/current`` replaced, by a GSP PUT or, with ``update_path``, one SPARQL Update
    request. Graphs older than the previous release are deleted afterwards. Any failure raises
    :class:`PublishError` with the store's own message and leaves the pointer as it was; a graph
    whose load failed is deleted. Publishing the current release again changes nothing;
    publishing the previous one again is a rollback. One publisher at a time per base.
    """
    base = str(release.manifest["base"]).rstrip("/")
    graph = graph_iri(base, release.id)
    query_url = endpoint(store_url, query_path)
    gsp_url = endpoint(store_url, gsp_path)
    update_url = endpoint(store_url, update_path) if update_path is not None else None
    digest = _manifest_digest(release)
    announced = release.manifest.get("counts", {}).get("triples")
    http_timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
    with httpx.Client(timeout=http_timeout, auth=auth) as client:
        try:
            before = _read_pointer(client, query_url, base)
            if before is not None and before.graph == graph:
                found = _count_graph(client, query_url, graph)
                if before.digest == digest and (announced is None or found == int(announced)):
                    log.info("%s already serves %s", redact(store_url), release.id)
                    return graph
                raise PublishError(
                    f"{graph} is the graph being served at {redact(store_url)} "
                    "and does not match this release; publish another release "
                    "first, or delete that graph by hand"
                )
            _load(
                client,
                release,
                graph,
                gsp_url=gsp_url,
                query_url=query_url,
                where=redact(store_url),
            )
            _switch(
                client,
                gsp_url=gsp_url,
                update_url=update_url,
                base=base,
                triples=_pointer_triples(base, release, graph, digest),
            )
            after = _read_pointer(client, query_url, base)
            if after is None or after.graph != graph:
                raise PublishError(
                    f"{pointer_iri(base)} at {redact(store_url)} does not name "
                    f"{graph} after the switch"
                )
            keep = {pointer_iri(base), graph, *([before.graph] if before else [])}
            try:
                removed = _prune(client, query_url=query_url, gsp_url=gsp_url, base=base, keep=keep)
            except (PublishError, StoreUnavailable, QueryError, QueryTimeout) as err:
                log.warning("published %s, but old graphs were not deleted: %s", release.id, err)
            else:
                if removed:
                    log.info("deleted old release graphs: %s", ", ".join(removed))
        except (StoreUnavailable, QueryError, QueryTimeout, ResultTooLarge) as err:
            raise PublishError(
                f"publishing {release.id} to {redact(store_url)} failed: "
                f"{str(err) or type(err).__name__}"
            ) from None
    log.info("%s now serves %s (%s)", redact(store_url), release.id, graph)
    return graph


def _load(
    client: httpx.Client, release: Release, graph: str, *, gsp_url: str, query_url: str, where: str
) -> None:
    """Upload the release into ``graph`` and check its count; on failure, delete the graph."""
    announced = release.manifest.get("counts", {}).get("triples")
    seen = [0]
    try:
        _gsp(client, "PUT", gsp_url, graph, _ntriples_chunks(release.file("labgraph.nq"), seen))
        expected = int(announced) if announced is not None else seen[0]
        found = _count_graph(client, query_url, graph)
        if found != expected:
            raise PublishError(
                f"{graph}: the store at {where} holds {found} triples after the "
                f"load, the release has {expected}; the pointer was not switched"
            )
    except (
        PublishError,
        StoreUnavailable,
        QueryError,
        QueryTimeout,
        ResultTooLarge,
        SyntaxError,
        OSError,
    ) as err:
        _drop_quietly(client, gsp_url, graph)
        if isinstance(err, PublishError):
            raise
        if isinstance(err, SyntaxError):
            raise PublishError(
                f"{release.file('labgraph.nq')}: not valid N-Quads: {err}; "
                "the pointer was not switched"
            ) from None
        raise PublishError(
            f"loading {graph} into {where} failed: {err}; the pointer was not switched"
        ) from None


def _drop_quietly(client: httpx.Client, gsp_url: str, graph: str) -> None:
    """Delete a graph whose load failed; if that fails too, the next publication's prune will."""
    try:
        _gsp(client, "DELETE", gsp_url, graph, ok=(404,))
    except PublishError as err:
        log.warning("could not delete the failed graph %s: %s", graph, err)


# --- the engine ---------------------------------------------------------------------------------


class RemoteEngine:
    """The query engine of one release held by a remote SPARQL 1.1 server.

    Same surface as :class:`labgraph.store.Engine`. The engine is pinned to one release graph (the
    pointer's at :meth:`start`, or ``release_id``): a publication elsewhere never changes data
    under it; the server makes a new engine when :func:`read_pointer` names another release. The
    deadline stops waiting and drops the connection; for the store to stop computing as well, give
    it its own deadline (``oxigraph serve --timeout-s``, Fuseki ``arq:queryTimeout``).
    """

    #: Trusted helpers are HTTP round trips: callers in the event loop use a thread.
    blocking = True

    def __init__(
        self,
        store_url: str,
        *,
        base: str,
        timeout: float = 30,
        max_bytes: int = 50_000_000,
        max_concurrent: int = 4,
        queue_wait: float = 5,
        release_id: str | None = None,
        query_path: str = DEFAULT_QUERY_PATH,
        auth: Auth = None,
        max_wire_bytes: int | None = None,
        connect_timeout: float = 5,
    ) -> None:
        """``max_wire_bytes`` caps the store's answer (default 4 × ``max_bytes``: SPARQL JSON is
        wordier than CSV); ``max_bytes`` caps what the client gets, as in the embedded engine."""
        self.store_url = store_url
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_wire_bytes = max_wire_bytes or 4 * max_bytes
        self.max_concurrent = max_concurrent
        self.queue_wait = queue_wait
        self.query_url = endpoint(store_url, query_path)
        self.pointer: Pointer | None = None
        self._release_id = release_id
        self._auth = auth
        self._timeouts = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self._limits = httpx.Limits(
            max_connections=max_concurrent, max_keepalive_connections=max_concurrent
        )
        self._sync = httpx.Client(timeout=self._timeouts, auth=auth)
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(max_concurrent)
        self._in_flight = 0
        self.timeouts = 0

    @property
    def release_id(self) -> str:
        """The release this engine serves (from the pointer graph unless given)."""
        if self._release_id is None:
            raise RuntimeError("start() the engine first: the release is read from the pointer")
        return self._release_id

    @property
    def graph(self) -> str:
        """The named graph holding the release, sent as the default graph of every query."""
        return self.pointer.graph if self.pointer else graph_iri(self.base, self.release_id)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def start(self) -> None:
        """Open the connection pool and, unless pinned, read which release the store serves.

        Raises :class:`StoreUnavailable` when the store cannot be reached or serves nothing.
        """
        if self._release_id is None:
            pointer = await asyncio.to_thread(_read_pointer, self._sync, self.query_url, self.base)
            if pointer is None:
                raise StoreUnavailable(
                    f"nothing is published for {self.base} at "
                    f"{redact(self.query_url)} (no {pointer_iri(self.base)})",
                    503,
                )
            self.pointer, self._release_id = pointer, pointer.release_id
        self._client = httpx.AsyncClient(
            timeout=self._timeouts, limits=self._limits, auth=self._auth
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._sync.close()

    def _dataset(
        self, defaults: Iterable[str] = (), named: Iterable[str] = (), *, from_clause: bool = False
    ) -> dict[str, Any]:
        """Protocol dataset: the release as default graph unless the job names its own graphs.

        A default graph the client names (``default-graph-uri``, or ``FROM`` in the query) is
        empty, as it is in the embedded store, whatever the store holds under that name (the
        pointer, another release). Named graphs alone keep the release as the default graph, as
        the embedded engine does.
        """
        defaults, named = list(defaults), list(named)
        empty = bool(defaults) or (from_clause and not named)
        form: dict[str, Any] = {"default-graph-uri": [EMPTY_GRAPH if empty else self.graph]}
        if named:
            form["named-graph-uri"] = named
        return form

    async def run(self, job: Job) -> Answer:
        """A public query, with its deadline, the result cap and the concurrency bound."""
        if self._client is None:
            raise RuntimeError("start() the engine first")
        info = guard.inspect(job.query)
        if info.refusal:  # the store would run updates and follow SERVICE: never forward them
            raise QueryError(info.refusal)
        kind = _KIND_OF_FORM.get(info.form or "")
        if kind is not None:  # refuse before spending the store's time, as a 406 would
            _check_acceptable(kind, job)
        try:
            async with asyncio.timeout(self.queue_wait):
                await self._slots.acquire()
        except TimeoutError:
            raise Busy() from None
        self._in_flight += 1
        try:
            body, content_type = await self._fetch(job, kind, info.names_graphs)
            return await asyncio.to_thread(_serialize, body, content_type, job, self.max_bytes)
        finally:
            self._in_flight -= 1
            self._slots.release()

    async def _fetch(
        self, job: Job, kind: str | None, from_clause: bool = False
    ) -> tuple[bytes, str]:
        assert self._client is not None
        form = {
            "query": _with_base(job.query, job.base_iri),
            **self._dataset(job.default_graphs, job.named_graphs, from_clause=from_clause),
        }
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream(
                    "POST", self.query_url, data=form, headers={"Accept": _ACCEPT}
                ) as response:
                    if response.status_code != 200:
                        text = await _aread_error(response)
                        _raise_for_status(response.status_code, text, self.query_url, kind)
                    if _too_big(response, self.max_wire_bytes):
                        raise ResultTooLarge(self.max_bytes)
                    try:
                        body = await _aread_capped(response.aiter_bytes(), self.max_wire_bytes)
                    except ResultTooLarge:
                        raise ResultTooLarge(self.max_bytes) from None
                    return body, response.headers.get("content-type", "")
        except TimeoutError:
            self.timeouts += 1
            raise QueryTimeout() from None
        except httpx.TransportError as err:
            mapped = _transport_error(err, self.query_url)
            if isinstance(mapped, QueryTimeout):
                self.timeouts += 1
            raise mapped from None

    # Trusted helpers: blocking HTTP calls (httpx.Client). From async code, run them in a thread
    # (asyncio.to_thread): each is a network round trip, not the microseconds of the local store.

    def _query(self, query: str, accept: str, kwargs: dict[str, Any]) -> tuple[bytes, str]:
        substitutions = kwargs.pop("substitutions", None)
        prefixes = kwargs.pop("prefixes", None)
        base_iri = kwargs.pop("base_iri", None)
        if kwargs:
            raise TypeError(f"a remote store does not take {', '.join(sorted(kwargs))}")
        text = substitute(query, substitutions or {})
        text = _with_base(_with_prefixes(text, prefixes or {}), base_iri)
        return _query_sync(
            self._sync,
            self.query_url,
            {"query": text, **self._dataset()},
            accept,
            self.max_wire_bytes,
        )

    def select(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Rows of a trusted SELECT, as {variable: term} dicts (blocking: see above).

        Takes ``substitutions={Variable: term}``, ``prefixes`` and ``base_iri`` like pyoxigraph.
        """
        return _rows(*self._query(query, _JSON, kwargs))

    def triples(self, query: str, **kwargs: Any) -> list[ox.Triple]:
        """Triples of a trusted CONSTRUCT or DESCRIBE (blocking; same arguments as select)."""
        parsed = _parse(*self._query(query, f"{_NTRIPLES}, text/turtle;q=0.5", kwargs))
        if not isinstance(parsed, list):
            raise QueryError("triples() needs a CONSTRUCT or DESCRIBE query")
        return parsed

    def exists(self, iri: str) -> bool:
        """Whether the release says anything about ``iri`` (as a subject); blocking."""
        parsed = _parse(*self._query(f"ASK {{ {ox.NamedNode(iri)} ?p ?o }}", _JSON, {}))
        return bool(parsed)

    def count(self) -> int:
        """Triples in the release graph (blocking)."""
        rows = self.select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        return int(rows[0]["n"].value)

    def graphs(self) -> list[str]:
        """Named graphs users can query besides the default one: none, as in the embedded
        store (the release is merged into one graph); asked of the store all the same."""
        rows = self.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { } } ORDER BY ?g")
        return [row["g"].value for row in rows if isinstance(row["g"], ox.NamedNode)]


def _check_acceptable(kind: str, job: Job) -> None:
    if kind == "graph":
        fmt = formats.by_extension(job.graph_format or "", formats.GRAPH_FORMATS)
        ok = job.graph_format is not None and fmt is not None and fmt.rdf is not None
    else:
        fmt = formats.by_extension(job.results_format or "", formats.RESULTS_FORMATS)
        ok = job.results_format is not None and fmt is not None and fmt.results is not None
        if kind == "boolean" and fmt is not None and fmt.name in ("csv", "tsv"):
            ok = False
    if not ok:
        raise NotAcceptable(kind)


async def _aread_error(response: httpx.Response) -> str:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > _ERROR_TEXT:
            break
    return data.decode("utf-8", "replace")
