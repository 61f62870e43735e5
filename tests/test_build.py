"""The pipeline end to end: a valid release of the real network, or nothing published."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import isomorphic

from labgraph import formats, jsonld
from labgraph.build import build, turtle_prefixes
from labgraph.dumps import write_dumps
from labgraph.mapping import Origin, graph_of, read_triples
from labgraph.release import DUMP_NAMES, current, list_releases, open_release, staging
from labgraph.settings import Settings

from conftest import REPO, repo_settings

MINI = REPO / "tests" / "fixtures" / "mini"
LG = "https://w3id.org/labgraph/def/"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labgraph.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def query(path: Path, sparql: str) -> list[dict[str, str]]:
    store = ox.Store()
    store.load(path=str(path), format=ox.RdfFormat.N_TRIPLES)
    return [
        {v.value: row[v.value].value for v in row_vars}
        for row_vars, row in ((store.query(sparql).variables, r) for r in store.query(sparql))
    ]


def test_the_real_network_is_published(settings: Settings) -> None:
    release = current(settings.releases_dir)
    assert release is not None
    open_release(release.path, verify=True)
    counts = release.manifest["counts"]
    assert counts["lab"] >= 18 and counts["institution"] >= 10
    assert release.manifest["validation"] == {"conforms": True, "violations": 0}
    for name in ("labgraph", *DUMP_NAMES.values()):
        for fmt in formats.DUMP_FORMATS:
            assert f"{name}.{fmt.extension}" in release.manifest["files"]
            assert f"{name}.{fmt.extension}.gz" in release.manifest["files"]


def test_every_record_has_a_source_and_every_lab_a_french_label_and_a_host(
    settings: Settings,
) -> None:
    release = current(settings.releases_dir)
    assert release is not None
    nt = release.file("labgraph.nt")
    unsourced = query(
        nt,
        """
        PREFIX prov: <http://www.w3.org/ns/prov#>
        PREFIX dct: <http://purl.org/dc/terms/>
        SELECT ?s WHERE { ?s dct:identifier ?id FILTER NOT EXISTS { ?s prov:wasDerivedFrom ?src }
                          FILTER NOT EXISTS { ?s a dct:BibliographicResource } }""",
    )
    assert unsourced == []
    bad_labs = query(
        nt,
        f"""
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        PREFIX org: <http://www.w3.org/ns/org#>
        SELECT ?lab WHERE {{ ?lab a <{LG}Lab>
          FILTER (NOT EXISTS {{ ?lab rdfs:label ?l FILTER (lang(?l) = "fr") }}
                  || NOT EXISTS {{ ?lab org:unitOf ?host }}) }}""",
    )
    assert bad_labs == []


def test_no_personal_data_columns_reach_the_graph(settings: Settings) -> None:
    release = current(settings.releases_dir)
    assert release is not None
    text = release.file("labgraph.nt").read_text(encoding="utf-8")
    for marker in ("mailto:", "foaf:Person", "http://xmlns.com/foaf/0.1/Person", "vcard:tel"):
        assert marker not in text


def test_same_input_gives_byte_identical_dumps(tmp_path: Path) -> None:
    first = build(repo_settings(releases_dir=tmp_path / "a")).release
    second = build(repo_settings(releases_dir=tmp_path / "b")).release
    assert first is not None and second is not None
    dumps = [
        n
        for n in first.manifest["files"]
        if not n.startswith(("manifest", "validation", "catalog", "void"))
    ]
    assert dumps
    for name in dumps:
        assert first.file(name).read_bytes() == second.file(name).read_bytes(), name


def _expected_dumps(triples: list[ox.Triple], prefixes: dict[str, str]) -> dict[str, bytes]:
    """The dumps of sorted ``triples`` as the whole graph's in-memory serialisers write them."""
    nt = "".join(f"{t} .\n" for t in triples).encode()
    return {
        "nt": nt,
        "nq": nt,
        "ttl": formats.serialize_graph(triples, formats.TURTLE, prefixes),
        "jsonld": jsonld.dumps(triples),
    }


def test_streamed_dumps_equal_the_whole_graph_serialisations(settings: Settings) -> None:
    """Dumps are streamed from disk; their bytes must stay those of serialising the whole graph
    (and each record type's triples) at once: sorted N-Triples lines, Turtle with sorted prefix
    lines, JSON-LD nodes sorted by subject id."""
    release = current(settings.releases_dir)
    assert release is not None
    prefixes = turtle_prefixes(settings.base)
    for name in ("labgraph", *DUMP_NAMES.values()):
        lines = release.file(f"{name}.nt").read_bytes().decode().splitlines(keepends=True)
        assert lines == sorted(set(lines)), name
        triples = list(read_triples(release.file(f"{name}.nt")))
        for ext, data in _expected_dumps(triples, prefixes).items():
            assert release.file(f"{name}.{ext}").read_bytes() == data, f"{name}.{ext}"
            packed = release.file(f"{name}.{ext}.gz").read_bytes()
            assert packed == gzip.compress(data, compresslevel=6, mtime=0), f"{name}.{ext}.gz"


def test_dump_order_where_ids_are_prefixes_of_one_another(tmp_path: Path) -> None:
    """``<…/a-1>`` sorts before ``<…/a>`` as an N-Triples line, after it as a JSON-LD id."""
    base = "http://example.invalid/test"
    label = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
    ids = ("a", "a-1", "a1", "a/b", "b", "é")
    subjects = {f"{base}/id/lab/{i}": Origin("lab", "labs.csv", n) for n, i in enumerate(ids, 2)}
    triples = [
        ox.Triple(ox.NamedNode(s), label, ox.Literal(f"{i} {k}", language="fr"))
        for s, i in zip(subjects, ids, strict=True)
        for k in range(2)
    ]
    triples.append(
        ox.Triple(ox.NamedNode("http://example.invalid/concept/x"), label, ox.Literal("shared"))
    )
    mapped = graph_of(reversed(triples), subjects, folder=tmp_path / "graph")
    prefixes = turtle_prefixes(base)
    with staging(tmp_path / "releases", "test") as stage:
        write_dumps(stage, mapped, prefixes)
        written = {name: (stage.path / name).read_bytes() for name in stage.files}
    whole = sorted(triples, key=lambda t: f"{t} .\n")
    labs = [t for t in whole if t.subject.value in subjects]
    for name, part in (("labgraph", whole), ("labs", labs)):
        for ext, data in _expected_dumps(part, prefixes).items():
            assert written[f"{name}.{ext}"] == data, f"{name}.{ext}"
            assert gzip.decompress(written[f"{name}.{ext}.gz"]) == data
    order = [
        n["id"].removeprefix(f"{base}/id/lab/")
        for n in json.loads(written["labs.jsonld"])["@graph"]
    ]
    assert order == sorted(ids)
    nt_order = [
        line.split(">", 1)[0].removeprefix(f"<{base}/id/lab/")
        for line in written["labs.nt"].decode().splitlines()[::2]
    ]
    assert nt_order != order  # the two orders differ here: both are pinned above


def test_every_dump_parses_with_rdflib_to_the_same_graph(settings: Settings) -> None:
    release = current(settings.releases_dir)
    assert release is not None
    reference = rdflib.Graph().parse(release.file("labgraph.nt"), format="nt")
    context = json.loads(jsonld.context_bytes())["@context"]
    for fmt, rdflib_name in (
        (formats.TURTLE, "turtle"),
        (formats.NQUADS, "nquads"),
        (formats.JSONLD, "json-ld"),
    ):
        raw = gzip.decompress(release.file(f"labgraph.{fmt.extension}.gz").read_bytes())
        assert raw == release.file(f"labgraph.{fmt.extension}").read_bytes()
        graph = rdflib.Dataset() if fmt is formats.NQUADS else rdflib.Graph()
        kwargs = {"context": context} if fmt is formats.JSONLD else {}
        graph.parse(data=raw, format=rdflib_name, **kwargs)
        if isinstance(graph, rdflib.Dataset):
            graph = rdflib.Graph() + graph.default_graph
        assert isomorphic(graph, reference), fmt.name


def test_jsonld_uses_the_published_short_keys(settings: Settings) -> None:
    release = current(settings.releases_dir)
    assert release is not None
    doc = json.loads(release.file("labs.jsonld").read_bytes())
    ti_lab = next(n for n in doc["@graph"] if n["id"].endswith("/id/lab/ti-lab"))
    assert ti_lab["name"] == "Ti Lab"
    assert "Lab" in ti_lab["type"]
    assert all(h.startswith("https://") for h in ti_lab["hostedBy"])
    assert release.file("context.jsonld").read_bytes() == jsonld.context_bytes()


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(MINI, data)
    return data


def mini_args(data: Path) -> list[str]:
    return [
        "--data",
        str(data),
        "--releases",
        str(data.parent / "releases"),
        "--base",
        "http://example.invalid/test",
    ]


def test_cli_build_then_broken_record_leaves_current_untouched(mini: Path) -> None:
    ok = run_cli("build", *mini_args(mini))
    assert ok.returncode == 0, ok.stderr
    releases = mini.parent / "releases"
    before = current(releases)
    assert before is not None
    labs = mini / "labs.csv"
    labs.write_text(labs.read_text(encoding="utf-8").replace(",2016,", ",20x1,"), encoding="utf-8")
    bad = run_cli("build", *mini_args(mini))
    assert bad.returncode == 1
    assert 'labs.csv:2: column "founded": "20x1" is not a year' in bad.stderr
    assert "Traceback" not in bad.stderr
    after = current(releases)
    assert after is not None and after.id == before.id
    assert len(list_releases(releases)) == 1


def test_shacl_violation_is_traced_to_its_record(mini: Path) -> None:
    events = mini / "events.csv"
    events.write_text(
        events.read_text(encoding="utf-8").replace(
            "2022-11-02,2022-11-30", "2022-11-30,2022-11-02"
        ),
        encoding="utf-8",
    )
    result = run_cli("build", *mini_args(mini))
    assert result.returncode == 1
    assert 'events.csv:3: column "start": An event cannot end before it starts.' in result.stderr
    assert current(mini.parent / "releases") is None
    # the dumps written while validating went with their staging folder
    assert not (mini.parent / "releases").exists()


def test_validate_formats(mini: Path) -> None:
    text = run_cli("validate", *mini_args(mini))
    assert text.returncode == 0 and text.stdout.startswith("valid:")
    as_json = json.loads(run_cli("validate", "--format", "json", *mini_args(mini)).stdout)
    assert as_json["conforms"] is True
    ttl = run_cli("validate", "--format", "ttl", *mini_args(mini)).stdout
    graph = rdflib.Graph().parse(data=ttl, format="turtle")
    assert (
        None,
        rdflib.URIRef("http://www.w3.org/ns/shacl#conforms"),
        rdflib.Literal(True),
    ) in graph
    assert not (mini.parent / "releases").exists()


def test_usage_errors_exit_2_and_version(mini: Path) -> None:
    assert run_cli("build", "--no-such-flag").returncode == 2
    bad_base = run_cli("build", "--base", "not-an-iri", *mini_args(mini)[:4])
    assert bad_base.returncode == 2 and "base" in bad_base.stderr
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("labgraph ")


def test_quiet_when_piped(mini: Path) -> None:
    result = run_cli("build", *mini_args(mini))
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.startswith("release ")


def test_a_failure_while_writing_leaves_no_trace(
    mini: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = repo_settings(
        data_dir=mini, releases_dir=mini.parent / "releases", base="http://example.invalid/test"
    )
    first = build(settings).release
    assert first is not None

    def explode(*args: object, **kwargs: object) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr(jsonld, "write_nodes", explode)
    with open(mini / "labs.csv", "a", encoding="utf-8") as fh:
        fh.write("lab-gamma,Lab Gamma,,inst-one,,,,,,,,https://example.org/g\n")
    with pytest.raises(OSError, match="disk full"):
        build(settings)
    releases = mini.parent / "releases"
    assert current(releases).id == first.id  # type: ignore[union-attr]
    assert [p.name for p in releases.iterdir() if p.name.startswith(".staging")] == []


def test_incremental_validation_checks_only_changed_records_and_their_dependents(
    mini: Path,
) -> None:
    settings = repo_settings(
        data_dir=mini, releases_dir=mini.parent / "releases", base="http://example.invalid/test"
    )
    first = build(settings)
    assert first.ok and first.validated == 9
    again = build(settings)
    assert again.ok and again.validated == 0
    institutions = mini / "institutions.csv"
    institutions.write_text(
        institutions.read_text(encoding="utf-8").replace(
            "Institution Deux,I2", "Institution Deux,I-2"
        ),
        encoding="utf-8",
    )
    changed = build(settings)
    # inst-two, plus lab-beta and proj-x that link to it
    assert changed.ok and changed.validated == 3
    full = build(settings, full=True)
    assert full.validated == 9
    events = mini / "events.csv"
    events.write_text(
        events.read_text(encoding="utf-8").replace(
            "2022-11-02,2022-11-30", "2022-11-30,2022-11-02"
        ),
        encoding="utf-8",
    )
    broken = build(settings)
    assert not broken.ok and broken.validated == 1
    assert 'column "start"' in str(broken.problems[0])
    releases = mini.parent / "releases"
    assert current(releases).id == full.release.id  # type: ignore[union-attr]
    assert [p.name for p in releases.iterdir() if p.name.startswith(".")] == []
