"""Namespaces of the vocabularies the graph uses, and the prefixes written in Turtle.

The labgraph vocabulary has a fixed namespace: terms are shared identifiers and must not change
when a deployment picks another base for its data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

LG = "https://w3id.org/labgraph/def/"

PREFIXES: dict[str, str] = {
    "lg": LG,
    "adminkind": LG + "administration-kind/",
    "skill": LG + "skill/",
    "measure": LG + "measure/",
    "qualifier": LG + "qualifier/",
    "projectkind": LG + "project-kind/",
    "eventkind": LG + "event-kind/",
    "adms": "http://www.w3.org/ns/adms#",
    "cv": "http://data.europa.eu/m8g/",
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "org": "http://www.w3.org/ns/org#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "prov": "http://www.w3.org/ns/prov#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "schema": "https://schema.org/",
    "sh": "http://www.w3.org/ns/shacl#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "insee": "http://id.insee.fr/geo/region/",
    "void": "http://rdfs.org/ns/void#",
}


def expand(curie: str) -> str:
    """``"org:unitOf"`` → its full IRI; a string that is not a known CURIE is returned as is."""
    prefix, sep, local = curie.partition(":")
    if sep and prefix in PREFIXES and not local.startswith("//"):
        return PREFIXES[prefix] + local
    return curie


@dataclass(frozen=True)
class Concept:
    """A value of a controlled list: its IRI, its notation (the CSV value) and its labels."""

    iri: str
    notation: str
    labels: tuple[tuple[str, str], ...]  # (language, label), sorted


def load_schemes(ontology: Path) -> dict[str, dict[str, Concept]]:
    """The SKOS concept schemes of the ontology: scheme name → notation → concept.

    The ontology is the one authority on controlled lists: adding a concept there makes the value
    valid in the records, with its labels.
    """
    store = ox.Store()
    store.load(path=str(ontology), format=ox.RdfFormat.TURTLE)
    query = """
        PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
        SELECT ?scheme ?concept ?notation ?label WHERE {
          ?concept skos:inScheme ?scheme ; skos:notation ?notation .
          OPTIONAL { ?concept skos:prefLabel ?label }
        }"""
    found: dict[str, dict[str, tuple[str, set[tuple[str, str]]]]] = {}
    for row in store.query(query):
        scheme_iri = row["scheme"].value
        if not scheme_iri.startswith(LG):
            continue
        entry = found.setdefault(scheme_iri[len(LG) :], {}).setdefault(
            row["notation"].value, (row["concept"].value, set())
        )
        if row["label"] is not None:
            entry[1].add((row["label"].language or "", row["label"].value))
    return {
        scheme: {
            n: Concept(iri, n, tuple(sorted(labels))) for n, (iri, labels) in sorted(c.items())
        }
        for scheme, c in sorted(found.items())
    }
