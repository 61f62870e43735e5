"""The catalogue harvesters read: DCAT-AP 3.0.1 valid, true to the dumps, VoID true to the graph.

A release is built from the real records; its catalogue, VoID and service description are then
checked against the official DCAT-AP shapes (../shared/conformance, cloned beside the repository)
and against the release itself, counted independently with SPARQL.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyoxigraph as ox
import pyshacl
import pytest
import rdflib
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, RDF, SH

from labgraph import catalog, formats, settings
from labgraph.build import build
from labgraph.mapping import read_triples
from labgraph.release import DUMP_NAMES, Release

REPO = Path(__file__).resolve().parents[1]
BASE = "https://w3id.org/labgraph"
# Open namespaces: rdflib's closed DCAT and XSD warn when pytest probes module attributes.
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
XSD = rdflib.Namespace("http://www.w3.org/2001/XMLSchema#")
SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
LOV2 = "https://www.etalab.gouv.fr/licence-ouverte-open-licence"
DATE_TYPES = {str(XSD.date), str(XSD.dateTime), str(XSD.gYear), str(XSD.gYearMonth)}


def dcat_ap_shapes() -> Path:
    """``<repo>/../shared/conformance/dcat-ap``: CI clones the shared suites beside the repository.

    Missing means the checks cannot run: the tests that need it fail, they are never skipped.
    """
    path = REPO.parent / "shared" / "conformance" / "dcat-ap"
    assert path.is_dir(), (
        f"{path} not found: clone the shared conformance files beside the repository (../shared)"
    )
    return path


@dataclass(frozen=True)
class Built:
    release: Release
    outputs: dict[str, tuple[bytes, str]]
    graph_nt: bytes
    checksums: bool
    settings: settings.Settings

    def graph(self, name: str) -> rdflib.Graph:
        data, media_type = self.outputs[name]
        fmt = formats.by_media_type(media_type)
        assert fmt is not None
        parser = {"turtle": "turtle", "jsonld": "json-ld", "rdfxml": "xml"}[fmt.name]
        return rdflib.Graph().parse(data=data, format=parser)


def _build(tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> Built:
    releases = tmp_path_factory.mktemp("catalog") / "releases"
    config = settings.load(
        base=BASE,
        data_dir=REPO / "data",
        releases_dir=releases,
        ontology=REPO / "ontology" / "labgraph.ttl",
        shapes=REPO / "shapes" / "labgraph.ttl",
        rate_limit=0,
        **overrides,
    )
    outcome = build(config)
    assert outcome.ok and outcome.release is not None, outcome.problems
    release = outcome.release
    manifest = release.manifest
    graph_nt = release.file("labgraph.nt").read_bytes()
    checksums = bool(overrides.get("catalog_checksums", False))
    outputs = catalog.release_files(
        release_id=release.id,
        built=dt.datetime.fromisoformat(manifest["built"]),
        base=manifest["base"],
        counts=manifest["counts"],
        files=manifest["files"],
        graph_nt=graph_nt,
        checksums=checksums,
    )
    for name, (data, _) in outputs.items():  # the build wrote these very bytes
        assert release.file(name).read_bytes() == data, name
    return Built(release, outputs, graph_nt, checksums, config)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A release built with the default settings: no spdx:checksum in the catalogue."""
    return _build(tmp_path_factory)


@pytest.fixture(scope="module")
def built_checksums(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A release built with ``catalog_checksums`` on."""
    return _build(tmp_path_factory, catalog_checksums=True)


@pytest.fixture(scope="module", params=["default", "checksums"])
def any_built(request: pytest.FixtureRequest) -> Built:
    """Each of the two catalogues: the default one, and the one with checksums."""
    return request.getfixturevalue("built" if request.param == "default" else "built_checksums")


@pytest.fixture(scope="module")
def cat(built: Built) -> rdflib.Graph:
    return built.graph("catalog.ttl")


@pytest.fixture(scope="module")
def any_cat(any_built: Built) -> rdflib.Graph:
    return any_built.graph("catalog.ttl")


# ---------------------------------------------------------------------------------------------
# DCAT-AP 3.0.1 shapes


def _shapes(*names: str) -> rdflib.Graph:
    shapes = rdflib.Graph()
    for name in names:
        shapes.parse(dcat_ap_shapes() / name, format="turtle")
    # dcat-ap-SHACL.ttl lists two sh:property shapes of dcat:DataServiceShape that it never
    # defines (…/dc08f4dc…, …/eb3ac4e4…); pyshacl refuses to evaluate a shape that has no
    # sh:path. They constrain nothing, so dropping the dangling references changes no constraint.
    # The split release (3.0.1-html/shapes.ttl) has its DataService shapes whole and is run too.
    for shape, prop in list(shapes.subject_objects(SH.property)):
        if (prop, SH.path, None) not in shapes:
            shapes.remove((shape, SH.property, prop))
    return shapes


@dataclass(frozen=True)
class Result:
    severity: str
    focus: str
    path: str
    value: str
    node: rdflib.term.Node


def _validate(data: rdflib.Graph, shapes: rdflib.Graph) -> tuple[rdflib.Graph, list[Result]]:
    """Top-level results only (not the sh:detail of a failed sh:node)."""
    _, report, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    assert isinstance(report, rdflib.Graph)
    results = []
    for node in report.objects(None, SH.result):

        def get(p: rdflib.URIRef, node: rdflib.term.Node = node) -> str:
            return str(report.value(node, p) or "")

        results.append(
            Result(
                get(SH.resultSeverity).rsplit("#")[-1],
                get(SH.focusNode),
                get(SH.resultPath),
                get(SH.value),
                node,
            )
        )
    return report, results


def test_catalogue_has_zero_dcat_ap_violations(any_cat: rdflib.Graph) -> None:
    for names in (
        ("3.0.1/dcat-ap-SHACL.ttl",),
        ("3.0.1-html/shapes.ttl", "3.0.1-html/range.ttl", "3.0.1-html/deprecateduris.ttl"),
    ):
        _, results = _validate(any_cat, _shapes(*names))
        assert results == [], names  # no violation, and not even a warning


def test_only_recommendations_the_data_cannot_meet_remain(
    any_built: Built, any_cat: rdflib.Graph
) -> None:
    _, results = _validate(any_cat, _shapes("3.0.1-html/shapes_recommended.ttl"))
    assert {r.severity for r in results} <= {"Warning"}
    # What remains, and why it cannot be addressed from the data:
    # - dcat:bbox / dcat:centroid of dct:spatial France (EU country FRA): the graph holds no
    #   geometry, and France with its overseas regions has no meaningful box or centre;
    # - dct:temporal of a dataset whose records carry no date at all (host institutions): a
    #   period would have to be invented.
    undated = {str(_dataset_iri(t)) for t in DUMP_NAMES if not _dates(any_built.graph_nt, t)}
    france = "http://publications.europa.eu/resource/authority/country/FRA"
    allowed = {(france, str(DCAT.bbox)), (france, str(DCAT.centroid))}
    allowed |= {(iri, str(DCTERMS.temporal)) for iri in undated}
    assert {(r.focus, r.path) for r in results} <= allowed


def test_controlled_vocabularies_are_used_as_dcat_ap_expects(any_cat: rdflib.Graph) -> None:
    report, results = _validate(any_cat, _shapes("3.0.1-html/mdr-vocabularies.shape.ttl"))
    for r in results:
        if r.path == str(SPDX.algorithm):
            # The shape wants "^https://spdx.org/rdf/terms", yet SPDX terms (and the class the
            # DCAT-AP shapes themselves require, spdx:ChecksumAlgorithm) are http: a defect of
            # mdr-vocabularies.shape.ttl. Our value is SPDX's own sha256 term.
            assert r.value == str(SPDX.checksumAlgorithm_sha256)
        else:
            # The DITP is not in the EU corporate-bodies table (a warning by design): the only
            # complaint allowed is that one; its publisher type must pass.
            assert (r.severity, r.path) == ("Warning", str(DCTERMS.publisher)), r
            details = [report.value(d, SH.resultPath) for d in report.objects(r.node, SH.detail)]
            assert details and set(details) == {rdflib.SKOS.inScheme}, details


# ---------------------------------------------------------------------------------------------
# What udata and data.europa.eu rely on


# rdflib's own JSON-LD parser uses its deprecated ConjunctiveGraph: not ours to fix.
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_every_output_parses_without_a_base_iri(built: Built) -> None:
    assert {name: media_type for name, (_, media_type) in built.outputs.items()} == {
        "catalog.ttl": "text/turtle",
        "catalog.jsonld": "application/ld+json",
        "catalog.rdf": "application/rdf+xml",
        "void.ttl": "text/turtle",
        "service-description.ttl": "text/turtle",
    }
    turtle = built.graph("catalog.ttl")
    for name, (data, media_type) in built.outputs.items():
        fmt = formats.by_media_type(media_type)
        assert fmt is not None and fmt.rdf is not None
        triples = list(ox.parse(data, format=fmt.rdf))  # no base_iri: relative IRIs would fail
        assert triples, name
        graph = built.graph(name)
        for term in (t for triple in graph for t in triple):
            if isinstance(term, rdflib.URIRef):
                assert str(term).startswith(("http://", "https://")), (name, term)
        if name.startswith("catalog."):
            assert isomorphic(graph, turtle), name


def test_outputs_are_deterministic(any_built: Built) -> None:
    m = any_built.release.manifest
    again = catalog.release_files(
        release_id=m["id"],
        built=dt.datetime.fromisoformat(m["built"]),
        base=m["base"],
        counts=m["counts"],
        files=m["files"],
        graph_nt=any_built.graph_nt,
        checksums=any_built.checksums,
    )
    assert again == any_built.outputs
    for name, (data, _) in any_built.outputs.items():
        if name.endswith(".ttl"):
            prefixes = [line for line in data.splitlines() if line.startswith(b"@prefix ")]
            assert prefixes == sorted(prefixes), name


def test_each_dataset_has_a_title_and_a_unique_identifier(built: Built, cat: rdflib.Graph) -> None:
    datasets = set(cat.subjects(RDF.type, DCAT.Dataset))
    expected = {_dataset_iri(None)} | {
        _dataset_iri(t) for t in built.release.manifest["counts"] if t in DUMP_NAMES
    }
    assert datasets == expected
    identifiers = []
    for dataset in datasets:
        assert list(cat.objects(dataset, DCTERMS.title)), dataset
        ids = list(cat.objects(dataset, DCTERMS.identifier))
        assert ids == [rdflib.Literal(str(dataset))]
        identifiers += ids
    assert len(set(identifiers)) == len(identifiers)
    catalogue = rdflib.URIRef(f"{BASE}/catalog")
    assert set(cat.objects(catalogue, DCAT.dataset)) == datasets


def test_every_dump_is_a_distribution_true_to_the_manifest(
    any_built: Built, any_cat: rdflib.Graph
) -> None:
    built, cat = any_built, any_cat
    files = built.release.manifest["files"]
    dumps = {
        n
        for n in files
        if n.split(".", 1)[0] in {"labgraph", *DUMP_NAMES.values()}
        and n.split(".")[1] in {f.extension for f in formats.DUMP_FORMATS}
    }
    seen = set()
    for dist in cat.subjects(RDF.type, DCAT.Distribution):
        url = str(cat.value(dist, DCAT.downloadURL))
        assert url.startswith(f"{BASE}/dumps/"), dist
        assert cat.value(dist, DCAT.accessURL) == rdflib.URIRef(url)
        name = url.removeprefix(f"{BASE}/dumps/")
        seen.add(name)
        data = built.release.file(name).read_bytes()
        size = cat.value(dist, DCAT.byteSize)
        assert size.datatype == XSD.nonNegativeInteger
        assert int(size) == files[name]["bytes"] == len(data)
        checksum = cat.value(dist, SPDX.checksum)
        if not built.checksums:
            assert checksum is None, dist
        else:
            assert isinstance(checksum, rdflib.URIRef)  # minted, not a blank node
            assert cat.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256
            value = cat.value(checksum, SPDX.checksumValue)
            assert value.datatype == XSD.hexBinary
            assert str(value) == files[name]["sha256"] == hashlib.sha256(data).hexdigest()
        fmt = formats.by_extension(name.split(".")[1], formats.DUMP_FORMATS)
        assert fmt is not None
        assert cat.value(dist, DCAT.mediaType) == rdflib.URIRef(fmt.iana_iri)
        assert cat.value(dist, DCTERMS.format) == rdflib.URIRef(str(fmt.eu_iri))
        assert cat.value(dist, DCTERMS.license) == rdflib.URIRef(LOV2)
        if name.endswith(".gz"):
            assert cat.value(dist, DCAT.compressFormat) == rdflib.URIRef(
                formats.IANA + "application/gzip"
            )
            assert gzip.decompress(data) == built.release.file(name[:-3]).read_bytes()
        else:
            assert cat.value(dist, DCAT.compressFormat) is None
    assert seen == dumps


def test_default_catalogue_has_no_checksum(cat: rdflib.Graph) -> None:
    # udata 17.18 rejects a dataset whose distributions have an xsd:hexBinary
    # spdx:checksumValue (docs/harvesters.md): by default the catalogue has no SPDX term at all.
    assert settings.Settings.model_fields["catalog_checksums"].default is False
    spdx = [t for t in cat if any(str(term).startswith(str(SPDX)) for term in t)]
    assert spdx == []
    assert any(cat.subjects(RDF.type, DCAT.Distribution))


def test_every_download_answers_with_the_announced_sha256(built_checksums: Built) -> None:
    """With checksums on, each distribution URL, as served, gives the bytes the catalogue hashes."""
    from fastapi.testclient import TestClient

    from labgraph.web.app import create_app

    with TestClient(create_app(built_checksums.settings), base_url="http://testserver") as client:
        served = client.get("/catalog.ttl")
        assert served.status_code == 200
        assert served.content == built_checksums.outputs["catalog.ttl"][0]
        cat = rdflib.Graph().parse(data=served.content, format="turtle")
        checked = 0
        for dist in cat.subjects(RDF.type, DCAT.Distribution):
            url = str(cat.value(dist, DCAT.downloadURL))
            announced = str(cat.value(cat.value(dist, SPDX.checksum), SPDX.checksumValue))
            response = client.get(url.removeprefix(BASE))
            assert response.status_code == 200, url
            assert hashlib.sha256(response.content).hexdigest() == announced, url
            assert len(response.content) == int(cat.value(dist, DCAT.byteSize)), url
            assert response.headers["digest"] == f"sha-256={announced}", url
            checked += 1
    assert checked == len(list(cat.subjects(RDF.type, DCAT.Distribution))) > 0


def test_licence_is_the_one_data_gouv_fr_knows_as_lov2(cat: rdflib.Graph) -> None:
    licence = rdflib.URIRef(LOV2)
    assert (licence, RDF.type, DCTERMS.LicenseDocument) in cat
    # udata takes a licence's rdfs:label instead of its IRI when it has one: keep the IRI.
    assert cat.value(licence, rdflib.RDFS.label) is None
    for class_ in (DCAT.Catalog, DCAT.Dataset, DCAT.Distribution, DCAT.DataService):
        for node in cat.subjects(RDF.type, class_):
            assert list(cat.objects(node, DCTERMS.license)) == [licence], node


def test_dates_are_the_build_time_and_never_in_the_future(built: Built) -> None:
    built_at = dt.datetime.fromisoformat(built.release.manifest["built"])
    now = dt.datetime.now(dt.UTC)
    seen = 0
    for name in ("catalog.ttl", "void.ttl"):
        graph = built.graph(name)
        for predicate in (DCTERMS.issued, DCTERMS.modified):
            for value in graph.objects(None, predicate):
                assert value.datatype == XSD.dateTime
                moment = value.toPython()
                assert moment == built_at <= now
                seen += 1
    assert seen > 2


def test_referenced_resources_have_an_explicit_class(cat: rdflib.Graph) -> None:
    # Values that are addresses to fetch, not resources described by the catalogue.
    addresses = {
        DCAT.downloadURL,
        DCAT.accessURL,
        DCAT.endpointURL,
        DCAT.endpointDescription,
        rdflib.URIRef("http://www.w3.org/2006/vcard/ns#hasURL"),
        rdflib.SKOS.inScheme,
    }
    for s, p, o in cat:
        if p == RDF.type or p in addresses or isinstance(o, rdflib.Literal):
            continue
        assert cat.value(o, RDF.type) is not None, (s, p, o)


def test_temporal_extent_is_computed_from_the_dates_of_each_dataset(
    built: Built, cat: rdflib.Graph
) -> None:
    for type_ in (None, *DUMP_NAMES):
        dataset = _dataset_iri(type_)
        if (dataset, RDF.type, DCAT.Dataset) not in cat:
            continue
        dates = _dates(built.graph_nt, type_)
        period = cat.value(dataset, DCTERMS.temporal)
        if not dates:
            assert period is None, dataset
            continue
        assert isinstance(period, rdflib.BNode)  # udata would fetch a period named by IRI
        starts, ends = zip(*(_extent(d) for d in dates), strict=True)
        assert cat.value(period, DCAT.startDate) == rdflib.Literal(min(starts), datatype=XSD.date)
        assert cat.value(period, DCAT.endDate) == rdflib.Literal(max(ends), datatype=XSD.date)


def test_data_service_serves_the_whole_graph(cat: rdflib.Graph) -> None:
    service = rdflib.URIRef(f"{BASE}/sparql#service")
    assert (rdflib.URIRef(f"{BASE}/catalog"), DCAT.service, service) in cat
    assert cat.value(service, DCAT.endpointURL) == rdflib.URIRef(f"{BASE}/sparql")
    assert cat.value(service, DCAT.endpointDescription) == rdflib.URIRef(f"{BASE}/sparql")
    assert cat.value(service, DCAT.servesDataset) == _dataset_iri(None)
    # udata skips a dcat:DataService without dct:identifier; like a dataset's, it is its IRI.
    assert list(cat.objects(service, DCTERMS.identifier)) == [rdflib.Literal(str(service))]


# ---------------------------------------------------------------------------------------------
# VoID and the service description, counted independently


def _count(store: ox.Store, where: str) -> int:
    rows = list(store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ {where} }}"))
    return int(rows[0]["n"].value)


def _void_value(void: ox.Store, subject: str, prop: str) -> int:
    rows = list(void.query(f"SELECT ?v WHERE {{ <{subject}> <{VOID[prop]}> ?v }}"))
    assert len(rows) == 1, (subject, prop)
    return int(rows[0]["v"].value)


def test_void_counts_match_the_graph(built: Built) -> None:
    graph = ox.Store()
    graph.bulk_load(built.graph_nt, format=ox.RdfFormat.N_TRIPLES)
    void = ox.Store()
    void.load(built.outputs["void.ttl"][0], format=ox.RdfFormat.TURTLE)
    whole = str(_dataset_iri(None))
    expected = {
        "triples": _count(graph, "?s ?p ?o"),
        "entities": _count(
            graph,
            f"SELECT DISTINCT ?s WHERE {{ ?s ?p ?o "
            f"FILTER(isIRI(?s) && STRSTARTS(STR(?s), '{BASE}/id/')) }}",
        ),
        "classes": _count(graph, "SELECT DISTINCT ?c WHERE { ?s a ?c }"),
        "properties": _count(graph, "SELECT DISTINCT ?p WHERE { ?s ?p ?o }"),
        "distinctSubjects": _count(graph, "SELECT DISTINCT ?s WHERE { ?s ?p ?o }"),
        "distinctObjects": _count(graph, "SELECT DISTINCT ?o WHERE { ?s ?p ?o }"),
    }
    assert expected["triples"] == built.release.manifest["counts"]["triples"]
    for prop, n in expected.items():
        assert _void_value(void, whole, prop) == n, prop
    for type_, stem in DUMP_NAMES.items():
        subset = f"{BASE}/dataset/{stem}"
        where = f"?s ?p ?o FILTER(STRSTARTS(STR(?s), '{BASE}/id/{type_}/'))"
        assert _void_value(void, subset, "triples") == _count(graph, where)
        assert _void_value(void, subset, "entities") == built.release.manifest["counts"][type_]
    links = _count(
        graph,
        "?s <http://purl.org/dc/terms/spatial> ?r "
        "FILTER(STRSTARTS(STR(?r), 'http://id.insee.fr/geo/region/'))",
    )
    assert links > 0
    assert _void_value(void, f"{BASE}/.well-known/void#insee-regions", "triples") == links


def test_void_points_at_the_dumps_the_endpoint_and_the_vocabularies(built: Built) -> None:
    void = built.graph("void.ttl")
    whole = _dataset_iri(None)
    assert void.value(whole, VOID.sparqlEndpoint) == rdflib.URIRef(f"{BASE}/sparql")
    assert void.value(whole, VOID.uriSpace) == rdflib.Literal(f"{BASE}/id/")
    assert {str(d) for d in void.objects(whole, VOID.dataDump)} == {
        f"{BASE}/dumps/{n}"
        for n in built.release.manifest["files"]
        if n.startswith("labgraph.")
        and n.split(".")[1] in {f.extension for f in formats.DUMP_FORMATS}
    }
    graph = rdflib.Graph().parse(data=built.graph_nt, format="nt")
    terms = set(graph.predicates()) | set(graph.objects(None, RDF.type))
    vocabularies = {str(v) for v in void.objects(whole, VOID.vocabulary)}
    for term in terms:
        assert any(str(term).startswith(v) for v in vocabularies), term
    assert rdflib.URIRef(f"{BASE}/id/institution/ditp") in set(
        void.objects(whole, VOID.rootResource)
    )
    linkset = rdflib.URIRef(f"{BASE}/.well-known/void#insee-regions")
    assert void.value(linkset, RDF.type) == VOID.Linkset
    assert void.value(linkset, VOID.linkPredicate) == DCTERMS.spatial
    assert void.value(linkset, VOID.subjectsTarget) == whole


def test_service_description_describes_the_endpoint(built: Built) -> None:
    sd = built.graph("service-description.ttl")
    services = list(sd.subjects(RDF.type, SD.Service))
    assert len(services) == 1
    service = services[0]
    assert sd.value(service, SD.endpoint) == rdflib.URIRef(f"{BASE}/sparql")
    assert sd.value(service, SD.supportedLanguage) == SD.SPARQL11Query
    assert list(sd.objects(service, SD.feature)) == []  # no union default graph, no federation
    w3c = {
        "application/sparql-results+json": "SPARQL_Results_JSON",
        "application/sparql-results+xml": "SPARQL_Results_XML",
        "text/csv": "SPARQL_Results_CSV",
        "text/tab-separated-values": "SPARQL_Results_TSV",
        "text/turtle": "Turtle",
        "application/ld+json": "JSON-LD",
        "application/rdf+xml": "RDF_XML",
        "application/n-triples": "N-Triples",
        "application/n-quads": "N-Quads",
        "application/trig": "TriG",
    }
    assert {str(f) for f in sd.objects(service, SD.resultFormat)} == {
        "http://www.w3.org/ns/formats/" + w3c[f.media_type]
        for f in (*formats.RESULTS_FORMATS, *formats.GRAPH_FORMATS)
    }
    default_graph = sd.value(sd.value(service, SD.defaultDataset), SD.defaultGraph)
    assert int(sd.value(default_graph, VOID.triples)) == len(built.graph_nt.splitlines())
    assert _dataset_iri(None) in set(sd.objects(default_graph, rdflib.RDFS.seeAlso))


def test_inconsistent_inputs_are_refused(built: Built) -> None:
    m = built.release.manifest
    with pytest.raises(ValueError, match="triples"):
        catalog.release_files(
            release_id=m["id"],
            built=dt.datetime.fromisoformat(m["built"]),
            base=BASE,
            counts={**m["counts"], "triples": 1},
            files=m["files"],
            graph_nt=built.graph_nt,
        )
    with pytest.raises(ValueError, match="timezone"):
        catalog.release_files(
            release_id=m["id"],
            built=dt.datetime(2024, 1, 1),
            base=BASE,
            counts=m["counts"],
            files=m["files"],
            graph_nt=built.graph_nt,
        )


def test_temporal_extent_covers_whole_years_and_months() -> None:
    nt = "\n".join(
        f'<{BASE}/id/event/e{i}> <https://schema.org/startDate> "{v}"^^<{XSD}{t}> .'
        for i, (v, t) in enumerate(
            (
                ("2014", "gYear"),
                ("2024-02", "gYearMonth"),
                ("2020-06-15", "date"),
                ("2023-02-30", "date"),
            )
        )
    )
    stats = catalog.graph_stats(nt.encode(), BASE)
    part = stats.by_type["event"]
    # an impossible date (30 February) says nothing about the extent
    assert (part.start, part.end) == (dt.date(2014, 1, 1), dt.date(2024, 2, 29))
    assert stats.by_type["lab"].start is None


def test_statistics_in_python_equal_the_sparql_aggregates(tmp_path: Path) -> None:
    """Large builds count the graph in one pass in Python (graph_stats_nt), small ones with
    SPARQL over a store in memory (graph_stats): both must say the same."""
    from labgraph.build import _map
    from labgraph.mapping import graph_of

    s = settings.load(data_dir=REPO / "data", base=BASE)
    outcome, _ = _map(s, progress=lambda _: None, full=True, workdir=None, keep_records=False)
    assert outcome.mapped is not None
    extra = [
        ox.Triple(ox.NamedNode(f"{BASE}/id/event/e{i}"), ox.NamedNode(p), o)
        for i, (p, o) in enumerate(
            (
                (
                    "https://schema.org/startDate",
                    ox.Literal("2014", datatype=ox.NamedNode(f"{XSD}gYear")),
                ),
                (
                    "https://schema.org/endDate",
                    ox.Literal("2023-02-30", datatype=ox.NamedNode(f"{XSD}date")),
                ),
                (
                    "http://purl.org/dc/terms/date",
                    ox.Literal("1999-12", datatype=ox.NamedNode(f"{XSD}gYearMonth")),
                ),
                (
                    "http://purl.org/dc/terms/spatial",
                    ox.NamedNode("http://id.insee.fr/geo/region/11"),
                ),
                (
                    "http://purl.org/dc/terms/spatial",
                    ox.Literal("http://id.insee.fr/geo/region/11"),
                ),
                ("http://www.w3.org/1999/02/22-rdf-syntax-ns#type", ox.Literal("not a class")),
                ("http://example.org/p", ox.Literal('a "quoted" \\ line\nbreak', language="fr")),
                ("http://example.org/p", ox.NamedNode(f"{BASE}/id/other/x")),
            )
        )
    ]
    extra.append(
        ox.Triple(
            ox.NamedNode(f"{BASE}/id/other/x"),
            ox.NamedNode("http://example.org/p"),
            ox.Literal("1"),
        )
    )
    for mapped in (
        outcome.mapped,
        graph_of([*read_triples(outcome.mapped.nt), *extra], outcome.mapped.subjects),
    ):
        store = ox.Store()
        store.load(path=str(mapped.nt), format=ox.RdfFormat.N_TRIPLES)
        assert catalog.graph_stats_nt(mapped.nt, BASE) == catalog.graph_stats(store, BASE)
        mapped.close()


# ---------------------------------------------------------------------------------------------
# Helpers written apart from the module under test


def _dataset_iri(type_: str | None) -> rdflib.URIRef:
    return rdflib.URIRef(f"{BASE}/dataset/{DUMP_NAMES[type_]}" if type_ else f"{BASE}/dataset")


def _dates(graph_nt: bytes, type_: str | None) -> list[str]:
    """Lexical forms of the date literals about the subjects of ``type_`` (all when None)."""
    prefix = f"{BASE}/id/{type_}/" if type_ else ""
    return [
        str(o)
        for s, _, o in _parsed(graph_nt)
        if isinstance(o, rdflib.Literal)
        and str(o.datatype) in DATE_TYPES
        and (not type_ or (isinstance(s, rdflib.URIRef) and str(s).startswith(prefix)))
    ]


@lru_cache(maxsize=1)
def _parsed(graph_nt: bytes) -> rdflib.Graph:
    return rdflib.Graph().parse(data=graph_nt, format="nt")


def _extent(lexical: str) -> tuple[str, str]:
    parts = [int(x) for x in lexical[:10].split("-")]
    year, month, day = (*parts, None, None)[:3]
    last_month = month or 12
    end_day = day or calendar.monthrange(year, last_month)[1]
    return (
        f"{year:04d}-{month or 1:02d}-{day or 1:02d}",
        f"{year:04d}-{last_month:02d}-{end_day:02d}",
    )
