"""Hot reload: a new release is served without a restart, a broken one never is.

Releases are built from small modified copies of the test records (one more lab each time), as
``labgraph build`` would, while clients keep querying: no request may fail, requests in flight
finish on the release they started with, new ones see the new release (new ETags). A release
that is half-written or corrupted is refused; the server keeps the last good one and logs why.
Embedded only: it moves releases/current (a remote pointer moves by publish: test_remote.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from labgraph.build import build
from labgraph.release import CURRENT, Release, switch_current
from labgraph.settings import Settings
from labgraph.store import Job
from labgraph.web.runtime import Runtime

from conftest import REPO, repo_settings, server_log, start_server, stop_server

MINI = REPO / "tests" / "fixtures" / "mini"
SWAPS = 10
COUNT_LABS = (
    "PREFIX lg: <https://w3id.org/labgraph/def/> SELECT (COUNT(?l) AS ?n) WHERE { ?l a lg:Lab }"
)

sys.path.insert(0, str(REPO / "benchmarks"))
import load  # noqa: E402  (benchmarks/load.py: the same clients as the load test)

sys.path.remove(str(REPO / "benchmarks"))


class Records:
    """A copy of the mini records that grows by one lab per :meth:`release`."""

    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        shutil.copytree(MINI, self.data)
        self.releases = tmp / "releases"
        self.labs = 2
        self.settings = repo_settings(data_dir=self.data, releases_dir=self.releases)

    def release(self, *, switch: bool = True) -> Release:
        with open(self.data / "labs.csv", "a", encoding="utf-8") as fh:
            fh.write(
                f"lab-gen-{self.labs},Lab généré {self.labs},,inst-one,prefecture,84,,,,,,doc-one\n"
            )
        self.labs += 1
        outcome = build(self.settings, switch=switch)
        assert outcome.ok and outcome.release is not None, outcome.problems
        return outcome.release


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _serving(url: str) -> str:
    return httpx.get(url + "/healthz", timeout=10).text.split()[-1]


def _labs(url: str) -> int:
    response = httpx.get(
        url + "/sparql",
        params={"query": COUNT_LABS},
        timeout=30,
        headers={"Accept": "application/sparql-results+json"},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


def _copy_release(release: Release, releases: Path, name: str) -> Path:
    target = releases / name
    shutil.copytree(release.path, target)
    return target


def _point_current(releases: Path, name: str) -> None:
    """Move ``current`` as a careless tool would: without checking what it points to."""
    tmp = releases / ".current-test"
    os.symlink(name, tmp)
    os.replace(tmp, releases / CURRENT)


# -- in process: the runtime itself -----------------------------------------------------------


def test_requests_in_flight_finish_on_their_release_and_its_workers_stop_after(
    tmp_path: Path,
) -> None:
    records = Records(tmp_path)
    first = records.release()

    async def scenario() -> None:
        runtime = Runtime(records.settings)
        await runtime.start()
        try:
            assert runtime.current is not None and runtime.current.id == first.id
            async with runtime.use() as old:
                second = await asyncio.to_thread(records.release)
                assert await runtime.reload()
                assert runtime.current.id == second.id != old.id
                assert runtime.retired == [old]
                # The request that started on the first release still queries it.
                answer = await old.engine.pool.run(Job(COUNT_LABS))
                assert '"3"' in answer.body.decode()
                fresh = await runtime.current.engine.pool.run(Job(COUNT_LABS))
                assert '"4"' in fresh.body.decode()
                workers = [w.process for w in old.engine.pool._all]
                assert workers and all(p.is_alive() for p in workers)
            await runtime.drain()
            assert runtime.retired == []
            assert not any(p.is_alive() for p in workers), "the old workers were stopped"
            assert not await runtime.reload(), "nothing new: nothing reloaded"
        finally:
            await runtime.close()

    asyncio.run(scenario())


DAMAGES = ("no-manifest", "truncated", "same-size-corruption", "dangling", "no-graph-in-manifest")


def _damage(spare: Release, releases: Path, damage: str) -> None:
    broken = _copy_release(spare, releases, damage)
    nq = broken / "labgraph.nq"
    if damage == "no-manifest":
        (broken / "manifest.json").unlink()
    elif damage == "truncated":
        nq.write_bytes(nq.read_bytes()[: nq.stat().st_size // 2])
    elif damage == "same-size-corruption":
        data = bytearray(nq.read_bytes())
        data[len(data) // 2] ^= 0x20
        nq.write_bytes(bytes(data))
    elif damage == "dangling":
        shutil.rmtree(broken)
    elif damage == "no-graph-in-manifest":
        manifest = (broken / "manifest.json").read_text()
        (broken / "manifest.json").write_text(manifest.replace('"labgraph.nq"', '"other.nq"'))


def test_a_broken_release_is_never_loaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = Records(tmp_path)
    good = records.release()
    spare = records.release(switch=False)
    for damage in DAMAGES:
        _damage(spare, records.releases, damage)

    async def scenario() -> None:
        runtime = Runtime(records.settings)
        await runtime.start()
        try:
            for count, damage in enumerate(DAMAGES, start=1):
                caplog.clear()
                _point_current(records.releases, damage)
                with caplog.at_level(logging.ERROR, logger="labgraph.server"):
                    assert not await runtime.reload()
                    assert not await runtime.reload()  # polled again: logged once, not each time
                assert runtime.current is not None and runtime.current.id == good.id
                refusals = [
                    r.getMessage() for r in caplog.records if "not loading" in r.getMessage()
                ]
                assert len(refusals) == 1, (damage, refusals)
                assert damage in refusals[0]
                assert runtime.stats.reload_failures == count
            # Pointed at a good release again, the server moves on.
            switch_current(records.releases, spare.id)
            assert await runtime.reload()
            assert runtime.current.id == spare.id
        finally:
            await runtime.close()
        # A server started while current is broken serves the newest complete release.
        _point_current(records.releases, "truncated")
        restarted = Runtime(records.settings)
        await restarted.start()
        try:
            assert restarted.current is not None and restarted.current.id == spare.id
        finally:
            await restarted.close()

    asyncio.run(scenario())


# -- a real server ------------------------------------------------------------------------------


def _server_env(**extra: str) -> dict[str, str]:
    return {"LABGRAPH_RATE_LIMIT": "0", "LABGRAPH_ACCESS_LOG": "off", **extra}


def _processes(pid: int) -> int:
    return len(psutil.Process(pid).children(recursive=True))


def _append_lab(data: Path, lab: str) -> None:
    with open(data / "labs.csv", "a", encoding="utf-8") as fh:
        fh.write(f"{lab},Lab {lab},,inst-one,prefecture,84,,,,,,doc-one\n")


def _cli_build(settings: Settings) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "labgraph.cli",
            "build",
            "--data",
            str(settings.data_dir),
            "--releases",
            str(settings.releases_dir),
            "--ontology",
            str(settings.ontology),
            "--shapes",
            str(settings.shapes),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr


def test_ten_releases_swap_under_load_without_a_failed_request(tmp_path: Path) -> None:
    """Nine releases switched in as ``build`` does, the tenth by ``labgraph build`` itself."""
    records = Records(tmp_path)
    first = records.release()
    waiting = [records.release(switch=False) for _ in range(SWAPS - 1)]
    proc, url = start_server(
        ["--releases", str(records.releases), "--data", str(records.data)],
        env=_server_env(LABGRAPH_RELOAD_INTERVAL="0.2"),
    )
    done = threading.Event()
    figures: list[load.Figures] = []
    try:
        baseline_processes = _processes(proc.pid)
        loader = threading.Thread(
            target=lambda: figures.append(
                asyncio.run(
                    load.run_load(
                        url,
                        clients=2,
                        duration=300,
                        max_requests=200_000,
                        pid=proc.pid,
                        until=done.is_set,
                    )
                )
            )
        )
        loader.start()
        etags = [httpx.get(url + "/doc/lab/lab-alpha.ttl").headers["etag"]]
        seen = [first.id]
        try:
            for labs, release in enumerate([*waiting, None], start=4):
                if release is None:  # the real command, switching current itself
                    _append_lab(records.data, "lab-cli")
                    _cli_build(records.settings)
                    _wait(lambda: _serving(url) not in seen, "the release of labgraph build")
                else:
                    switch_current(records.releases, release.id)
                    _wait(lambda r=release: _serving(url) == r.id, f"release {release.id}")
                assert _labs(url) == labs  # new requests see the new release
                etag = httpx.get(url + "/doc/lab/lab-alpha.ttl").headers["etag"]
                assert etag not in etags  # and get new validators
                etags.append(etag)
                seen.append(_serving(url))
        finally:
            done.set()
            loader.join(timeout=120)
        result = figures[0]
        assert result.requests > 0
        assert result.errors == 0, result.summary()
        assert set(result.releases_seen) <= set(seen)
        assert len(result.releases_seen) >= 2
        # Every old release's workers were stopped: the server is back to its usual processes.
        _wait(lambda: _processes(proc.pid) <= baseline_processes, "old workers to stop")
    finally:
        stop_server(proc)


def test_sighup_reloads_and_a_broken_release_is_refused_with_a_reason(tmp_path: Path) -> None:
    records = Records(tmp_path)
    first = records.release()
    spare = records.release(switch=False)
    switch_current(records.releases, first.id)
    truncated = _copy_release(spare, records.releases, "truncated")
    (truncated / "labgraph.nq").write_bytes(b"")
    (_copy_release(spare, records.releases, "no-manifest") / "manifest.json").unlink()
    proc, url = start_server(
        ["--releases", str(records.releases), "--data", str(records.data)],
        env=_server_env(LABGRAPH_RELOAD_INTERVAL="0"),
    )  # SIGHUP only

    def failures() -> float:
        text = httpx.get(url + "/metrics").text
        found = re.search(r"^labgraph_reload_failures_total (\S+)$", text, re.M)
        assert found, text
        return float(found.group(1))

    try:
        for count, name in enumerate(("no-manifest", "truncated"), start=1):
            _point_current(records.releases, name)
            os.kill(proc.pid, signal.SIGHUP)
            _wait(lambda c=count: failures() >= c, f"the refusal of {name}")
            assert _serving(url) == first.id
            assert _labs(url) == 3
        switch_current(records.releases, spare.id)
        assert _serving(url) == first.id  # no polling here: only a SIGHUP reloads
        os.kill(proc.pid, signal.SIGHUP)
        _wait(lambda: _serving(url) == spare.id, "the SIGHUP reload")
        assert _labs(url) == 4
    finally:
        stop_server(proc)
    log = server_log(proc)
    assert re.search(r"not loading .*no-manifest.*no manifest\.json", log), log
    assert re.search(r"not loading .*truncated.*labgraph\.nq has 0 bytes", log), log
