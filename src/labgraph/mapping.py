"""Records → RDF triples: the only place that knows which term a column becomes.

Each record becomes a small bundle of triples about its URI. The mapping also returns where each
subject came from and which column each (type, predicate) pair stands for, so that a SHACL result
about a triple can be traced back to ``file:line`` and a column name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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


@dataclass
class Mapped:
    """The graph of a set of records, with what is needed to trace a triple back to its record."""

    triples: list[ox.Triple]
    subjects: dict[str, Record] = field(default_factory=dict)
    columns: dict[tuple[str, str], str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # the triples as sorted N-Triples lines

    def column_for(self, record: Record, predicate: str) -> str | None:
        return self.columns.get((record.type, predicate))


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


def map_records(
    records: list[Record], minter: Minter, schemes: Mapping[str, Mapping[str, Concept]]
) -> Mapped:
    """The whole graph of ``records``: sorted, duplicate-free, deterministic."""
    index = {r.id: r for r in records}
    mapper = Mapper(minter, schemes, index)
    triples: set[ox.Triple] = set()
    subjects: dict[str, Record] = {}
    for rec in records:
        triples.update(mapper.record(rec))
        subjects[minter.thing(rec.type, rec.id)] = rec
    triples.update(mapper.shared(records))
    pairs = sorted((f"{t} .\n", t) for t in triples)  # N-Triples lines are unique: no tie
    return Mapped([t for _, t in pairs], subjects, column_index(), [line for line, _ in pairs])
