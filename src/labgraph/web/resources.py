"""Cool URIs and the files of a release: /id → 303 → /doc, dumps, catalogue, VoID, ontology.

``/id/{type}/{id}`` names a thing and answers ``303 See Other`` to the document in the negotiated
format; ``/doc/{type}/{id}`` negotiates too (with Content-Location) and ``/doc/{type}/{id}.ttl``
is one fixed format. A document describes the thing with its outgoing and incoming links and the
labels of what it links to. Documents are cached per release: a release never changes.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Annotated

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from .. import formats, jsonld
from ..iris import ID_PATTERN, TYPES
from ..release import Release
from ..vocab import LG, PREFIXES
from . import pages
from .conneg import NegotiationError, negotiate, offered_list
from .http import ByteCache, error, link_header, not_modified, represent, validators
from .runtime import Published

router = APIRouter()

DOC_FORMATS = formats.DOCUMENT_FORMATS
_RDF_DOC_FORMATS = tuple(f for f in DOC_FORMATS if f.rdf is not None)
_DOC_CONTENT = {f.media_type: {} for f in DOC_FORMATS}
TypeParam = Annotated[str, PathParam(description="record type: " + ", ".join(TYPES))]
IdParam = Annotated[str, PathParam(description="record id (lower-case, digits, hyphens)")]

DESCRIBE = """
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
CONSTRUCT {
  ?s ?p ?o . ?o rdfs:label ?olabel . ?o skos:prefLabel ?opref .
  ?in ?ip ?s . ?in rdfs:label ?inlabel . ?in a ?intype .
} WHERE {
  { ?s ?p ?o . OPTIONAL { ?o rdfs:label ?olabel } OPTIONAL { ?o skos:prefLabel ?opref } }
  UNION
  { ?in ?ip ?s . OPTIONAL { ?in rdfs:label ?inlabel } OPTIONAL { ?in a ?intype } }
}"""


def _describe(published: Published, iri: str) -> list[ox.Triple]:
    engine = published.engine
    if not engine.exists(iri):
        return []
    triples = engine.triples(DESCRIBE, substitutions={ox.Variable("s"): ox.NamedNode(iri)})
    return sorted(set(triples), key=str)


async def describe(published: Published, iri: str) -> list[ox.Triple]:
    """The triples of a thing's document (empty if the graph does not know the thing).

    An embedded store answers in microseconds, in the event loop; a remote one is a network
    round trip, made from a thread.
    """
    if published.engine.blocking:
        return await asyncio.to_thread(_describe, published, iri)
    return _describe(published, iri)


def _doc_prefixes(base: str) -> dict[str, str]:
    prefixes = {k: v for k, v in PREFIXES.items() if k != "sh"}
    for type_ in TYPES:
        prefixes[type_] = f"{base}/id/{type_}/"
    return prefixes


def _here(request: Request, path: str) -> str:
    """Absolute URL of ``path`` on the host the client reached."""
    return _root(request) + path


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@functools.lru_cache(maxsize=4096)
def _alternates(root: str, stem: str, but: formats.Format | None = None) -> str:
    """The ``Link: rel=alternate`` value of a document (memoised: one per thing and format)."""
    return link_header(
        [
            (f"{root}{stem}.{f.extension}", "alternate", f.media_type)
            for f in DOC_FORMATS
            if f is not but
        ]
    )


@router.api_route(
    "/id/{type_}/{id_}",
    methods=["GET", "HEAD"],
    status_code=303,
    summary="A thing's URI: 303 See Other to its document",
    responses={
        303: {"description": "See Other: the document in the negotiated format"},
        404: {"description": "unknown thing"},
        406: {"description": "no acceptable format"},
    },
    response_class=Response,
)
async def thing(request: Request, type_: TypeParam, id_: IdParam) -> Response:
    runtime = request.app.state.runtime
    async with runtime.use() as published:
        if type_ not in TYPES or not ID_PATTERN.match(id_):
            return _not_found(request, published, f"/id/{type_}/{id_}")
        iri = runtime.minter.thing(type_, id_)
        if not await describe_exists(published, iri):
            return _not_found(request, published, f"/id/{type_}/{id_}")
        try:
            fmt = negotiate(
                request.headers.get("accept"),
                DOC_FORMATS,
                format_param=request.query_params.get("format"),
            )
        except NegotiationError as err:
            return _negotiation_failed(err)
        root = _root(request)
        location = f"{root}/doc/{type_}/{id_}.{fmt.extension}"
        return Response(
            status_code=303,
            headers={
                "Location": location,
                "Vary": "Accept",
                "Cache-Control": "public, max-age=3600",
                "Link": _alternates(root, f"/doc/{type_}/{id_}"),
            },
        )


async def describe_exists(published: Published, iri: str) -> bool:
    if published.engine.blocking:
        return await asyncio.to_thread(published.engine.exists, iri)
    return published.engine.exists(iri)


@router.api_route(
    "/doc/{type_}/{name}",
    methods=["GET", "HEAD"],
    summary="The document about a thing (negotiated, or by extension)",
    responses={
        200: {"content": _DOC_CONTENT, "description": "the document"},
        404: {"description": "unknown thing"},
        406: {"description": "no acceptable format"},
    },
    response_class=Response,
)
async def document(request: Request, type_: TypeParam, name: str) -> Response:
    runtime = request.app.state.runtime
    id_, dot, extension = name.partition(".")
    async with runtime.use() as published:
        if type_ not in TYPES or not ID_PATTERN.match(id_):
            return _not_found(request, published, f"/doc/{type_}/{name}")
        iri = runtime.minter.thing(type_, id_)
        stem = f"/doc/{type_}/{id_}"
        root = _root(request)
        extra: dict[str, str] = {}
        if dot:
            fmt = formats.by_extension(extension, DOC_FORMATS)
            if fmt is None or extension != fmt.extension:
                return _not_found(request, published, f"/doc/{type_}/{name}")
        else:
            try:
                fmt = negotiate(
                    request.headers.get("accept"),
                    DOC_FORMATS,
                    format_param=request.query_params.get("format"),
                )
            except NegotiationError as err:
                return _negotiation_failed(err)
            extra["Content-Location"] = f"{root}{stem}.{fmt.extension}"
        extra["Link"] = _alternates(root, stem, but=fmt)
        key = (published.id, iri, fmt.name, root)
        cache: ByteCache = request.app.state.documents
        body = cache.get(key)
        if body is None:
            triples = await describe(published, iri)
            if not triples:
                return _not_found(request, published, f"/doc/{type_}/{name}")
            if fmt is formats.HTML:
                body = pages.resource_html(request, published, iri, triples)
            else:
                context = root + "/context.jsonld"
                body = formats.serialize_graph(
                    triples, fmt, _doc_prefixes(runtime.minter.base), context
                )
            cache.put(key, body)
        # The representation names the host it was reached at (links, JSON-LD context): so does
        # its validator. Replicas behind one proxy see one host and agree.
        return represent(
            request,
            published,
            body,
            fmt,
            etag_parts=("doc", iri, key[3]),
            extra=extra,
            vary=not dot,
        )


def _negotiation_failed(err: NegotiationError) -> Response:
    if err.status == 406:
        return error(406, f"not acceptable; offered: {offered_list(err.offers)}")
    return error(err.status, err.message)


def _not_found(request: Request, published: Published, path: str) -> Response:
    accept = request.headers.get("accept") or ""
    if "text/html" in accept:
        return pages.not_found(request, published, path)
    return error(404, f"{path}: no such resource in this dataset")


@router.api_route(
    "/context.jsonld",
    methods=["GET", "HEAD"],
    summary="The JSON-LD @context of short keys",
    responses={200: {"content": {"application/ld+json": {}}, "description": "JSON-LD context"}},
    response_class=Response,
)
async def context(request: Request) -> Response:
    async with request.app.state.runtime.use() as published:
        body = jsonld.context_bytes()
        return represent(
            request, published, body, formats.JSONLD, etag_parts=("context",), vary=False
        )


def release_file(
    request: Request,
    published: Published,
    name: str,
    media_type: str | None = None,
    *,
    download: bool = False,
) -> Response:
    """A file of the current release, with its digest as ETag."""
    release = published.release
    if release is None or name not in release.manifest["files"]:
        return error(404, f"{name}: not in this release")
    entry = release.manifest["files"][name]
    etag = f'"{entry["sha256"][:32]}"'
    headers = validators(published, etag)
    headers["Digest"] = f"sha-256={entry['sha256']}"
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    if not_modified(request, etag, published.modified):
        return Response(status_code=304, headers=headers)
    fmt = formats.by_media_type(entry["media_type"])
    content_type = media_type or (fmt.content_type if fmt else entry["media_type"])
    return FileResponse(release.file(name), media_type=content_type, headers=headers)


DUMP_CONTENT = {f.media_type: {} for f in formats.DUMP_FORMATS}
DUMP_CONTENT["application/gzip"] = {}


@router.api_route(
    "/dumps/", methods=["GET", "HEAD"], summary="List of the dumps", response_class=Response
)
async def dumps_index(request: Request) -> Response:
    async with request.app.state.runtime.use() as published:
        return pages.dumps_page(request, published)


@router.api_route(
    "/dumps/{name}",
    methods=["GET", "HEAD"],
    summary="A dump of the current release (stable URL)",
    responses={
        200: {"content": DUMP_CONTENT, "description": "the dump"},
        404: {"description": "no such dump"},
    },
    response_class=Response,
)
@router.api_route(
    "/dumps/latest/{name}",
    methods=["GET", "HEAD"],
    include_in_schema=False,
    response_class=Response,
)
async def dump(request: Request, name: str) -> Response:
    async with request.app.state.runtime.use() as published:
        if not _is_dump(published.release, name):
            return error(404, f"{name}: no such dump")
        return release_file(request, published, name, download=True)


def _is_dump(release: Release | None, name: str) -> bool:
    if release is None or "/" in name or name.startswith("."):
        return False
    stem = name.split(".", 1)[0]
    from ..release import DUMP_NAMES

    return name in release.manifest["files"] and stem in ("labgraph", *DUMP_NAMES.values())


CATALOG_FORMATS = (formats.TURTLE, formats.JSONLD, formats.RDFXML)


@router.api_route(
    "/catalog.{extension}",
    methods=["GET", "HEAD"],
    summary="DCAT-AP 3 catalogue of the datasets (ttl, jsonld, rdf)",
    responses={
        200: {
            "content": {f.media_type: {} for f in CATALOG_FORMATS},
            "description": "the catalogue",
        },
        404: {"description": "no catalogue in that format", "content": {"text/plain": {}}},
    },
    response_class=Response,
)
async def catalog_file(request: Request, extension: str) -> Response:
    async with request.app.state.runtime.use() as published:
        fmt = formats.by_extension(extension, CATALOG_FORMATS)
        if fmt is None or fmt.extension != extension:
            return error(404, f"catalog.{extension}: offered as .ttl, .jsonld or .rdf")
        return release_file(request, published, f"catalog.{fmt.extension}", fmt.content_type)


@router.api_route(
    "/catalog",
    methods=["GET", "HEAD"],
    summary="DCAT-AP 3 catalogue, negotiated",
    responses={
        200: {
            "content": {f.media_type: {} for f in CATALOG_FORMATS},
            "description": "the catalogue",
        }
    },
    response_class=Response,
)
async def catalog(request: Request) -> Response:
    async with request.app.state.runtime.use() as published:
        try:
            fmt = negotiate(
                request.headers.get("accept"),
                CATALOG_FORMATS,
                format_param=request.query_params.get("format"),
            )
        except NegotiationError as err:
            return _negotiation_failed(err)
        response = release_file(request, published, f"catalog.{fmt.extension}", fmt.content_type)
        response.headers["Vary"] = "Accept"
        response.headers["Content-Location"] = _here(request, f"/catalog.{fmt.extension}")
        return response


@router.api_route(
    "/.well-known/void",
    methods=["GET", "HEAD"],
    summary="VoID description",
    responses={200: {"content": {"text/turtle": {}}, "description": "VoID"}},
    response_class=Response,
)
async def void(request: Request) -> Response:
    async with request.app.state.runtime.use() as published:
        return release_file(request, published, "void.ttl", formats.TURTLE.content_type)


def _vocabulary_response(request: Request, published: Published, name: str, title: str) -> Response:
    try:
        fmt = negotiate(
            request.headers.get("accept"),
            (formats.TURTLE, formats.JSONLD, formats.RDFXML, formats.NTRIPLES, formats.HTML),
            format_param=request.query_params.get("format"),
        )
    except NegotiationError as err:
        return _negotiation_failed(err)
    release = published.release
    if release is None:
        return error(404, f"{name}: this server publishes a dataset file, not a release")
    if fmt is formats.TURTLE:
        response = release_file(request, published, name, fmt.content_type)
        response.headers["Vary"] = "Accept"
        return response
    triples = _vocabulary_triples(release.file(name))
    if fmt is formats.HTML:
        body = pages.vocabulary_html(request, published, triples, title)
    else:
        body = formats.serialize_graph(triples, fmt, PREFIXES, _here(request, "/context.jsonld"))
    return represent(request, published, body, fmt, etag_parts=("vocab", name))


def _vocabulary_triples(path: Path) -> list[ox.Triple]:
    return sorted(
        {
            q.triple if isinstance(q, ox.Quad) else q
            for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)
        },
        key=str,
    )


@router.api_route(
    "/def/",
    methods=["GET", "HEAD"],
    summary="The labgraph ontology",
    responses={
        200: {"content": {f.media_type: {} for f in DOC_FORMATS}, "description": "ontology"}
    },
    response_class=Response,
)
@router.api_route("/def", methods=["GET", "HEAD"], include_in_schema=False, response_class=Response)
async def ontology(request: Request) -> Response:
    async with request.app.state.runtime.use() as published:
        return _vocabulary_response(request, published, "ontology.ttl", "Ontologie labgraph")


@router.api_route(
    "/def/{term:path}",
    methods=["GET", "HEAD"],
    summary="An ontology term: 303 to the ontology document",
    status_code=303,
    response_class=Response,
    responses={
        303: {"description": "See Other: the term's section of /def/"},
        404: {"description": "no such term in the ontology", "content": {"text/plain": {}}},
    },
)
async def ontology_term(request: Request, term: str) -> Response:
    async with request.app.state.runtime.use() as published:
        iri = LG + term
        if published.release is None or not any(
            t.subject.value == iri
            for t in _vocabulary_triples(published.release.file("ontology.ttl"))
        ):
            return error(404, f"/def/{term}: no such term in the ontology")
        anchor = term.replace("/", "-")
        return Response(
            status_code=303,
            headers={"Location": _here(request, f"/def/#{anchor}"), "Vary": "Accept"},
        )


@router.api_route(
    "/shapes",
    methods=["GET", "HEAD"],
    summary="The SHACL shapes",
    responses={200: {"content": {f.media_type: {} for f in DOC_FORMATS}, "description": "shapes"}},
    response_class=Response,
)
async def shapes(request: Request) -> Response:
    async with request.app.state.runtime.use() as published:
        return _vocabulary_response(request, published, "shapes.ttl", "Formes SHACL labgraph")
