"""THE table of formats: one entry per RDF or SPARQL-results syntax.

Dumps, content negotiation of documents, SPARQL results and the catalogue all read this table,
so a format is added in one place. Each entry names its IANA media type, file extension, the
pyoxigraph format object and the EU file-type IRI portals recognise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyoxigraph as ox

EU_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
IANA = "https://www.iana.org/assignments/media-types/"


@dataclass(frozen=True)
class Format:
    """A serialisation: how it is named on the wire, on disk and in pyoxigraph."""

    name: str
    media_type: str
    extension: str
    label: str
    rdf: ox.RdfFormat | None = None
    results: ox.QueryResultsFormat | None = None
    eu_file_type: str | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def iana_iri(self) -> str:
        return IANA + self.media_type

    @property
    def eu_iri(self) -> str | None:
        return EU_FILE_TYPE + self.eu_file_type if self.eu_file_type else None

    @property
    def content_type(self) -> str:
        """Content-Type header value (text types declare UTF-8)."""
        textual = self.media_type.startswith("text/") or self.media_type in TEXTUAL
        return f"{self.media_type}; charset=utf-8" if textual else self.media_type


TEXTUAL = {"application/n-triples", "application/n-quads", "application/trig"}

TURTLE = Format(
    "turtle",
    "text/turtle",
    "ttl",
    "Turtle",
    rdf=ox.RdfFormat.TURTLE,
    eu_file_type="RDF_TURTLE",
    aliases=("application/x-turtle",),
)
NTRIPLES = Format(
    "ntriples",
    "application/n-triples",
    "nt",
    "N-Triples",
    rdf=ox.RdfFormat.N_TRIPLES,
    eu_file_type="RDF_N_TRIPLES",
)
NQUADS = Format(
    "nquads",
    "application/n-quads",
    "nq",
    "N-Quads",
    rdf=ox.RdfFormat.N_QUADS,
    eu_file_type="RDF_N_QUADS",
    aliases=("text/x-nquads",),
)
TRIG = Format(
    "trig", "application/trig", "trig", "TriG", rdf=ox.RdfFormat.TRIG, eu_file_type="RDF_TRIG"
)
JSONLD = Format(
    "jsonld",
    "application/ld+json",
    "jsonld",
    "JSON-LD",
    rdf=ox.RdfFormat.JSON_LD,
    eu_file_type="JSON_LD",
    aliases=("application/json",),
)
RDFXML = Format(
    "rdfxml",
    "application/rdf+xml",
    "rdf",
    "RDF/XML",
    rdf=ox.RdfFormat.RDF_XML,
    eu_file_type="RDF_XML",
    aliases=("application/xml",),
)
HTML = Format(
    "html", "text/html", "html", "HTML", eu_file_type="HTML", aliases=("application/xhtml+xml",)
)

SPARQL_JSON = Format(
    "json",
    "application/sparql-results+json",
    "srj",
    "SPARQL JSON",
    results=ox.QueryResultsFormat.JSON,
    eu_file_type="JSON",
    aliases=("application/json",),
)
SPARQL_XML = Format(
    "xml",
    "application/sparql-results+xml",
    "srx",
    "SPARQL XML",
    results=ox.QueryResultsFormat.XML,
    eu_file_type="XML",
    aliases=("application/xml",),
)
CSV = Format("csv", "text/csv", "csv", "CSV", results=ox.QueryResultsFormat.CSV, eu_file_type="CSV")
TSV = Format(
    "tsv",
    "text/tab-separated-values",
    "tsv",
    "TSV",
    results=ox.QueryResultsFormat.TSV,
    eu_file_type="TSV",
)

#: Formats of RDF documents (graphs), in order of preference when the client has none.
GRAPH_FORMATS: tuple[Format, ...] = (TURTLE, JSONLD, RDFXML, NTRIPLES, NQUADS, TRIG)
#: Formats a resource document (/doc/...) is offered in.
DOCUMENT_FORMATS: tuple[Format, ...] = (TURTLE, JSONLD, RDFXML, NTRIPLES, HTML)
#: Formats of SELECT/ASK results, the first one being the default.
RESULTS_FORMATS: tuple[Format, ...] = (SPARQL_JSON, SPARQL_XML, CSV, TSV)
#: Formats of the release dumps.
DUMP_FORMATS: tuple[Format, ...] = (NTRIPLES, TURTLE, JSONLD, NQUADS)

ALL: tuple[Format, ...] = (*GRAPH_FORMATS, HTML, *RESULTS_FORMATS)


def by_extension(extension: str, among: tuple[Format, ...] = ALL) -> Format | None:
    """The format whose extension (or name, so ``?format=turtle`` works too) is given."""
    wanted = extension.lower().lstrip(".")
    for fmt in among:
        if wanted in (fmt.extension, fmt.name):
            return fmt
    return None


def by_media_type(media_type: str, among: tuple[Format, ...] = ALL) -> Format | None:
    """The format with this media type (parameters ignored), or None."""
    wanted = media_type.split(";", 1)[0].strip().lower()
    for fmt in among:
        if wanted == fmt.media_type or wanted in fmt.aliases:
            return fmt
    return None


def serialize_graph(
    triples: Sequence[ox.Triple],
    fmt: Format,
    prefixes: Mapping[str, str] | None = None,
    context: str | dict[str, Any] | None = None,
) -> bytes:
    """Triples (already sorted) in ``fmt``, deterministically.

    Turtle's prefix lines are sorted (pyoxigraph's own order is unspecified); JSON-LD is compacted
    with labgraph's context (inline, or referenced by URL when ``context`` is a string).
    """
    if fmt in (NTRIPLES, NQUADS):  # default-graph triples: N-Quads lines equal N-Triples lines
        return "".join(f"{t} .\n" for t in triples).encode("utf-8")
    if fmt is JSONLD:
        from . import jsonld

        return jsonld.dumps(triples, context)
    if fmt.rdf is None:
        raise ValueError(f"{fmt.label} is not an RDF syntax")
    if fmt is TRIG:
        data = ox.serialize(
            (ox.Quad(t.subject, t.predicate, t.object) for t in triples),
            format=fmt.rdf,
            prefixes=dict(prefixes or {}),
        )
    else:
        data = ox.serialize(triples, format=fmt.rdf, prefixes=dict(prefixes or {}))
    if fmt is not TURTLE:
        return data
    head, body = [], []
    for line in data.splitlines(keepends=True):
        (head if line.startswith(b"@prefix ") and not body else body).append(line)
    return b"".join(sorted(head)) + b"".join(body)


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _PrefixesSorted:
    """Passes Turtle through to ``out``, its leading ``@prefix`` lines sorted (as
    :func:`serialize_graph` does), holding only those lines back."""

    def __init__(self, out: Writable) -> None:
        self.out = out
        self.head: list[bytes] = []
        self.partial = b""
        self.passing = False

    def write(self, data: bytes) -> int:
        if self.passing:
            self.out.write(data)
            return len(data)
        lines = (self.partial + bytes(data)).split(b"\n")
        self.partial = lines.pop()
        for i, line in enumerate(lines):
            if not line.startswith(b"@prefix "):
                self._release(b"\n".join(lines[i:]) + b"\n" + self.partial)
                break
            self.head.append(line + b"\n")
        return len(data)

    def _release(self, rest: bytes) -> None:
        self.out.write(b"".join(sorted(self.head)))
        self.out.write(rest)
        self.head, self.partial, self.passing = [], b"", True

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self.passing:
            self._release(self.partial)


def write_graph(
    triples: Iterable[ox.Triple],
    fmt: Format,
    out: Writable,
    prefixes: Mapping[str, str] | None = None,
) -> None:
    """Stream ``triples`` (already sorted) to ``out`` in ``fmt``: the same bytes as
    :func:`serialize_graph` without holding the graph or its serialisation in memory.

    Turtle and N-Triples/N-Quads only (the dump formats written from triples; JSON-LD dumps are
    written by :mod:`labgraph.jsonld` node by node).
    """
    if fmt in (NTRIPLES, NQUADS):
        for t in triples:
            out.write(f"{t} .\n".encode())
        return
    if fmt is not TURTLE:
        raise ValueError(f"{fmt.label} is not streamed")
    sorter = _PrefixesSorted(out)
    ox.serialize(triples, sorter, format=fmt.rdf, prefixes=dict(prefixes or {}))
    sorter.close()
