"""JSON-LD with a published ``@context`` of short keys.

A developer reads ``{"id": …, "type": "Lab", "name": "Ti Lab", "hostedBy": [...]}``, not full IRIs.
The writer compacts triples with the context below deterministically (subjects and keys sorted);
a value that does not fit its term's definition falls back to the full IRI key with an expanded
value object, so nothing is ever lost (tests check the round trip is isomorphic).
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

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


_BY_PROPERTY = {
    expand(prop): (key, how, expand(how) if how and not how.startswith("@") else None)
    for key, (prop, how) in _TERMS.items()
}
_CLASS_NAMES = {expand(curie): name for name, curie in _CLASSES.items()}


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


def nodes(triples: Iterable[ox.Triple]) -> list[dict[str, Any]]:
    """Compacted node objects, one per subject, sorted by IRI, keys sorted."""
    by_subject: dict[str, dict[str, list[Any]]] = {}
    named, literal = ox.NamedNode, ox.Literal
    for t in triples:
        s, o, p = t.subject, t.object, t.predicate.value
        sid = s.value if type(s) is named else f"_:{s.value}"
        props = by_subject.get(sid)
        if props is None:
            props = by_subject[sid] = {}
        if p == RDF_TYPE and type(o) is named:
            props.setdefault("type", []).append(_CLASS_NAMES.get(o.value, o.value))
            continue
        spec = _BY_PROPERTY.get(p)
        if spec is not None:  # the short key, when the value fits the term's definition
            key, how, datatype = spec
            if how == "@id":
                if type(o) is named:
                    props.setdefault(key, []).append(o.value)
                    continue
            elif type(o) is literal:
                lang = o.language
                if how is None:
                    props.setdefault(key, []).append(_expanded(o))
                    continue
                if how == "@lang-map":
                    if lang:
                        props.setdefault(key, []).append((lang, o.value))
                        continue
                elif how[0] == "@":
                    if lang == how[1:]:
                        props.setdefault(key, []).append(o.value)
                        continue
                elif lang is None and o.datatype.value == datatype:
                    props.setdefault(key, []).append(o.value)
                    continue
        props.setdefault(p, []).append(_expanded(o))
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
            if len(values) > 1:
                values = sorted(values, key=_sort_key)
            node[key] = values[0] if len(values) == 1 else values
        out.append(node)
    return out


def _sort_key(value: Any) -> tuple[int, str]:
    """Deterministic order of the values of one key (strings, then value objects)."""
    if isinstance(value, str):
        return (0, value)
    return (1, json.dumps(value, sort_keys=True, ensure_ascii=False))


def dumps(triples: Iterable[ox.Triple], context_ref: str | dict[str, Any] | None = None) -> bytes:
    """A JSON-LD document of ``triples``; ``context_ref`` is the context URL or object (inline).

    One node object per line: readable, diff-friendly, and written by json's C encoder (an
    indented dump would go through its pure-Python one, several times slower).
    """
    return dumps_nodes(nodes(triples), context_ref)


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


def _subject(triple: ox.Triple) -> object:
    return triple.subject


def node_lines(triples: Iterable[ox.Triple]) -> Iterator[tuple[str, bytes]]:
    """(subject id, its node as one JSON line) per subject, streamed.

    ``triples`` must keep each subject's triples together (as sorted N-Triples do); only one
    subject's triples are held at a time.
    """
    for _, group in itertools.groupby(triples, key=_subject):
        for node in nodes(group):
            yield node["id"], json.dumps(node, ensure_ascii=False).encode("utf-8")


def write_nodes(
    node_json: Iterable[bytes],
    out: Writable,
    context_ref: str | dict[str, Any] | None = None,
) -> None:
    """The JSON-LD document of already serialised node lines, written to ``out`` as it goes."""
    ctx = context()["@context"] if context_ref is None else context_ref
    head = json.dumps(ctx, ensure_ascii=False, sort_keys=True)
    out.write(f'{{"@context": {head},\n"@graph": [\n'.encode())
    separator = b""
    for line in node_json:
        out.write(separator)
        out.write(line)
        separator = b",\n"
    out.write(b"\n]}\n")


def dumps_nodes(
    node_objects: Iterable[dict[str, Any]], context_ref: str | dict[str, Any] | None = None
) -> bytes:
    """A JSON-LD document of already compacted node objects (see :func:`dumps`)."""
    out = io.BytesIO()
    write_nodes(
        (json.dumps(node, ensure_ascii=False).encode("utf-8") for node in node_objects),
        out,
        context_ref,
    )
    return out.getvalue()
