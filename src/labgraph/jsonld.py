"""JSON-LD with a published ``@context`` of short keys.

A developer reads ``{"id": …, "type": "Lab", "name": "Ti Lab", "hostedBy": [...]}``, not full IRIs.
The writer compacts triples with the context below deterministically (subjects and keys sorted);
a value that does not fit its term's definition falls back to the full IRI key with an expanded
value object, so nothing is ever lost (tests check the round trip is isomorphic).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyoxigraph as ox

from .vocab import PREFIXES, expand

RDF_TYPE = expand("rdf:type")
XSD = PREFIXES["xsd"]
RDF_LANGSTRING = expand("rdf:langString")

_PREFIXES = (
    "lg",
    "adminkind",
    "skill",
    "measure",
    "qualifier",
    "projectkind",
    "eventkind",
    "cv",
    "dct",
    "foaf",
    "org",
    "owl",
    "prov",
    "rdf",
    "rdfs",
    "schema",
    "skos",
    "xsd",
    "insee",
)
_CLASSES = {
    "Lab": "lg:Lab",
    "Figure": "lg:Figure",
    "OrganizationalUnit": "org:OrganizationalUnit",
    "Organization": "org:Organization",
    "PublicOrganisation": "cv:PublicOrganisation",
    "Project": "schema:Project",
    "Event": "schema:Event",
    "EventSeries": "schema:EventSeries",
    "BibliographicResource": "dct:BibliographicResource",
    "Entity": "prov:Entity",
    "Concept": "skos:Concept",
    "ConceptScheme": "skos:ConceptScheme",
}
# short key → (property, coercion): "@id" link, "@fr"/"@en" language string, "@lang-map" a map
# of language → string, an xsd datatype, or None (any value, written as a value object if typed).
_TERMS: dict[str, tuple[str, str | None]] = {
    "name": ("rdfs:label", "@fr"),
    "altName": ("skos:altLabel", "@fr"),
    "identifier": ("dct:identifier", None),
    "hostedBy": ("org:unitOf", "@id"),
    "kind": ("org:classification", "@id"),
    "region": ("dct:spatial", "@id"),
    "location": ("schema:location", None),
    "founded": ("schema:foundingDate", "xsd:gYear"),
    "homepage": ("foaf:homepage", "@id"),
    "skill": ("lg:skill", "@id"),
    "description": ("dct:description", "@fr"),
    "source": ("prov:wasDerivedFrom", "@id"),
    "parent": ("org:subOrganizationOf", "@id"),
    "registrationNumber": ("org:identifier", None),
    "sameAs": ("owl:sameAs", "@id"),
    "category": ("dct:type", "@id"),
    "carriedBy": ("lg:carriedBy", "@id"),
    "partner": ("lg:partner", "@id"),
    "startDate": ("schema:startDate", None),
    "endDate": ("schema:endDate", None),
    "superEvent": ("schema:superEvent", "@id"),
    "edition": ("lg:edition", "xsd:integer"),
    "organizer": ("schema:organizer", "@id"),
    "about": ("schema:about", "@id"),
    "keywords": ("schema:keywords", "@fr"),
    "subject": ("dct:subject", "@id"),
    "measure": ("lg:measure", "@id"),
    "value": ("rdf:value", "xsd:decimal"),
    "qualifier": ("lg:qualifier", "@id"),
    "date": ("dct:date", None),
    "title": ("dct:title", "@fr"),
    "publisher": ("dct:publisher", "@id"),
    "issued": ("dct:issued", None),
    "page": ("foaf:page", "@id"),
    "comment": ("rdfs:comment", "@en"),
    "prefLabel": ("skos:prefLabel", "@lang-map"),
    "inScheme": ("skos:inScheme", "@id"),
}


def context() -> dict[str, Any]:
    """The ``@context`` object published at /context.jsonld and in every release."""
    ctx: dict[str, Any] = {"id": "@id", "type": "@type"}
    ctx.update({p: PREFIXES[p] for p in _PREFIXES})
    ctx.update(_CLASSES)
    for key, (prop, how) in _TERMS.items():
        if how == "@id":
            ctx[key] = {"@id": prop, "@type": "@id"}
        elif how in ("@fr", "@en"):
            ctx[key] = {"@id": prop, "@language": how[1:]}
        elif how == "@lang-map":
            ctx[key] = {"@id": prop, "@container": "@language"}
        elif how:
            ctx[key] = {"@id": prop, "@type": how}
        else:
            ctx[key] = prop
    return {"@context": ctx}


def context_bytes() -> bytes:
    """The context document as published (/context.jsonld)."""
    return (json.dumps(context(), ensure_ascii=False, indent=1) + "\n").encode("utf-8")


_BY_PROPERTY = {expand(prop): (key, how) for key, (prop, how) in _TERMS.items()}
_CLASS_NAMES = {expand(curie): name for name, curie in _CLASSES.items()}


def _fits(term: ox.NamedNode | ox.Literal | ox.BlankNode, how: str | None) -> bool:
    if how == "@id":
        return isinstance(term, ox.NamedNode)
    if not isinstance(term, ox.Literal):
        return False
    if how in ("@fr", "@en"):
        return term.language == how[1:]
    if how == "@lang-map":
        return bool(term.language)
    if how is None:
        return True
    return term.language is None and term.datatype.value == expand(how)


def _expanded(term: Any) -> Any:
    if isinstance(term, ox.NamedNode):
        return {"@id": term.value}
    if isinstance(term, ox.BlankNode):
        return {"@id": f"_:{term.value}"}
    if term.language:
        return {"@value": term.value, "@language": term.language}
    if term.datatype.value == XSD + "string":
        return term.value
    return {"@value": term.value, "@type": term.datatype.value}


def _compacted(term: Any, how: str | None) -> Any:
    if how == "@id":
        return term.value
    if how is None:
        return _expanded(term)
    return term.value


def nodes(triples: Iterable[ox.Triple]) -> list[dict[str, Any]]:
    """Compacted node objects, one per subject, sorted by IRI, keys sorted."""
    by_subject: dict[str, dict[str, list[Any]]] = {}
    ids: dict[str, str] = {}
    for t in triples:
        s = t.subject
        sid = f"_:{s.value}" if isinstance(s, ox.BlankNode) else s.value
        ids[sid] = sid
        props = by_subject.setdefault(sid, {})
        p = t.predicate.value
        if p == RDF_TYPE and isinstance(t.object, ox.NamedNode):
            props.setdefault("type", []).append(_CLASS_NAMES.get(t.object.value, t.object.value))
            continue
        key, how = _BY_PROPERTY.get(p, (p, None))
        if key != p and not _fits(t.object, how):
            key, how = p, None
        if how == "@lang-map":
            props.setdefault(key, []).append((t.object.language, t.object.value))
        else:
            props.setdefault(key, []).append(_compacted(t.object, how))
    out = []
    for sid in sorted(by_subject):
        node: dict[str, Any] = {"id": sid}
        props = by_subject[sid]
        for key in sorted(props, key=lambda k: (k != "type", k)):
            values = props[key]
            if values and isinstance(values[0], tuple):  # language map
                lang_map: dict[str, Any] = {}
                for lang, text in sorted(values):
                    lang_map.setdefault(lang, []).append(text)
                node[key] = {k: v[0] if len(v) == 1 else v for k, v in lang_map.items()}
                continue
            values = sorted(values, key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
            node[key] = values[0] if len(values) == 1 else values
        out.append(node)
    return out


def dumps(triples: Iterable[ox.Triple], context_ref: str | dict[str, Any] | None = None) -> bytes:
    """A JSON-LD document of ``triples``; ``context_ref`` is the context URL or object (inline)."""
    ctx = context()["@context"] if context_ref is None else context_ref
    doc = {"@context": ctx, "@graph": nodes(triples)}
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
