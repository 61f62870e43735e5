"""The shapes compiled to SPARQL report exactly what pyshacl reports, constraint by constraint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyoxigraph as ox
import pytest

from labgraph.iris import Minter
from labgraph.mapping import Mapped, Origin, graph_of, map_records, read_triples
from labgraph.records import read
from labgraph.shacl_sparql import Unsupported, compile_shapes
from labgraph.validation import _iri_objects, _lines_with, validate
from labgraph.vocab import expand, load_schemes

from conftest import REPO

SHAPES = REPO / "shapes" / "labgraph.ttl"
BASE = "http://example.invalid/test"
XSD = "http://www.w3.org/2001/XMLSchema#"
N = ox.NamedNode


def mini() -> Mapped:
    schemes = load_schemes(REPO / "ontology" / "labgraph.ttl")
    recs = read(REPO / "tests" / "fixtures" / "mini", {k: frozenset(v) for k, v in schemes.items()})
    assert not recs.problems
    return map_records(recs.records, Minter(BASE), schemes)


def thing(type_: str, id_: str) -> ox.NamedNode:
    return N(f"{BASE}/id/{type_}/{id_}")


def p(curie: str) -> ox.NamedNode:
    return N(expand(curie))


def with_triples(
    mapped: Mapped, remove: Callable[[ox.Triple], bool], add: list[ox.Triple]
) -> Mapped:
    triples = {t for t in read_triples(mapped.nt) if not remove(t)} | set(add)
    subjects: dict[str, Origin] = dict(mapped.subjects)
    for t in add:  # new subjects are traced to a record of the same type when there is one
        if t.subject.value not in subjects and "/id/lab/" in t.subject.value:
            subjects[t.subject.value] = mapped.subjects[thing("lab", "lab-alpha").value]
    return graph_of(triples, subjects)


ALPHA, EDITION, PROJ = (
    thing("lab", "lab-alpha"),
    thing("event", "edition-s-1"),
    thing("project", "proj-x"),
)


def _is(s: ox.NamedNode, pred: str) -> Callable[[ox.Triple], bool]:
    return lambda t: t.subject == s and t.predicate == p(pred)


MUTATIONS: dict[str, tuple[Callable[[ox.Triple], bool], list[ox.Triple]]] = {
    "label-missing": (_is(ALPHA, "rdfs:label"), []),
    "label-twice": (
        lambda t: False,
        [ox.Triple(ALPHA, p("rdfs:label"), ox.Literal("Autre", language="fr"))],
    ),
    "label-without-language": (
        _is(ALPHA, "rdfs:label"),
        [ox.Triple(ALPHA, p("rdfs:label"), ox.Literal("Lab Alpha"))],
    ),
    "year-as-integer": (
        _is(ALPHA, "schema:foundingDate"),
        [
            ox.Triple(
                ALPHA, p("schema:foundingDate"), ox.Literal("2016", datatype=N(XSD + "integer"))
            )
        ],
    ),
    "ill-typed-year": (
        _is(ALPHA, "schema:foundingDate"),
        [ox.Triple(ALPHA, p("schema:foundingDate"), ox.Literal("20x6", datatype=N(XSD + "gYear")))],
    ),
    "region-not-insee": (
        _is(ALPHA, "dct:spatial"),
        [ox.Triple(ALPHA, p("dct:spatial"), N("http://example.org/region/84"))],
    ),
    "host-not-an-institution": (lambda t: False, [ox.Triple(ALPHA, p("org:unitOf"), PROJ)]),
    "kind-from-wrong-scheme": (
        _is(ALPHA, "org:classification"),
        [ox.Triple(ALPHA, p("org:classification"), N(expand("skill:facilitation")))],
    ),
    "homepage-as-literal": (
        _is(ALPHA, "foaf:homepage"),
        [ox.Triple(ALPHA, p("foaf:homepage"), ox.Literal("https://alpha.example.org"))],
    ),
    "edition-zero": (
        _is(EDITION, "lg:edition"),
        [ox.Triple(EDITION, p("lg:edition"), ox.Literal("0", datatype=N(XSD + "integer")))],
    ),
    "ends-before-start": (
        _is(EDITION, "schema:endDate"),
        [
            ox.Triple(
                EDITION, p("schema:endDate"), ox.Literal("2022-10-01", datatype=N(XSD + "date"))
            )
        ],
    ),
    "start-as-string": (
        _is(EDITION, "schema:startDate"),
        [ox.Triple(EDITION, p("schema:startDate"), ox.Literal("2022"))],
    ),
    "project-without-source": (_is(PROJ, "prov:wasDerivedFrom"), []),
    "partner-as-literal": (
        lambda t: False,
        [ox.Triple(PROJ, p("lg:partner"), ox.Literal("inst-two"))],
    ),
    "bad-id-in-iri": (
        lambda t: False,
        [
            ox.Triple(N(f"{BASE}/id/lab/Bad_Id"), p("rdf:type"), p("lg:Lab")),
            ox.Triple(N(f"{BASE}/id/lab/Bad_Id"), p("rdfs:label"), ox.Literal("X", language="fr")),
        ],
    ),
}


def signature(mapped: Mapped, engine: str) -> set[tuple[str, str | None, str, str | None]]:
    report = validate(mapped, SHAPES, engine=engine)
    assert report.engine == engine
    return {(r.focus, r.path, r.component.rsplit("#", 1)[-1], r.value) for r in report.results}


def test_valid_data_conforms_for_both() -> None:
    mapped = mini()
    assert signature(mapped, "sparql") == signature(mapped, "pyshacl") == set()


@pytest.mark.parametrize("name", sorted(set(MUTATIONS) - {"ill-typed-year"}))
def test_both_engines_report_the_same_violations(name: str) -> None:
    remove, add = MUTATIONS[name]
    mutated = with_triples(mini(), remove, add)
    expected = signature(mutated, "pyshacl")
    assert expected, f"{name}: the mutation should break a shape"
    assert signature(mutated, "sparql") == expected


def test_a_store_in_memory_reports_what_the_store_on_disk_reports() -> None:
    """Builds validate small graphs in memory (``build_memory_triples``), large ones on disk."""
    for name in sorted(MUTATIONS):
        remove, add = MUTATIONS[name]
        on_disk = with_triples(mini(), remove, add)
        in_memory = graph_of(read_triples(on_disk.nt), on_disk.subjects, memory_triples=10**9)
        assert not on_disk.in_memory and in_memory.in_memory
        assert signature(in_memory, "sparql") == signature(on_disk, "sparql"), name


@pytest.mark.parametrize("budget", [4, 40])
def test_a_graph_checked_in_slices_reports_what_one_store_reports(budget: int) -> None:
    """Above ``build_memory_triples``, the graph is checked a slice of subjects at a time, each
    with the nodes it points to: tiny slices (one or a few subjects) must change nothing."""
    for name in sorted(MUTATIONS):
        remove, add = MUTATIONS[name]
        whole = with_triples(mini(), remove, add)
        sliced = graph_of(read_triples(whole.nt), whole.subjects, memory_triples=budget)
        assert not sliced.in_memory and sliced.triples > budget
        assert _lines_with(sliced.nt, b"subClassOf") is not None  # no fallback to one store
        assert signature(sliced, "sparql") == signature(whole, "sparql"), name


def test_the_nodes_a_slice_points_to_are_every_iri_object() -> None:
    """Slices pull in the nodes their triples point to, found by a regular expression over the
    N-Triples bytes: the same set as a SPARQL query for every IRI object, on a graph with every
    kind of object (IRIs, language strings, typed literals ending in an IRI, escapes)."""
    mapped = mini()
    data = mapped.nt.read_bytes()
    data += (
        b'<http://e.x/s> <http://e.x/p> "a \\"quoted\\" <http://e.x/not> ."@fr .\n'
        b'<http://e.x/s> <http://e.x/p> "2020"^^<http://www.w3.org/2001/XMLSchema#gYear> .\n'
        b"<http://e.x/s> <http://e.x/p> <http://e.x/caf\xc3\xa9> .\n"
    )
    store = ox.Store()
    store.load(data, format=ox.RdfFormat.N_TRIPLES)
    query = "SELECT DISTINCT ?o WHERE { ?s ?p ?o FILTER isIRI(?o) }"
    expected = {f"<{row['o'].value}> " for row in store.query(query)}  # type: ignore[union-attr]
    assert len(expected) > 10
    assert _iri_objects(data) == expected


def test_ill_typed_literals_violate_datatype_as_the_spec_says() -> None:
    """SHACL: a literal whose lexical form is not valid for its datatype violates sh:datatype.

    pyshacl 0.40 does not check gYear lexical forms; the compiled validator does.
    """
    remove, add = MUTATIONS["ill-typed-year"]
    mutated = with_triples(mini(), remove, add)
    found = signature(mutated, "sparql")
    assert (
        ALPHA.value,
        expand("schema:foundingDate"),
        "DatatypeConstraintComponent",
        "20x6",
    ) in found
    assert signature(mutated, "pyshacl") <= found


def test_pyshacl_focus_mode_misses_nested_violations() -> None:
    """Why validation never uses pyshacl's focus_nodes: it loses sh:node/sh:or results."""
    import rdflib
    from pyshacl import validate as shacl_validate

    remove, add = MUTATIONS["kind-from-wrong-scheme"]
    mutated = with_triples(mini(), remove, add)
    graph = rdflib.Graph().parse(source=str(mutated.nt), format="nt")
    whole = shacl_validate(graph, shacl_graph=str(SHAPES))[0]
    focused = shacl_validate(
        graph, shacl_graph=str(SHAPES), focus_nodes=[rdflib.URIRef(ALPHA.value)]
    )[0]
    assert whole is False
    assert focused is True  # if pyshacl fixes this, focus mode may be reconsidered


def test_unknown_shacl_features_are_refused(tmp_path: Path) -> None:
    shapes = tmp_path / "shapes.ttl"
    shapes.write_text(
        """
        @prefix sh: <http://www.w3.org/ns/shacl#> .
        @prefix ex: <http://example.org/> .
        ex:S a sh:NodeShape ; sh:targetClass ex:C ;
           sh:property [ sh:path ex:p ; sh:qualifiedValueShape [ sh:class ex:D ] ;
                         sh:qualifiedMinCount 1 ] .
    """,
        encoding="utf-8",
    )
    with pytest.raises(Unsupported):
        compile_shapes(shapes)


def test_real_network_conforms_for_both_engines() -> None:
    schemes = load_schemes(REPO / "ontology" / "labgraph.ttl")
    recs = read(REPO / "data", {k: frozenset(v) for k, v in schemes.items()})
    assert not recs.problems
    mapped = map_records(recs.records, Minter("https://w3id.org/labgraph"), schemes)
    assert signature(mapped, "sparql") == signature(mapped, "pyshacl") == set()
