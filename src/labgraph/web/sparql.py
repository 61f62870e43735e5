"""The SPARQL 1.1 Protocol endpoint, read-only, with deadlines, caps and content negotiation.

GET, POST form and POST direct; ``default-graph-uri`` / ``named-graph-uri``; every standard
result format chosen from the Accept header (406 lists what is offered). Updates, LOAD and
SERVICE are refused before the engine sees them. Queries run in killable worker processes
(:mod:`labgraph.store`); a query past its deadline gets 503 and its CPU back.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from urllib.parse import parse_qs

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import formats, guard
from ..remote import StoreUnavailable
from ..store import Answer, Busy, Job, NotAcceptable, QueryError, QueryTimeout, ResultTooLarge
from ..vocab import expand
from . import pages
from .conneg import NegotiationError, negotiate, offered_list
from .http import ByteCache, error, etag_for, not_modified, validators
from .observability import SPARQL_QUERY_STATE
from .runtime import Published

log = logging.getLogger("labgraph.sparql")
router = APIRouter()

SD = "http://www.w3.org/ns/sparql-service-description#"
W3C_FORMATS = "http://www.w3.org/ns/formats/"
_W3C_FORMAT_NAMES = {
    "turtle": "Turtle",
    "ntriples": "N-Triples",
    "nquads": "N-Quads",
    "trig": "TriG",
    "jsonld": "JSON-LD",
    "rdfxml": "RDF_XML",
    "json": "SPARQL_Results_JSON",
    "xml": "SPARQL_Results_XML",
    "csv": "SPARQL_Results_CSV",
    "tsv": "SPARQL_Results_TSV",
}
SD_FORMATS = (*formats.GRAPH_FORMATS, formats.HTML)
#: What each query form's result can be written in. CSV and TSV have no boolean form (the W3C
#: CSV/TSV results note defines only solutions), so an ASK is offered as JSON and XML.
BOOLEAN_FORMATS = (formats.SPARQL_JSON, formats.SPARQL_XML)
OFFERS: dict[str, tuple[formats.Format, ...]] = {
    "SELECT": formats.RESULTS_FORMATS,
    "ASK": BOOLEAN_FORMATS,
    "CONSTRUCT": formats.GRAPH_FORMATS,
    "DESCRIBE": formats.GRAPH_FORMATS,
}
_FORM_OF_KIND = {"solutions": "SELECT", "boolean": "ASK", "graph": "CONSTRUCT"}
_FORM = "application/x-www-form-urlencoded"
_DIRECT = "application/sparql-query"
_UPDATE = "application/sparql-update"

RESPONSES = {
    200: {
        "description": "Query results (SELECT/ASK) or an RDF graph (CONSTRUCT/DESCRIBE); "
        "without a query, the SPARQL service description.",
        "content": {f.media_type: {} for f in (*formats.RESULTS_FORMATS, *SD_FORMATS)},
    },
    400: {
        "description": "Malformed query or request (the parser's message)",
        "content": {"text/plain": {}},
    },
    403: {
        "description": "SPARQL Update is refused: the endpoint is read-only",
        "content": {"text/plain": {}},
    },
    406: {
        "description": "No acceptable format; the body lists those offered",
        "content": {"text/plain": {}},
    },
    413: {"description": "Query or body too large", "content": {"text/plain": {}}},
    415: {
        "description": "Unsupported request media type or charset",
        "content": {"text/plain": {}},
    },
    422: {"description": "Result larger than the configured cap", "content": {"text/plain": {}}},
    503: {
        "description": "Query stopped at its deadline, or every worker busy (Retry-After)",
        "content": {"text/plain": {}},
    },
}


class ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_GRAPH_PARAMS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "style": "form",
        "explode": True,
        "description": description,
        "schema": {"type": "array", "items": {"type": "string"}},
    }
    for name, description in (
        ("default-graph-uri", "IRI of a graph forming the default graph (repeatable)"),
        ("named-graph-uri", "IRI of a named graph of the dataset (repeatable)"),
    )
]
_FORMAT_PARAM = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "result format by extension or media type, instead of Accept",
    "schema": {"type": "string"},
}
QUERY_GET = {
    "parameters": [
        {
            "name": "query",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "SPARQL 1.1 query; without it, the service description",
        },
        *_GRAPH_PARAMS,
        _FORMAT_PARAM,
    ]
}
QUERY_POST = {
    "parameters": [*_GRAPH_PARAMS, _FORMAT_PARAM],
    "requestBody": {
        "required": True,
        "content": {
            "application/sparql-query": {"schema": {"type": "string"}},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["query"],
                    "properties": {
                        "query": {"type": "string"},
                        "default-graph-uri": {"type": "array", "items": {"type": "string"}},
                        "named-graph-uri": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
    },
}


@router.api_route(
    "/sparql",
    methods=["GET", "HEAD"],
    responses=RESPONSES,
    summary="SPARQL 1.1 Protocol endpoint (read-only): query in the URL",
    response_class=Response,
    openapi_extra=QUERY_GET,
)
@router.api_route(
    "/sparql",
    methods=["POST"],
    responses=RESPONSES,
    summary="SPARQL 1.1 Protocol endpoint (read-only): query in the body",
    response_class=Response,
    openapi_extra=QUERY_POST,
)
@router.api_route(
    "/sparql/", methods=["GET", "HEAD", "POST"], include_in_schema=False, response_class=Response
)
async def sparql(request: Request) -> Response:
    runtime = request.app.state.runtime
    settings = runtime.settings
    try:
        query, defaults, named = await _read_request(request, settings.max_query_bytes)
    except ProtocolError as err:
        return error(err.status, err.message)
    if query is not None:
        request.scope.setdefault("state", {})[SPARQL_QUERY_STATE] = query
    async with runtime.use() as published:
        if query is None:
            return _describe_service(request, published)
        if len(query.encode("utf-8")) > settings.max_query_bytes:
            return error(413, f"query larger than {settings.max_query_bytes} bytes")
        info = guard.inspect(query)
        if info.refusal:
            return error(403 if info.is_update else 400, info.refusal)
        format_param = request.query_params.getlist("format")
        accept = request.headers.get("accept")
        if not format_param and info.form in ("SELECT", "ASK") and _wants_html(accept):
            return await pages.sparql_page(request, published, query)
        offers = OFFERS.get(info.form or "")
        if offers is not None:  # negotiate among what this form can be written in
            try:
                fmt = negotiate(accept, offers, format_param=format_param)
            except NegotiationError as err:
                return error(400, err.message) if err.status == 400 else _not_acceptable(offers)
            graph = offers is formats.GRAPH_FORMATS
            results_fmt, graph_fmt = (None, fmt) if graph else (fmt, None)
        else:  # not a query the guard recognises: the engine's parser will say why (400)
            try:
                results_fmt = _maybe(accept, formats.RESULTS_FORMATS, format_param)
                graph_fmt = _maybe(accept, formats.GRAPH_FORMATS, format_param)
            except NegotiationError as err:
                return error(err.status, err.message)
        # Relative IRIs in a query resolve against the endpoint as reached (SPARQL 1.1
        # Protocol: the service-defined BASE "MAY be the service endpoint").
        job = Job(
            query,
            tuple(defaults),
            tuple(named),
            results_fmt.name if results_fmt else None,
            graph_fmt.name if graph_fmt else None,
            base_iri=_endpoint(request),
        )
        etag = etag_for(published, "sparql", repr(job))
        headers = validators(published, etag)
        headers["Vary"] = "Accept"
        if info.volatile:  # NOW(), RAND()…: a new answer each time, never a cached one
            headers.pop("ETag", None)
            headers["Cache-Control"] = "no-store"
        elif request.method in ("GET", "HEAD") and not_modified(request, etag, published.modified):
            return Response(status_code=304, headers=headers)
        results: ByteCache = request.app.state.results
        cached = None if info.volatile else results.get((published.id, job))
        try:
            if cached is not None:  # a release never changes: nor does a query's answer on it
                fmt_name, _, body = cached.partition(b"\n")
                answer = Answer("cached", fmt_name.decode(), body)
            else:
                answer = await published.engine.run(job)
                if not info.volatile:
                    results.put((published.id, job), answer.format.encode() + b"\n" + answer.body)
        except QueryError as err:
            return error(400, f"malformed or unsupported query: {err}")
        except QueryTimeout:
            log.warning("query stopped at its %ss deadline", settings.query_timeout)
            return error(
                503,
                f"query stopped: it ran longer than the {settings.query_timeout:g}"
                " s limit of this endpoint. Narrow it (LIMIT, filters) or download "
                "the dumps.",
                {"Retry-After": "5"},
            )
        except Busy:
            return error(503, "every query worker is busy; retry shortly", {"Retry-After": "1"})
        except ResultTooLarge:
            return error(
                422,
                f"the result is larger than {settings.max_result_bytes} bytes, "
                "the cap of this endpoint: add LIMIT/OFFSET or download the dumps",
            )
        except NotAcceptable as err:
            return _not_acceptable(OFFERS[_FORM_OF_KIND[err.kind]])
        except StoreUnavailable as err:
            return error(
                err.status, f"the SPARQL store is unavailable: {err}", {"Retry-After": "5"}
            )
        fmt = formats.by_extension(answer.format)
        assert fmt is not None
        if request.method == "POST":
            headers.pop("ETag", None)
            headers["Cache-Control"] = "no-store"
        return Response(answer.body, media_type=fmt.content_type, headers=headers)


def _endpoint(request: Request) -> str:
    """The endpoint URL the client used, without its query string."""
    return str(request.url.replace(query="", fragment=""))


def _wants_html(accept: str | None) -> bool:
    if not accept or "text/html" not in accept:
        return False
    try:
        best = negotiate(accept, (formats.HTML, *formats.RESULTS_FORMATS))
    except NegotiationError:
        return False
    return best is formats.HTML


def _maybe(
    accept: str | None, offers: Sequence[formats.Format], format_param: Sequence[str]
) -> formats.Format | None:
    try:
        return negotiate(accept, offers, format_param=format_param)
    except NegotiationError as err:
        if err.status == 406:
            return None
        raise


def _not_acceptable(offers: Sequence[formats.Format]) -> Response:
    return error(406, f"not acceptable; this result is offered as: {offered_list(offers)}")


async def _read_request(
    request: Request, max_bytes: int
) -> tuple[str | None, list[str], list[str]]:
    """(query, default graphs, named graphs) of a protocol request, or ProtocolError."""
    url = request.query_params
    if "update" in url or "using-graph-uri" in url or "using-named-graph-uri" in url:
        raise ProtocolError(403, "SPARQL Update is not allowed: this endpoint is read-only")
    defaults = url.getlist("default-graph-uri")
    named = url.getlist("named-graph-uri")
    if request.method in ("GET", "HEAD"):
        queries = url.getlist("query")
        if len(queries) > 1:
            raise ProtocolError(400, "more than one query parameter")
        return (queries[0] if queries else None), _iris(defaults), _iris(named)
    content_type = request.headers.get("content-type", "")
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    charset = _charset(params)
    if charset not in (None, "utf-8", "utf8", "us-ascii"):
        raise ProtocolError(415, f"charset {charset!r} is not supported; send UTF-8")
    body = await _body(request, max_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(400, "the request body is not valid UTF-8") from None
    if media_type == _FORM:
        try:
            form = parse_qs(
                text,
                keep_blank_values=True,
                strict_parsing=False,
                errors="strict",
                max_num_fields=1000,
            )
        except (ValueError, UnicodeDecodeError) as err:
            raise ProtocolError(400, f"malformed form body: {err}") from None
        if "update" in form:
            raise ProtocolError(403, "SPARQL Update is not allowed: this endpoint is read-only")
        queries = form.get("query", [])
        if len(queries) != 1:
            raise ProtocolError(400, "a form POST needs exactly one query parameter")
        defaults = defaults + form.get("default-graph-uri", [])
        named = named + form.get("named-graph-uri", [])
        return queries[0], _iris(defaults), _iris(named)
    if media_type == _DIRECT:
        if "query" in url:
            raise ProtocolError(400, "a direct POST carries the query in its body, not the URL")
        return text, _iris(defaults), _iris(named)
    if media_type == _UPDATE:
        raise ProtocolError(403, "SPARQL Update is not allowed: this endpoint is read-only")
    if not media_type:
        raise ProtocolError(415, f"a POST needs Content-Type {_DIRECT} or {_FORM}")
    raise ProtocolError(415, f"unsupported Content-Type {media_type!r}; use {_DIRECT} or {_FORM}")


def _charset(params: str) -> str | None:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _iris(values: list[str]) -> list[str]:
    for value in values:
        try:
            ox.NamedNode(value)
        except ValueError:
            raise ProtocolError(400, f"not an absolute IRI: {value!r}") from None
    return values


async def _body(request: Request, max_bytes: int) -> bytes:
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > max_bytes:
            raise ProtocolError(413, f"request body larger than {max_bytes} bytes")
    return bytes(chunks)


def service_description(endpoint: str, published: Published) -> list[ox.Triple]:
    """The SPARQL 1.1 Service Description of this endpoint, as reached by the client."""
    n = ox.NamedNode
    service = n(endpoint + "#service")
    a = n(expand("rdf:type"))
    out = [
        ox.Triple(service, a, n(SD + "Service")),
        ox.Triple(service, n(SD + "endpoint"), n(endpoint)),
        ox.Triple(service, n(SD + "supportedLanguage"), n(SD + "SPARQL11Query")),
    ]
    for fmt in (*formats.RESULTS_FORMATS, *formats.GRAPH_FORMATS):
        out.append(
            ox.Triple(service, n(SD + "resultFormat"), n(W3C_FORMATS + _W3C_FORMAT_NAMES[fmt.name]))
        )
    dataset = n(endpoint + "#dataset")
    default = n(endpoint + "#default-graph")
    out += [
        ox.Triple(service, n(SD + "defaultDataset"), dataset),
        ox.Triple(dataset, a, n(SD + "Dataset")),
        ox.Triple(dataset, n(SD + "defaultGraph"), default),
        ox.Triple(default, a, n(SD + "Graph")),
    ]
    for graph in published.engine.graphs():
        node = n(endpoint + "#graph-" + hashlib.sha256(graph.encode()).hexdigest()[:12])
        out += [
            ox.Triple(dataset, n(SD + "namedGraph"), node),
            ox.Triple(node, a, n(SD + "NamedGraph")),
            ox.Triple(node, n(SD + "name"), n(graph)),
        ]
    if (
        published.release is not None
        and "service-description.ttl" in published.release.manifest["files"]
    ):
        path = published.release.file("service-description.ttl")
        out += [
            q.triple if isinstance(q, ox.Quad) else q
            for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)
        ]
        void = request_free_void(published)
        if void:
            out.append(ox.Triple(service, n(expand("rdfs:seeAlso")), n(void)))
    return sorted(set(out), key=str)


def request_free_void(published: Published) -> str | None:
    """The VoID document IRI of the release, under the configured base."""
    if published.release is None:
        return None
    return str(published.release.manifest["base"]) + "/.well-known/void"


def _describe_service(request: Request, published: Published) -> Response:
    accept = request.headers.get("accept")
    try:
        fmt = negotiate(accept, SD_FORMATS, format_param=request.query_params.getlist("format"))
    except NegotiationError as err:
        return error(
            err.status,
            err.message
            if err.status == 400
            else f"not acceptable; offered: {offered_list(SD_FORMATS)}",
        )
    if fmt is formats.HTML:
        return pages.query_form(request, published)
    endpoint = _endpoint(request)
    triples = service_description(endpoint, published)
    body = formats.serialize_graph(
        triples, fmt, {"sd": SD, "void": expand("void:"), "dcat": expand("dcat:")}
    )
    headers = validators(published, etag_for(published, "sd", endpoint, fmt.name))
    headers["Vary"] = "Accept"
    return Response(body, media_type=fmt.content_type, headers=headers)
