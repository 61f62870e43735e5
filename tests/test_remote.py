"""The remote store against a real Oxigraph server (from PyPI), compared with the embedded engine.

The server (``oxigraph`` in conftest) runs as its own process for the session, with its own 4 s
deadline, and also serves the ``remote`` parametrisation of the server tests. The real data is
built once (conftest); derived releases (more triples, a wrong count, broken N-Quads) are written
with the release API under other bases, so each test owns its pointer graph.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pyoxigraph as ox
import pytest

from labgraph import formats, remote, store
from labgraph.release import Release, current, staging
from labgraph.remote import (
    Pointer,
    PublishError,
    RemoteEngine,
    StoreUnavailable,
    graph_iri,
    publish,
    read_pointer,
)
from labgraph.store import Answer, Busy, Job, NotAcceptable, QueryError, QueryTimeout
from labgraph.store import ResultTooLarge as TooLarge
from labgraph.vocab import PREFIXES as VOCAB
from labgraph.web.resources import DESCRIBE

from conftest import free_port

T = TypeVar("T")
PREFIXES = """PREFIX lg: <https://w3id.org/labgraph/def/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX foaf: <http://xmlns.com/foaf/0.1/>
PREFIX schema: <https://schema.org/>
"""
RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
BERCY = "https://w3id.org/labgraph/id/lab/bercy-lab"


class Loop:
    """An event loop in a thread, so engines live across tests and tests stay synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    runner = Loop()
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="module")
def release(releases_dir: Path) -> Release:
    found = current(releases_dir)
    assert found is not None
    return found


def derive(
    release: Release,
    folder: Path,
    *,
    base: str,
    suffix: str,
    extra: int = 0,
    announced: int | None = None,
    nq: bytes | None = None,
) -> Release:
    """A release of the real triples plus ``extra`` new ones, under another base."""
    data = release.file("labgraph.nq").read_bytes() if nq is None else nq
    data += "".join(
        f'<{base}/id/test/{i}> <http://www.w3.org/2000/01/rdf-schema#label> "test {i}" .\n'
        for i in range(extra)
    ).encode()
    triples = int(release.manifest["counts"]["triples"]) + extra
    manifest = {k: v for k, v in release.manifest.items() if k not in ("id", "files")}
    manifest.update(base=base, counts={**manifest["counts"], "triples": announced or triples})
    with staging(folder, f"{release.id}-{suffix}") as stage:
        stage.add("labgraph.nq", data, formats.NQUADS.media_type)
        return stage.commit(manifest, switch=False)


def graphs_under(url: str, base: str) -> set[str]:
    response = httpx.post(
        url + "/query",
        data={"query": "SELECT DISTINCT ?g { GRAPH ?g {} }"},
        headers={"Accept": "text/csv"},
    )
    return {g for g in response.text.split()[1:] if g.startswith(base + "/graph/")}


@pytest.fixture(scope="module")
def published(oxigraph: str, release: Release) -> str:
    return publish(release, oxigraph)


@pytest.fixture(scope="module")
def embedded(
    loop: Loop, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[store.Engine]:
    path = store.prepare(release.file("labgraph.nq"), tmp_path_factory.mktemp("stores"))
    engine = store.Engine(path, size=2, timeout=10, queue_wait=5, max_bytes=50_000_000)
    loop.run(engine.start())
    try:
        yield engine
    finally:
        loop.run(engine.close())


def started(loop: Loop, url: str, base: str, **options: Any) -> RemoteEngine:
    engine = RemoteEngine(
        url,
        base=base,
        **{"timeout": 10, "max_bytes": 50_000_000, "max_concurrent": 4, "queue_wait": 5, **options},
    )
    loop.run(engine.start())
    return engine


@pytest.fixture(scope="module")
def served(loop: Loop, oxigraph: str, published: str, release: Release) -> Iterator[RemoteEngine]:
    engine = started(loop, oxigraph, release.manifest["base"])
    try:
        yield engine
    finally:
        loop.run(engine.close())


# --- publishing -----------------------------------------------------------------------------


def test_publish_loads_the_release_and_points_at_it(
    oxigraph: str, published: str, release: Release, served: RemoteEngine
) -> None:
    base = release.manifest["base"]
    assert published == f"{base}/graph/{release.id}"
    pointer = read_pointer(oxigraph, base)
    assert isinstance(pointer, Pointer)
    assert (pointer.release_id, pointer.graph) == (release.id, published)
    assert pointer.digest == remote._manifest_digest(release)
    assert pointer.built is not None and pointer.published is not None
    assert served.release_id == release.id and served.graph == published
    assert served.count() == release.manifest["counts"]["triples"] == 1527
    assert publish(release, oxigraph) == published  # again: nothing to do, still served


def test_a_new_release_replaces_the_old_atomically_and_old_graphs_go(
    oxigraph: str, release: Release, tmp_path: Path
) -> None:
    base = "https://example.org/switch"
    first = derive(release, tmp_path, base=base, suffix="a")
    second = derive(release, tmp_path, base=base, suffix="b", extra=5_000)
    third = derive(release, tmp_path, base=base, suffix="c", extra=7)
    c1, c2 = first.manifest["counts"]["triples"], second.manifest["counts"]["triples"]
    publish(first, oxigraph)
    pinned = RemoteEngine(
        oxigraph,
        base=base,
        release_id=first.id,
        timeout=10,
        max_bytes=10**6,
        max_concurrent=1,
        queue_wait=1,
    )
    pointer = f"<{base}/graph/current>"
    one_query = (
        f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {pointer} {{ {pointer} "
        f"<http://www.w3.org/ns/prov#wasDerivedFrom> ?g }} GRAPH ?g {{ ?s ?p ?o }} }}"
    )
    seen: dict[str, list[int]] = {"one query": [], "pointer then graph": []}
    stop = threading.Event()

    def count(client: httpx.Client, query: str, graph: str | None = None) -> int:
        data = {"query": query, **({"default-graph-uri": graph} if graph else {})}
        response = client.post(oxigraph + "/query", data=data, headers={"Accept": "text/csv"})
        return int(response.text.split()[1])

    def read(how: str) -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                if how == "one query":
                    seen[how].append(count(client, one_query))
                else:
                    found = read_pointer(oxigraph, base)
                    assert found is not None
                    seen[how].append(
                        count(client, "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", found.graph)
                    )

    readers = [threading.Thread(target=read, args=(how,)) for how in seen]
    for reader in readers:
        reader.start()
    try:
        began = time.monotonic()  # each reader must see the first release before the switch
        while not all(seen.values()) and time.monotonic() - began < 10:
            time.sleep(0.05)
        publish(second, oxigraph)
        deadline = time.monotonic() + 10
        while not all(c2 in counts for counts in seen.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=15)
    for counts in seen.values():
        assert set(counts) == {c1, c2}, "a reader saw a partial or mixed release"
        assert counts.index(c2) > 0 and c1 not in counts[counts.index(c2) :]
    assert pinned.count() == c1  # the previous release stays for engines pinned to it
    assert graphs_under(oxigraph, base) == {
        f"{base}/graph/current",
        f"{base}/graph/{first.id}",
        f"{base}/graph/{second.id}",
    }
    publish(third, oxigraph, update_path="/update")  # the pointer switched by SPARQL Update
    now = read_pointer(oxigraph, base)
    assert now is not None and now.release_id == third.id
    assert graphs_under(oxigraph, base) == {
        f"{base}/graph/current",
        f"{base}/graph/{second.id}",
        f"{base}/graph/{third.id}",
    }
    assert pinned.count() == 0  # pruned: a server reloads its engine when the pointer moves


def test_a_failed_load_never_moves_the_pointer(
    oxigraph: str, release: Release, tmp_path: Path
) -> None:
    base = "https://example.org/failures"
    good = derive(release, tmp_path, base=base, suffix="good")
    publish(good, oxigraph)
    wrong = derive(release, tmp_path, base=base, suffix="wrong", announced=2000)
    with pytest.raises(
        PublishError,
        match="holds 1527 triples after the load, the release has "
        "2000; the pointer was not switched",
    ):
        publish(wrong, oxigraph)
    broken = derive(
        release,
        tmp_path,
        base=base,
        suffix="broken",
        nq=b"<http://a> <http://b> <http://c> .\n<http://a> <http://b> .\n",
    )
    with pytest.raises(PublishError, match=r"labgraph\.nq: not valid N-Quads"):
        publish(broken, oxigraph)
    elsewhere = derive(release, tmp_path, base=base, suffix="elsewhere")
    with pytest.raises(PublishError, match=rf"PUT {re.escape(oxigraph)}/nope .* answered 404"):
        publish(elsewhere, oxigraph, gsp_path="/nope")
    pointer = read_pointer(oxigraph, base)
    assert pointer is not None and pointer.release_id == good.id
    assert graphs_under(oxigraph, base) == {f"{base}/graph/current", f"{base}/graph/{good.id}"}


def test_publish_to_a_dead_port_names_the_url(release: Release) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PublishError, match=re.escape(f"cannot reach the store at {url}/query")):
        publish(release, url, timeout=5)


# --- the engine against the embedded one -----------------------------------------------------

LABS = PREFIXES + "SELECT ?lab ?name WHERE { ?lab a lg:Lab ; rdfs:label ?name } ORDER BY ?name ?lab"
GROUPED = (
    "SELECT ?type (COUNT(?s) AS ?n) WHERE { ?s a ?type } GROUP BY ?type ORDER BY DESC(?n) ?type"
)
OPTIONALS = (
    PREFIXES
    + """SELECT ?lab ?home ?founded WHERE { ?lab a lg:Lab
  OPTIONAL { ?lab foaf:homepage ?home } OPTIONAL { ?lab schema:foundingDate ?founded } }
  ORDER BY ?lab"""
)
LABELS = PREFIXES + "CONSTRUCT { ?lab rdfs:label ?name } WHERE { ?lab a lg:Lab ; rdfs:label ?name }"
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
NOWHERE = "http://example.org/no-such-graph"

CASES: list[tuple[str, Job, bool]] = [
    *[(f"select-{f}", Job(LABS, results_format=f), True) for f in ("json", "xml", "csv", "tsv")],
    *[(f"group-{f}", Job(GROUPED, results_format=f), True) for f in ("json", "tsv")],
    *[(f"unbound-{f}", Job(OPTIONALS, results_format=f), True) for f in ("json", "xml", "csv")],
    ("everything-unordered", Job("SELECT * WHERE { ?s ?p ?o }"), False),
    *[
        (f"ask-{f}", Job(f"ASK {{ <{BERCY}> ?p ?o }}", results_format=f), True)
        for f in ("json", "xml")
    ],
    ("ask-false", Job("ASK { <http://example.org/nothing> ?p ?o }"), True),
    *[
        (f"construct-{f}", Job(LABELS, graph_format=f), False)
        for f in ("turtle", "ntriples", "nquads", "trig", "jsonld", "rdfxml")
    ],
    ("describe", Job(f"DESCRIBE <{BERCY}>", graph_format="turtle"), False),
    (
        "relative-iri",
        Job("SELECT ?x WHERE { BIND(<lab/x> AS ?x) }", base_iri="http://example.org/sparql"),
        True,
    ),
    ("named-graphs-keep-the-release-as-default", Job(COUNT, named_graphs=(NOWHERE,)), True),
    ("default-graph-named-by-the-client", Job(COUNT, default_graphs=(NOWHERE,)), True),
    ("no-named-graphs", Job("SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"), True),
]


def _rows(answer: Answer) -> list[str]:
    if answer.format == "csv":
        return sorted(answer.body.decode().splitlines())
    parsed = ox.parse_query_results(
        answer.body, format=formats.by_extension(answer.format, formats.RESULTS_FORMATS).results
    )
    return sorted(str(row) for row in parsed)


@pytest.mark.parametrize(("job", "ordered"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_run_gives_what_the_embedded_engine_gives(
    loop: Loop, embedded: store.Engine, served: RemoteEngine, job: Job, ordered: bool
) -> None:
    mine, theirs = loop.run(served.run(job)), loop.run(embedded.run(job))
    assert (mine.kind, mine.format) == (theirs.kind, theirs.format)
    if mine.kind == "graph":
        fmt = formats.by_extension(mine.format, formats.GRAPH_FORMATS)
        assert fmt is not None and fmt.rdf is not None
        parsed = [set(map(str, ox.parse(a.body, format=fmt.rdf))) for a in (mine, theirs)]
        assert parsed[0] == parsed[1] and parsed[0]
    elif ordered:
        assert mine.body == theirs.body  # same rows, same bytes
    else:
        assert _rows(mine) == _rows(theirs)


@pytest.mark.parametrize(
    ("job", "error"),
    [
        (Job("SELECT ?s WHERE { ?s ?p }"), QueryError),
        (Job("ASK { ?s ?p ?o }", results_format="csv"), NotAcceptable),
        (Job(LABELS, graph_format=None), NotAcceptable),
        (Job(LABS, results_format=None), NotAcceptable),
    ],
    ids=["syntax", "ask-as-csv", "construct-without-graph-format", "select-without-results-format"],
)
def test_run_refuses_what_the_embedded_engine_refuses(
    loop: Loop, embedded: store.Engine, served: RemoteEngine, job: Job, error: type[Exception]
) -> None:
    with pytest.raises(error) as mine:
        loop.run(served.run(job))
    with pytest.raises(error) as theirs:
        loop.run(embedded.run(job))
    assert str(mine.value) == str(theirs.value)  # the store's own message reaches the client


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
        "INSERT DATA { <http://example.org/a> <http://example.org/b> <http://example.org/c> }",
    ],
    ids=["service", "update"],
)
def test_run_never_forwards_updates_or_federation(
    loop: Loop, served: RemoteEngine, query: str
) -> None:
    with pytest.raises(QueryError, match="is not allowed"):
        loop.run(served.run(Job(query)))
    assert served.count() == 1527


def test_trusted_helpers_agree_with_the_embedded_engine(
    served: RemoteEngine, embedded: store.Engine
) -> None:
    assert served.count() == embedded.count() == 1527
    assert served.graphs() == list(embedded.graphs()) == []
    assert served.exists(BERCY) and embedded.exists(BERCY)
    assert not served.exists(BERCY + "-nope") and not embedded.exists(BERCY + "-nope")
    about = "SELECT ?s ?p ?o WHERE { ?s ?p ?o } ORDER BY ?p ?o"
    bercy = {ox.Variable("s"): ox.NamedNode(BERCY)}
    assert served.select(about, substitutions=bercy) == embedded.select(about, substitutions=bercy)
    labels = [row["name"] for row in embedded.select(LABS) if "'" in row["name"].value]
    assert labels, "the data should hold a label with an apostrophe"
    named = PREFIXES + "SELECT ?lab ?name WHERE { ?lab rdfs:label ?name } ORDER BY ?lab"
    tricky = {ox.Variable("name"): labels[0]}
    mine = served.select(named, substitutions=tricky)
    assert mine and mine == embedded.select(named, substitutions=tricky)
    short = "SELECT ?lab ?name WHERE { ?lab a lg:Lab ; rdfs:label ?name } ORDER BY ?lab"
    assert served.select(short, prefixes=VOCAB) == embedded.select(short, prefixes=VOCAB)
    document = set(served.triples(DESCRIBE, substitutions=bercy))
    assert document and document == set(embedded.triples(DESCRIBE, substitutions=bercy))
    with pytest.raises(ValueError, match="IRIs and literals only"):
        served.select(about, substitutions={ox.Variable("s"): ox.BlankNode()})


# --- limits and failures ---------------------------------------------------------------------


def test_a_runaway_query_is_stopped_at_the_deadline_and_others_still_run(
    loop: Loop, oxigraph: str, published: str, release: Release, served: RemoteEngine
) -> None:
    engine = started(loop, oxigraph, release.manifest["base"], timeout=1.0)
    try:
        began = time.monotonic()
        with pytest.raises(QueryTimeout):
            loop.run(engine.run(Job(RUNAWAY)))
        assert 1.0 <= time.monotonic() - began < 2.5  # the store alone would stop it at 4 s
        assert engine.timeouts == 1 and engine.in_flight == 0
        began = time.monotonic()  # the store still computes the runaway, and still answers
        answer = loop.run(served.run(Job(f"ASK {{ <{BERCY}> ?p ?o }}")))
        assert b"true" in answer.body and time.monotonic() - began < 2.0
    finally:
        loop.run(engine.close())


def test_queries_past_the_concurrency_bound_get_busy(
    loop: Loop, oxigraph: str, published: str, release: Release
) -> None:
    engine = started(
        loop, oxigraph, release.manifest["base"], timeout=1.5, max_concurrent=1, queue_wait=0.2
    )

    async def two_at_once() -> tuple[float, int, BaseException | None]:
        runaway = asyncio.create_task(engine.run(Job(RUNAWAY)))
        await asyncio.sleep(0.1)
        busy_at = engine.in_flight
        began = time.monotonic()
        with pytest.raises(Busy):
            await engine.run(Job("ASK {}"))
        waited = time.monotonic() - began
        return waited, busy_at, (await asyncio.gather(runaway, return_exceptions=True))[0]

    try:
        waited, busy_at, outcome = loop.run(two_at_once())
        assert 0.2 <= waited < 1.2 and busy_at == 1 and isinstance(outcome, QueryTimeout)
        assert loop.run(engine.run(Job("ASK {}"))).body  # the slot is free again
    finally:
        loop.run(engine.close())


def test_results_past_the_cap_are_refused(
    loop: Loop, oxigraph: str, published: str, release: Release
) -> None:
    base = release.manifest["base"]
    wire = started(loop, oxigraph, base, max_bytes=5_000)  # the store's answer is too big
    out = started(loop, oxigraph, base, max_bytes=5_000, max_wire_bytes=10**8)  # ours is
    try:
        for engine in (wire, out):
            with pytest.raises(TooLarge):
                loop.run(engine.run(Job("SELECT * WHERE { ?s ?p ?o }", results_format="csv")))
            assert loop.run(engine.run(Job(COUNT))).kind == "solutions"
    finally:
        loop.run(wire.close())
        loop.run(out.close())


def test_an_unreachable_or_misconfigured_store_is_the_operators_error(
    loop: Loop, oxigraph: str, published: str, release: Release
) -> None:
    base = release.manifest["base"]
    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = re.escape(f"cannot reach the store at {dead}/query")
    with pytest.raises(StoreUnavailable, match=unreachable) as err:
        loop.run(RemoteEngine(dead, base=base).start())
    assert err.value.status == 503
    with pytest.raises(StoreUnavailable, match="answered 415") as err:  # not a query endpoint
        loop.run(RemoteEngine(oxigraph, base=base, query_path="/store").start())
    assert err.value.status == 502
    pinned = started(loop, dead, base, release_id=release.id)
    wrong = started(loop, oxigraph, base, query_path="/store", release_id=release.id)
    try:
        with pytest.raises(StoreUnavailable) as err:
            loop.run(pinned.run(Job(COUNT)))
        assert err.value.status == 503
        with pytest.raises(StoreUnavailable):
            pinned.count()
        refused = re.escape(f"{oxigraph}/store answered 4")
        with pytest.raises(StoreUnavailable, match=refused) as err:
            loop.run(wrong.run(Job(COUNT)))
        assert err.value.status == 502
    finally:
        loop.run(pinned.close())
        loop.run(wrong.close())
    with pytest.raises(StoreUnavailable, match=r"nothing is published for https://example\.org/x"):
        loop.run(RemoteEngine(oxigraph, base="https://example.org/x").start())


def test_cli_publish(oxigraph: str, releases_dir: Path) -> None:
    cmd = [sys.executable, "-m", "labgraph.cli", "publish", "--releases", str(releases_dir)]
    ok = subprocess.run([*cmd, "--store", oxigraph], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    release = current(releases_dir)
    assert release is not None
    assert (
        ok.stdout.strip()
        == f"published {release.id} as <{graph_iri(release.manifest['base'], release.id)}>"
    )
    dead = subprocess.run(
        [*cmd, "--store", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dead.returncode == 1
    assert "publish failed" in dead.stderr and "Traceback" not in dead.stderr
