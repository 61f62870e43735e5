"""Deadlines that really stop a query, and a bounded number of queries at once.

A runaway query (a four-way cross product of the real data: 1500⁴ rows) is sent to a real server
started with a 1 s deadline. It must get a 503 that names the limit, soon after the limit; the
worker process that ran it must be gone and nothing of labgraph may still burn CPU afterwards
(measured on the server's process tree with psutil); and another client must be answered while
it runs. With one worker and a short queue wait, a second query meanwhile gets 503 + Retry-After.
The pool is also tested in process for what a server test cannot time precisely: a cancelled
request, a zero queue wait, worker start-up kept out of deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from labgraph.store import Answer, Busy, Job, QueryPool, prepare
from test_sparql_endpoint import start_quiet

from conftest import stop_server

RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
_ASKED = itertools.count()


def simple() -> str:
    """A quick query, new each time: the server caches answers, and a cached answer would be
    served without a worker, proving nothing about the workers."""
    return f"ASK {{ ?s ?p ?o }} # {next(_ASKED)}"


class Server:
    """A running server: its URL and its process tree."""

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.process = psutil.Process(pid)

    def query(self, text: str, timeout: float = 60) -> httpx.Response:
        return httpx.get(self.url + "/sparql", params={"query": text}, timeout=timeout)

    def tree(self) -> list[psutil.Process]:
        return [self.process, *self.process.children(recursive=True)]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and every process under it."""
        total = 0.0
        for proc in self.tree():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def workers(self) -> set[int]:
        """Live (not zombie) processes under the server: its query workers and their helpers."""
        found = set()
        for proc in self.process.children(recursive=True):
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.add(proc.pid)
            except psutil.NoSuchProcess:
                continue
        return found

    def replaced(self, old: set[int], timeout: float = 20) -> set[int]:
        """The processes under the server once one of ``old`` is gone and a new one took its
        place (a killed worker and its replacement)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.workers()
            if len(found) == len(old) and found != old:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no worker replaced: {sorted(old)} -> {sorted(self.workers())}")

    def recovered(self, old: set[int], timeout: float = 20) -> None:
        """Wait until a killed worker is replaced and its replacement answers (it has opened the
        store), so that the next test starts with every worker idle."""
        self.replaced(old, timeout)
        deadline = time.monotonic() + timeout
        response = self.query(simple())
        while response.status_code == 503 and time.monotonic() < deadline:  # busy: not ready
            time.sleep(0.1)
            response = self.query(simple())
        assert response.status_code == 200, "the fresh worker serves the next queries"
        assert response.json()["boolean"] is True


def _serve(args: list[str], env: dict[str, str] | None = None) -> Iterator[Server]:
    proc, url = start_quiet(args, env=env)
    try:
        server = Server(url, proc.pid)
        assert server.query(simple()).status_code == 200  # the workers are up
        yield server
    finally:
        stop_server(proc)


# Embedded only: these measure the query worker processes a deadline kills (a remote store
# has none; tests/test_remote.py times its deadline and busy bound).
@pytest.fixture(scope="module")
def one_second(releases_dir: Path) -> Iterator[Server]:
    """The real data, ``--query-timeout 1``, the default two query workers."""
    yield from _serve(["--releases", str(releases_dir), "--query-timeout", "1"])


@pytest.fixture(scope="module")
def one_worker(releases_dir: Path) -> Iterator[Server]:
    """The real data, one query worker, a 0.2 s queue wait; the deadline set by environment."""
    yield from _serve(
        ["--releases", str(releases_dir)],
        env={
            "LABGRAPH_QUERY_TIMEOUT": "2",
            "LABGRAPH_MAX_CONCURRENT_QUERIES": "1",
            "LABGRAPH_QUEUE_WAIT": "0.2",
        },
    )


def test_a_runaway_query_is_stopped_at_its_deadline_and_its_cpu_freed(one_second: Server) -> None:
    before = one_second.workers()
    started = time.monotonic()
    response = one_second.query(RUNAWAY)
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert "1 s limit" in response.text
    assert response.headers["retry-after"].isdigit()
    assert 1 <= elapsed < 10, f"stopped after {elapsed:.2f} s"
    # The worker that ran it was killed: it is gone, and a fresh one took its place.
    after = one_second.replaced(before)
    killed = before - after
    assert len(killed) == 1, "exactly one worker (the runaway's) was replaced"
    assert not any(psutil.pid_exists(pid) for pid in killed), "the killed worker is reaped"
    # And nothing under the server keeps computing.
    time.sleep(0.5)  # let the fresh worker finish opening the store
    first = one_second.cpu_seconds()
    time.sleep(1)
    burnt = one_second.cpu_seconds() - first
    assert burnt < 0.3, f"the server's processes used {burnt:.2f} s of CPU in 1 s while idle"
    one_second.recovered(before)


def test_another_client_is_served_while_a_runaway_runs(one_second: Server) -> None:
    done: dict[str, float] = {}
    runaway: list[httpx.Response] = []
    before = one_second.workers()

    def run_away() -> None:
        runaway.append(one_second.query(RUNAWAY))
        done["runaway"] = time.monotonic()

    thread = threading.Thread(target=run_away)
    thread.start()
    time.sleep(0.2)  # the runaway has its worker
    response = one_second.query(simple())
    done["simple"] = time.monotonic()
    thread.join()
    assert response.status_code == 200 and response.json()["boolean"] is True
    assert runaway[0].status_code == 503
    assert done["simple"] < done["runaway"], "the simple query waited for the runaway"
    one_second.recovered(before)


def test_the_deadline_can_be_set_by_environment(one_worker: Server) -> None:
    before = one_worker.workers()
    response = one_worker.query(RUNAWAY)
    assert response.status_code == 503
    assert "2 s limit" in response.text
    one_worker.recovered(before)


def test_concurrency_is_bounded_and_a_query_past_it_gets_retry_after(one_worker: Server) -> None:
    runaway: list[httpx.Response] = []
    before = one_worker.workers()
    thread = threading.Thread(target=lambda: runaway.append(one_worker.query(RUNAWAY)))
    thread.start()
    time.sleep(0.5)  # the runaway holds the only worker for 2 s
    # A query never asked before: an answer already cached would need no worker at all.
    busy = one_worker.query(simple())
    thread.join()
    assert busy.status_code == 503, busy.text
    assert "busy" in busy.text
    assert int(busy.headers["retry-after"]) >= 1
    assert runaway[0].status_code == 503 and "2 s limit" in runaway[0].text
    one_worker.recovered(before)


# --- the pool itself, in process ---------------------------------------------------------------

SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An on-disk store of 300 triples: SLOW counts 27 million rows, for a second or more."""
    folder = tmp_path_factory.mktemp("pool")
    source = folder / "data.nt"
    source.write_text(
        "".join(f'<http://example.org/s{i}> <http://example.org/p> "{i}" .\n' for i in range(300)),
        encoding="utf-8",
    )
    return prepare(source, folder / "stores")


def _pool(store_path: Path, **settings: float) -> QueryPool:
    options: dict[str, Any] = {"size": 1, "timeout": 30, "queue_wait": 20, "max_bytes": 10**6}
    options.update(settings)
    return QueryPool(store_path, **options)


def test_a_cancelled_query_never_hands_its_answer_to_the_next_one(store_path: Path) -> None:
    """A request cancelled mid-query (its client went away) must not leave its worker busy, or
    with an unread answer that the next request would receive as its own."""

    async def scenario() -> tuple[Answer, bool]:
        pool = _pool(store_path)
        await pool.start()
        try:
            (worker,) = pool._all
            slow = asyncio.create_task(pool.run(Job(SLOW)))
            await asyncio.sleep(0.3)
            slow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slow
            answer = await pool.run(Job("ASK { ?s ?p ?o }"))
            return answer, worker.process.is_alive()
        finally:
            await pool.close()

    answer, alive = asyncio.run(scenario())
    assert answer.kind == "boolean" and b"true" in answer.body
    assert not alive, "the cancelled query's worker was killed"


def test_a_queue_wait_of_zero_still_uses_an_idle_worker(store_path: Path) -> None:
    async def scenario() -> tuple[Answer, type[BaseException] | None]:
        pool = _pool(store_path, queue_wait=0)
        await pool.start()
        try:
            answer = await pool.run(Job("ASK { ?s ?p ?o }"))
            slow = asyncio.create_task(pool.run(Job(SLOW)))
            await asyncio.sleep(0.3)
            try:
                await pool.run(Job("ASK { ?s ?p ?o }"))
                refused = None
            except Busy as err:
                refused = type(err)
            slow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slow
            return answer, refused
        finally:
            await pool.close()

    answer, refused = asyncio.run(scenario())
    assert answer.kind == "boolean"
    assert refused is Busy, "with the only worker busy and no wait, the next query is refused"


def test_worker_start_up_is_not_counted_in_a_deadline(store_path: Path) -> None:
    """start() returns once every worker has its store open, so even a tiny deadline is spent
    on the query alone."""

    async def scenario() -> Answer:
        pool = _pool(store_path, size=2, timeout=0.5)
        await pool.start()
        try:
            return await pool.run(Job("ASK { ?s ?p ?o }"))
        finally:
            await pool.close()

    assert asyncio.run(scenario()).kind == "boolean"
