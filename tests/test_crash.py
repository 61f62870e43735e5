"""Crash safety: ``kill -9`` at random points never breaks what is published or served.

A build killed anywhere (reading, validating, writing dumps, renaming, switching ``current``)
must leave ``current`` pointing at a complete release whose every file matches its manifest's
digest; the next build must succeed and clean up. A server killed with ``kill -9`` leaves no
query worker behind, and once restarted serves the same release with the same ETags.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from labgraph.release import CURRENT, STAGING_PREFIX, current, list_releases, open_release

from conftest import REPO, start_server

KILLS = 15
LABS = 200  # about half a second of build on CI's machine: room for kills in every stage
BASE = "http://example.invalid/synthetic"

#: A build runner that forks one build per line read, so each kill hits a build that is already
#: running its stages (not Python's start-up); it reports the child's pid, then how it ended.
RUNNER = r"""
import json, os, sys, time
from labgraph.build import build
from labgraph.settings import load

settings = load(**json.loads(sys.argv[1]))
for line in sys.stdin:
    started = time.monotonic()
    marks = {}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        def progress(message):
            os.write(write, (json.dumps([message, time.monotonic() - started]) + "\n").encode())
        outcome = build(settings, progress=progress)
        os._exit(0 if outcome.ok else 1)
    os.close(write)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    stages = [json.loads(x) for x in os.read(read, 1 << 16).decode().splitlines() if x]
    os.close(read)
    print(json.dumps({"status": status, "seconds": time.monotonic() - started,
                      "stages": stages}), flush=True)
"""


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import synthetic
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    folder = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(folder, LABS)
    return folder


def _settings(data: Path, releases: Path) -> dict[str, str]:
    return {
        "data_dir": str(data),
        "releases_dir": str(releases),
        "base": BASE,
        "ontology": str(REPO / "ontology" / "labgraph.ttl"),
        "shapes": str(REPO / "shapes" / "labgraph.ttl"),
    }


def _assert_current_is_complete(releases: Path) -> str:
    link = releases / CURRENT
    assert link.is_symlink(), "current is missing"
    release = open_release(link.resolve(), verify=True)  # every file's size and sha256
    found = current(releases)
    assert found is not None and found.id == release.id
    return release.id


def test_kill_9_of_a_build_never_breaks_current(synthetic_data: Path, tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps(_settings(synthetic_data, releases))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert runner.stdin is not None and runner.stdout is not None
    rng = random.Random(20261125)

    def run(kill_after: float | None) -> dict[str, object]:
        runner.stdin.write("build\n")
        runner.stdin.flush()
        pid = json.loads(runner.stdout.readline())["pid"]
        if kill_after is not None:
            time.sleep(kill_after)
            # It may have finished first: a kill after the end must change nothing either.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return json.loads(runner.stdout.readline())

    try:
        first = run(None)
        assert first["status"] == 0, first
        total = float(first["seconds"])  # type: ignore[arg-type]
        stages = dict(first["stages"])  # type: ignore[arg-type]
        writing = float(stages.get("writing release", total / 2))
        served = {_assert_current_is_complete(releases)}
        killed = 0
        for i in range(KILLS):
            # Half the kills land anywhere, half while the release is being written.
            low = 0.0 if i % 2 else writing
            ended = run(rng.uniform(low, total * 1.05))
            killed += os.WIFSIGNALED(int(ended["status"]))  # type: ignore[arg-type]
            served.add(_assert_current_is_complete(releases))
            for release in list_releases(releases):
                open_release(release.path)  # a visible release is always complete
        assert killed >= KILLS // 2, f"only {killed} builds were killed: the build got faster"
        # And the command itself, killed once it is past Python's start-up.
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "labgraph.cli",
                "build",
                "--data",
                str(synthetic_data),
                "--releases",
                str(releases),
                "--base",
                BASE,
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 1.0 + total))
        cli.kill()
        cli.wait()
        _assert_current_is_complete(releases)
        last = run(None)
        assert last["status"] == 0, last
        _assert_current_is_complete(releases)
    finally:
        runner.stdin.close()
        runner.wait(timeout=60)
    leftovers = [p.name for p in releases.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert leftovers == [], "a successful build removes what killed builds left behind"


#: As behind a reverse proxy: both runs are reached under one public host (documents name the
#: host they were reached at, so their ETags depend on it).
HOST = {"Host": "labgraph.example"}


def _lab_document(url: str) -> str:
    query = "SELECT ?l WHERE { ?l a <https://w3id.org/labgraph/def/Lab> } ORDER BY ?l LIMIT 1"
    response = httpx.get(
        url + "/sparql",
        params={"query": query},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    iri = response.json()["results"]["bindings"][0]["l"]["value"]
    return "/doc/lab/" + iri.rsplit("/", 1)[-1] + ".ttl"


# Embedded only: what kill -9 may leave behind is the embedded store's worker processes.
def test_kill_9_of_the_server_then_restart_serves_the_same_release(releases_dir: Path) -> None:
    args = ["--releases", str(releases_dir), "--data", str(REPO / "data")]
    env = {"LABGRAPH_ACCESS_LOG": "off"}
    proc, url = start_server(args, env=env)
    try:
        path = _lab_document(url)
        first = httpx.get(url + path, headers=HOST)
        catalog = httpx.get(url + "/catalog.ttl", headers=HOST)
        assert first.status_code == catalog.status_code == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the query workers are child processes"
    finally:
        proc.kill()  # kill -9
        proc.wait()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"worker processes outlived the server: {alive}"
    proc, url = start_server(args, env=env)
    try:
        again = httpx.get(url + path, headers=HOST)
        assert again.status_code == 200
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["x-labgraph-release"] == first.headers["x-labgraph-release"]
        assert again.content == first.content
        assert (
            httpx.get(url + "/catalog.ttl", headers=HOST).headers["etag"] == catalog.headers["etag"]
        )
    finally:
        proc.kill()
        proc.wait()
