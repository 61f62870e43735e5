"""Records → RDF triples: the only place that knows which term a column becomes.

Each record becomes a small bundle of triples about its URI. The graph is never held whole in
Python: records are mapped one at a time, in the order of their subjects' N-Triples lines, and
their lines are streamed to sorted N-Triples files on disk (the whole graph, and each record
type's part), from which a pyoxigraph store on disk is bulk-loaded when a stage queries it. The
mapping also returns where each subject came from and which column each (type, predicate) pair
stands for, so that a SHACL result about a triple can be traced back to ``file:line`` and a
column name.
"""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NamedTuple

import pyoxigraph as ox

from .iris import Minter, region
from .records import SCHEMA, Record
from .regions import REGIONS
from .vocab import Concept, expand

XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = ox.NamedNode(expand("rdf:type"))
RDFS_LABEL = ox.NamedNode(expand("rdfs:label"))
SKOS_PREFLABEL = ox.NamedNode(expand("skos:prefLabel"))
SKOS_INSCHEME = ox.NamedNode(expand("skos:inScheme"))

#: rdf:type of each record type (the first one is the class shapes target).
CLASSES: dict[str, tuple[str, ...]] = {
    "lab": ("lg:Lab", "org:OrganizationalUnit", "org:Organization"),
    "institution": ("cv:PublicOrganisation", "org:Organization"),
    "project": ("schema:Project",),
    "event": ("schema:Event",),
    "figure": ("lg:Figure",),
    "source": ("dct:BibliographicResource", "prov:Entity"),
}

# How each column becomes a triple: (predicate, how the value is written).
#   lang-fr: literal @fr · iri: the URL · ref: the referred record's URI · concept: SKOS concept
#   region: INSEE URI · date: xsd:date/gYearMonth/gYear · year: xsd:gYear · decimal · integer
#   text: plain string · sameas-wikidata: Wikidata entity URI
TERMS: dict[str, dict[str, tuple[str, str]]] = {
    "lab": {
        "name": ("rdfs:label", "lang-fr"),
        "alt_names": ("skos:altLabel", "lang-fr"),
        "hosts": ("org:unitOf", "ref"),
        "kind": ("org:classification", "concept"),
        "region": ("dct:spatial", "region"),
        "cities": ("schema:location", "text"),
        "founded": ("schema:foundingDate", "year"),
        "website": ("foaf:homepage", "iri"),
        "skills": ("lg:skill", "concept"),
        "description": ("dct:description", "lang-fr"),
        "source": ("prov:wasDerivedFrom", "source"),
    },
    "institution": {
        "name": ("rdfs:label", "lang-fr"),
        "alt_names": ("skos:altLabel", "lang-fr"),
        "kind": ("org:classification", "concept"),
        "region": ("dct:spatial", "region"),
        "parent": ("org:subOrganizationOf", "ref"),
        "website": ("foaf:homepage", "iri"),
        "siren": ("org:identifier", "text"),
        "wikidata": ("owl:sameAs", "wikidata"),
        "source": ("prov:wasDerivedFrom", "source"),
    },
    "project": {
        "name": ("rdfs:label", "lang-fr"),
        "kind": ("dct:type", "concept"),
        "carried_by": ("lg:carriedBy", "ref"),
        "partners": ("lg:partner", "ref"),
        "started": ("schema:startDate", "date"),
        "website": ("foaf:homepage", "iri"),
        "description": ("dct:description", "lang-fr"),
        "source": ("prov:wasDerivedFrom", "source"),
    },
    "event": {
        "name": ("rdfs:label", "lang-fr"),
        "kind": ("dct:type", "concept"),
        "part_of": ("schema:superEvent", "ref"),
        "edition": ("lg:edition", "integer"),
        "start": ("schema:startDate", "date"),
        "end": ("schema:endDate", "date"),
        "organizers": ("schema:organizer", "ref"),
        "about": ("schema:about", "ref"),
        "region": ("dct:spatial", "region"),
        "location": ("schema:location", "text"),
        "theme": ("schema:keywords", "lang-fr"),
        "website": ("foaf:homepage", "iri"),
        "description": ("dct:description", "lang-fr"),
        "source": ("prov:wasDerivedFrom", "source"),
    },
    "figure": {
        "about": ("dct:subject", "ref"),
        "measure": ("lg:measure", "concept"),
        "value": ("rdf:value", "decimal"),
        "qualifier": ("lg:qualifier", "concept"),
        "date": ("dct:date", "date"),
        "label": ("rdfs:label", "lang-fr"),
        "source": ("prov:wasDerivedFrom", "source"),
    },
    "source": {
        "title": ("dct:title", "lang-fr"),
        "publisher": ("dct:publisher", "ref"),
        "date": ("dct:issued", "date"),
        "url": ("foaf:page", "iri"),
        "note": ("rdfs:comment", "lang-en"),
    },
}

_DATE_TYPES = {4: XSD + "gYear", 7: XSD + "gYearMonth", 10: XSD + "date"}


class Origin(NamedTuple):
    """Where a subject of the graph comes from: its record's type, file and line."""

    type: str
    file: str
    line: int


class Mapped:
    """The graph of a set of records, on disk, with what is needed to trace a triple back.

    ``nt`` holds every triple as sorted, duplicate-free N-Triples lines (the order of the dumps);
    :meth:`part` the lines about one record type's subjects, in the same order. Only the small
    per-subject ``subjects`` index (IRI → type, file, line) lives in memory. The files live in a
    working folder removed by :meth:`close` (a private temporary one is also removed when the
    object is garbage collected).
    """

    def __init__(
        self,
        folder: Path,
        triples: int,
        subjects: dict[str, Origin],
        parts: Iterable[str],
        *,
        owned: tempfile.TemporaryDirectory[str] | None = None,
        memory_triples: int = 0,
        index: SubjectIndex | None = None,
    ) -> None:
        self.folder = folder
        self.index = index
        #: Up to this many triples, :meth:`store` is in memory rather than on disk.
        self.memory_triples = memory_triples
        self.triples = triples  # how many (distinct) triples
        self.subjects = subjects
        self.columns = column_index()
        self.types = tuple(sorted(parts))  # record types with at least one triple
        self._owned = owned
        self._store: ox.Store | None = None
        self._store_lock = threading.Lock()

    @property
    def nt(self) -> Path:
        """The whole graph as sorted N-Triples."""
        return self.folder / "graph.nt"

    def part(self, type_: str) -> Path:
        """The triples about the subjects of one record type, sorted as in :attr:`nt`."""
        return self.folder / f"part-{type_}.nt"

    #: Bytes of N-Triples per bulk load: pyoxigraph's bulk loader buffers about a million quads
    #: per thread (1.4 GB of RSS for 2.3 M triples in one call); ~32 MB at a time keeps its
    #: peak near 350 MB at the same speed.
    BULK_CHUNK = 32 << 20

    def store(self) -> ox.Store:
        """The graph in a pyoxigraph store, loaded from :attr:`nt` on first use (thread-safe).

        In memory when the graph has at most :attr:`memory_triples` triples: SPARQL there runs
        3–4× faster than over RocksDB, for about 400 bytes a triple. Larger graphs go to a store
        on disk, bulk-loaded a chunk at a time, so that memory stays flat.
        """
        with self._store_lock:
            if self._store is None:
                self._store = self._load()
            return self._store

    @property
    def in_memory(self) -> bool:
        """Whether :meth:`store` holds the graph in memory."""
        return self.triples <= self.memory_triples

    def _load(self) -> ox.Store:
        if self.in_memory:
            # Store.load of a memory store beats bulk_load there (no sorted runs to merge).
            store = ox.Store()
            store.load(path=str(self.nt), format=ox.RdfFormat.N_TRIPLES)
            return store
        store = ox.Store(str(self.folder / "store"))
        with open(self.nt, "rb") as fh:
            rest = b""
            while block := fh.read(self.BULK_CHUNK):
                data = rest + block
                cut = data.rfind(b"\n") + 1  # whole lines: each N-Triples line stands alone
                rest = data[cut:]
                if cut:
                    store.bulk_load(data[:cut], format=ox.RdfFormat.N_TRIPLES)
            if rest:
                store.bulk_load(rest, format=ox.RdfFormat.N_TRIPLES)
        return store

    def slices(self, max_triples: int) -> Iterator[tuple[bytes, list[str]]]:
        """The whole graph a slice at a time: (N-Triples of whole subjects, their keys), each
        slice of at most ``max_triples`` lines unless one subject alone has more."""
        index = self.index
        if index is None:
            raise ValueError("this graph has no subject index")
        n = len(index.keys)
        with open(self.nt, "rb") as fh:
            start = 0
            while start < n:
                end = start + 1
                limit = index.lines[start] + max(max_triples, 1)
                while end < n and index.lines[end + 1] <= limit:
                    end += 1
                data = os.pread(
                    fh.fileno(), index.bytes[end] - index.bytes[start], index.bytes[start]
                )
                yield data, index.keys[start:end]
                start = end

    def lines_about(self, keys: Iterable[str]) -> bytes:
        """The N-Triples lines of the subjects whose keys are given (none for unknown keys)."""
        index = self.index
        if index is None:
            raise ValueError("this graph has no subject index")
        out = []
        with open(self.nt, "rb") as fh:
            for key in keys:
                i = index.find(key)
                if i is not None:
                    size = index.bytes[i + 1] - index.bytes[i]
                    out.append(os.pread(fh.fileno(), size, index.bytes[i]))
        return b"".join(out)

    def column_for(self, record: Origin, predicate: str) -> str | None:
        return self.columns.get((record.type, predicate))

    def close(self) -> None:
        """Forget the store and remove the working folder."""
        self._store = None
        if self._owned is not None:
            self._owned.cleanup()
            self._owned = None
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def column_index() -> dict[tuple[str, str], str]:
    """(record type, predicate IRI) → column name, for tracing validation results."""
    index = {(t, expand(p)): col for t, cols in TERMS.items() for col, (p, _) in cols.items()}
    for t in TERMS:
        index[(t, expand("rdf:type"))] = "id"
    return index


class Mapper:
    """Turns records into triples under one base; one instance per build."""

    def __init__(
        self,
        minter: Minter,
        schemes: Mapping[str, Mapping[str, Concept]],
        index: Mapping[str, Record],
    ) -> None:
        self.minter = minter
        self.schemes = schemes
        self.index = index
        self._nodes: dict[str, ox.NamedNode] = {}
        self._plans: dict[str, list[tuple[str, ox.NamedNode, Callable[[Any, str], Any], str]]] = {}
        self._classes = {c: self.node(expand(c)) for cs in CLASSES.values() for c in cs}
        self._classes["schema:EventSeries"] = self.node(expand("schema:EventSeries"))
        self._identifier = self.node(expand("dct:identifier"))
        self._writers: dict[str, Callable[[Any, str], ox.NamedNode | ox.Literal]] = {
            "lang-fr": lambda v, _: ox.Literal(str(v), language="fr"),
            "lang-en": lambda v, _: ox.Literal(str(v), language="en"),
            "text": lambda v, _: ox.Literal(str(v)),
            "iri": lambda v, _: self.node(v),
            "ref": lambda v, _: self.node(self.uri_of(v)),
            "source": lambda v, _: self.node(v if "://" in v else self.uri_of(v)),
            "concept": lambda v, scheme: self.node(self.schemes[scheme][v].iri),
            "region": lambda v, _: self.node(region(v)),
            "wikidata": lambda v, _: self.node("http://www.wikidata.org/entity/" + v),
            "year": lambda v, _: ox.Literal(f"{v:04d}", datatype=self.node(XSD + "gYear")),
            "date": lambda v, _: ox.Literal(v, datatype=self.node(_DATE_TYPES[len(v)])),
            "decimal": lambda v, _: ox.Literal(_decimal(v), datatype=self.node(XSD + "decimal")),
            "integer": lambda v, _: ox.Literal(str(v), datatype=self.node(XSD + "integer")),
        }

    def node(self, iri: str) -> ox.NamedNode:
        found = self._nodes.get(iri)
        if found is None:
            found = self._nodes[iri] = ox.NamedNode(iri)
        return found

    def uri_of(self, record_id: str) -> str:
        return self.minter.thing(self.index[record_id].type, record_id)

    def _plan(self, type_: str) -> list[tuple[str, ox.NamedNode, Callable[[Any, str], Any], str]]:
        """(column, predicate, writer, scheme) of a record type, resolved once per build."""
        plan = self._plans.get(type_)
        if plan is None:
            schema = SCHEMA[type_]
            plan = self._plans[type_] = [
                (
                    column,
                    self.node(expand(predicate)),
                    self._writers[how],
                    schema.column(column).scheme or "",
                )
                for column, (predicate, how) in TERMS[type_].items()
            ]
        return plan

    def record(self, rec: Record) -> list[ox.Triple]:
        """The triples of one record (its bundle), without the shared labels."""
        subject = self.node(self.minter.thing(rec.type, rec.id))
        out = [ox.Triple(subject, RDF_TYPE, self._classes[c]) for c in CLASSES[rec.type]]
        if rec.type == "event" and rec.get("kind") == "series":
            out.append(ox.Triple(subject, RDF_TYPE, self._classes["schema:EventSeries"]))
        out.append(ox.Triple(subject, self._identifier, ox.Literal(rec.id)))
        values = rec.values
        for column, pred, write, scheme in self._plan(rec.type):
            value = values.get(column)
            if value is None:
                continue
            if isinstance(value, tuple):
                out.extend(ox.Triple(subject, pred, write(item, scheme)) for item in value)
            else:
                out.append(ox.Triple(subject, pred, write(value, scheme)))
        return out

    def shared(self, records: Iterable[Record]) -> list[ox.Triple]:
        """Labels of the regions and concepts the records use, so the graph stands alone."""
        regions: set[str] = set()
        concepts: set[tuple[str, str]] = set()
        for rec in records:
            schema = SCHEMA[rec.type]
            for col in schema.columns:
                value = rec.values.get(col.name)
                if value is None:
                    continue
                items = value if isinstance(value, tuple) else (value,)
                if col.kind == "region":
                    regions.update(items)
                elif col.kind == "concept":
                    concepts.update((col.scheme or "", v) for v in items)
        out = [
            ox.Triple(self.node(region(code)), RDFS_LABEL, ox.Literal(REGIONS[code], language="fr"))
            for code in regions
        ]
        for scheme, notation in concepts:
            concept = self.schemes[scheme][notation]
            node = self.node(concept.iri)
            out.append(ox.Triple(node, SKOS_INSCHEME, self.node(expand("lg:" + scheme))))
            out.extend(
                ox.Triple(node, SKOS_PREFLABEL, ox.Literal(label, language=lang))
                for lang, label in concept.labels
            )
        return out


def _decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".") or "0"


def _workspace(folder: Path | None) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)  # never load a store over stale files
        folder.mkdir(parents=True)
        return folder, None
    owned = tempfile.TemporaryDirectory(prefix="labgraph-graph-")
    return Path(owned.name), owned


def _key(term: object) -> str:
    """The start of every N-Triples line about ``term``: sorting these sorts the lines' groups.

    No key is a prefix of another (each ends with the space after the subject), so two lines
    about different subjects compare as their keys do.
    """
    return f"{term} "


class SubjectIndex:
    """Where each subject's lines are in the whole-graph file: its key (``"<iri> "``, the start
    of each of its lines), in file order, with the offsets of its lines and of its bytes.

    Lets a large graph be validated a slice at a time, each slice with the subjects its
    triples point to (:meth:`Mapped.slices`). Two flat arrays and the keys: ~100 bytes a subject.
    """

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.lines = array("q", [0])  # line offset of each subject, then the total
        self.bytes = array("q", [0])  # byte offset of each subject, then the total

    def add(self, key: str, lines: int, size: int) -> None:
        self.keys.append(key)
        self.lines.append(self.lines[-1] + lines)
        self.bytes.append(self.bytes[-1] + size)

    def find(self, key: str) -> int | None:
        """The position of the subject whose lines start with ``key``, if it has any."""
        i = bisect.bisect_left(self.keys, key)
        return i if i < len(self.keys) and self.keys[i] == key else None


class _Writer:
    """Sorted groups of N-Triples lines → the whole-graph file and each record type's file."""

    def __init__(self, mapped_folder: Path) -> None:
        self.folder = mapped_folder
        self.whole: IO[bytes] = open(mapped_folder / "graph.nt", "wb")  # noqa: SIM115
        self.parts: dict[str, IO[bytes]] = {}
        self.triples = 0
        self.index = SubjectIndex()

    def group(self, key: str, lines: set[str], type_: str | None) -> None:
        data = "".join(sorted(lines)).encode("utf-8")
        self.index.add(key, len(lines), len(data))
        self.triples += len(lines)
        self.whole.write(data)
        if type_ is not None:
            out = self.parts.get(type_)
            if out is None:
                out = self.parts[type_] = open(self.folder / f"part-{type_}.nt", "wb")  # noqa: SIM115
            out.write(data)

    def close(self) -> None:
        for fh in (self.whole, *self.parts.values()):
            fh.close()


def map_records(
    records: list[Record],
    minter: Minter,
    schemes: Mapping[str, Mapping[str, Concept]],
    *,
    folder: Path | None = None,
    memory_triples: int = 0,
) -> Mapped:
    """The whole graph of ``records``, written sorted and duplicate-free to ``folder`` (a working
    folder created here and removed by :meth:`Mapped.close`; default: a private temporary folder):
    deterministic, and never more than one record's triples in memory. Its :meth:`Mapped.store`
    is in memory up to ``memory_triples`` triples.

    Subjects are visited in the order of their N-Triples lines; each record's bundle is mapped,
    sorted and written when its turn comes, then dropped.
    """
    index = {r.id: r for r in records}
    mapper = Mapper(minter, schemes, index)
    shared: dict[str, set[str]] = {}
    for t in mapper.shared(records):
        shared.setdefault(_key(t.subject), set()).add(f"{t} .\n")
    subjects: dict[str, Origin] = {}
    order: list[tuple[str, int]] = []  # (subject key, index of its record or -1)
    for i, rec in enumerate(records):
        iri = minter.thing(rec.type, rec.id)
        subjects[iri] = Origin(rec.type, rec.file, rec.line)
        order.append((f"<{iri}> ", i))
    order.extend((key, -1) for key in shared)
    order.sort()
    path, owned = _workspace(folder)
    out = _Writer(path)
    try:
        n = len(order)
        i = 0
        while i < n:
            key = order[i][0]
            lines = shared.pop(key, set())
            type_ = None
            while i < n and order[i][0] == key:  # one subject: its record(s) and shared labels
                if order[i][1] >= 0:
                    rec = records[order[i][1]]
                    type_ = rec.type
                    lines.update(f"{t} .\n" for t in mapper.record(rec))
                i += 1
            out.group(key, lines, type_)
    finally:
        out.close()
    return Mapped(
        path,
        out.triples,
        subjects,
        out.parts,
        owned=owned,
        memory_triples=memory_triples,
        index=out.index,
    )


def graph_of(
    triples: Iterable[ox.Triple],
    subjects: Mapping[str, Origin],
    *,
    folder: Path | None = None,
    memory_triples: int = 0,
) -> Mapped:
    """Any set of triples as a :class:`Mapped` graph on disk (tests, tools): sorted, no duplicate.

    ``subjects`` says which record each subject stands for (its part and its location).
    """
    groups: dict[str, set[str]] = {}
    type_of: dict[str, str] = {}
    for t in triples:
        key = _key(t.subject)
        groups.setdefault(key, set()).add(f"{t} .\n")
        origin = subjects.get(t.subject.value) if isinstance(t.subject, ox.NamedNode) else None
        if origin is not None:
            type_of[key] = origin.type
    path, owned = _workspace(folder)
    out = _Writer(path)
    try:
        for key in sorted(groups):
            out.group(key, groups[key], type_of.get(key))
    finally:
        out.close()
    return Mapped(
        path,
        out.triples,
        {iri: Origin(o.type, o.file, o.line) for iri, o in subjects.items()},
        out.parts,
        owned=owned,
        memory_triples=memory_triples,
        index=out.index,
    )


def read_triples(path: Path) -> Iterable[ox.Triple]:
    """The triples of an N-Triples file of this module, streamed in file order."""
    for quad in ox.parse(path=str(path), format=ox.RdfFormat.N_TRIPLES):
        yield quad.triple
