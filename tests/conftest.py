"""Shared fixtures: the real data built once, and real servers on loopback.

``server`` starts ``labgraph serve`` as its own process (uvicorn, worker processes and all) on a
free loopback port, as a user would; ``app_client`` runs the same app in-process for fast tests.

Both are parametrised over the two query engines (:data:`STORES`): ``embedded`` serves the release
from its own pyoxigraph store; ``remote`` serves it with ``serve --store`` from a real Oxigraph
server (``oxigraph serve``, from the ``oxigraph`` test dependency) on loopback, into which the same
release was loaded with ``labgraph publish --store``. So every test that uses them runs on both,
and the ids say which (``test_x[remote]``). A module starting servers of its own takes
``serve_args`` (also parametrised) for the same effect. Embedded only, each saying why: the
deadline, crash and reload tests (worker processes, releases/current), the W3C protocol suite and
``small`` (``serve --dataset``), the rate limit and the in-process observability/fast-path tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from labgraph.build import build
from labgraph.settings import Settings, load

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
STORES = ("embedded", "remote")
#: ``oxigraph serve --timeout-s``: the store's own deadline (tests/test_remote.py relies on it).
OXIGRAPH_DEADLINE = 4


def shared(*parts: str) -> Path:
    """A file of ../shared (conformance data); a missing one fails the test, never skips it."""
    path = SHARED.joinpath(*parts)
    assert path.exists(), f"{path} is missing: the shared conformance data must sit beside the repo"
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def repo_settings(**overrides: object) -> Settings:
    """Settings reading the repository's real data, ontology and shapes."""
    defaults: dict[str, object] = {
        "data_dir": REPO / "data",
        "ontology": REPO / "ontology" / "labgraph.ttl",
        "shapes": REPO / "shapes" / "labgraph.ttl",
        "rate_limit": 0,  # tests query in loops; tests/test_ratelimit.py turns it on
    }
    defaults.update(overrides)
    return load(**defaults)


@pytest.fixture(scope="session")
def releases_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A releases folder holding one release of the real data."""
    path = tmp_path_factory.mktemp("releases")
    outcome = build(repo_settings(releases_dir=path))
    assert outcome.ok, "\n".join(map(str, outcome.problems))
    return path


@pytest.fixture(scope="session")
def settings(releases_dir: Path) -> Settings:
    return repo_settings(releases_dir=releases_dir)


def start_server(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``labgraph serve`` with ``args`` on a free port; returns (process, base URL)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "labgraph.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    # The log goes to a file (read it with server_log): a pipe nobody reads fills up and
    # freezes the server.
    with tempfile.NamedTemporaryFile(prefix="labgraph-serve-", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env={**os.environ, "LABGRAPH_RATE_LIMIT": "0", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = log.name  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{server_log(proc)}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become ready")


def server_log(proc: subprocess.Popen[bytes]) -> str:
    """Everything the server has logged so far."""
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def oxigraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Oxigraph server (the ``oxigraph`` package's CLI) on loopback, killed at the
    end of the session. Tests publish other releases into it under other bases only."""
    binary = Path(sys.executable).with_name("oxigraph")
    command = str(binary) if binary.exists() else shutil.which("oxigraph")
    assert command, "the oxigraph CLI is missing: pip install oxigraph (a test dependency)"
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="oxigraph-", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(
            [
                command,
                "serve",
                "--location",
                str(tmp_path_factory.mktemp("oxigraph")),
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout-s",
                str(OXIGRAPH_DEADLINE),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, Path(log.name).read_text(errors="replace")
            try:
                if httpx.post(url + "/query", data={"query": "ASK {}"}, timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "oxigraph serve did not answer"
            time.sleep(0.05)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def store_url(oxigraph: str, releases_dir: Path) -> str:
    """The Oxigraph server, holding the session's release as ``labgraph publish --store`` put it."""
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "labgraph.cli",
            "publish",
            "--releases",
            str(releases_dir),
            "--data",
            str(REPO / "data"),
            "--store",
            oxigraph,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    return oxigraph


@pytest.fixture(scope="session", params=STORES)
def serve_args(request: pytest.FixtureRequest, releases_dir: Path) -> list[str]:
    """``labgraph serve`` arguments for the real release, once per store (see the docstring)."""
    args = ["--releases", str(releases_dir), "--data", str(REPO / "data")]
    if request.param == "remote":
        args += ["--store", request.getfixturevalue("store_url")]
    return args


@pytest.fixture(scope="session")
def server(serve_args: list[str]) -> Iterator[str]:
    """Base URL of a real ``labgraph serve`` over the real data, on each store."""
    proc, url = start_server(serve_args)
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as c:
        yield c


@pytest.fixture(scope="session", params=STORES)
def app_client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TestClient]:
    """The app in-process (lifespan started), for fast tests of routes, on each store."""
    from labgraph.web.app import create_app

    if request.param == "remote":
        settings = settings.model_copy(update={"store_url": request.getfixturevalue("store_url")})
    with TestClient(create_app(settings), base_url="http://testserver") as c:
        yield c
