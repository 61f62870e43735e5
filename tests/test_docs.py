"""The documentation's examples run, against a real server, as a reader would paste them.

Every ```sh / ```bash block that calls curl in docs/researchers.md and docs/developers.md (and
README.md, if it has any) runs under ``bash -euo pipefail`` with ``http://127.0.0.1:8000``
replaced by the test server's address; every ```sparql block goes through /sparql; every ```python
block runs in a fresh interpreter. A block that states its results on ``# => …`` lines must print
them, in order (that is how an example shows a 303, a 304 or a 406); in any other block every
curl runs with ``--fail``, so an HTTP error fails it. Our own docs also write ``-f`` wherever a
reader should expect success. So an example that drifts from the server fails the suite.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from labgraph import formats
from labgraph.settings import Settings
from labgraph.web import pages

REPO = Path(__file__).resolve().parents[1]
DOCS = (REPO / "docs" / "researchers.md", REPO / "docs" / "developers.md")
README = REPO / "README.md"
DOC_URL = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
RATE_LIMITED = re.compile(r"error: 429|\b429\b.*Too Many")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    path: Path
    line: int
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}:{self.language}"


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(path, text.count("\n", 0, m.start()) + 1, m.group(1).lower(), m.group(2))
        for m in FENCE.finditer(text)
    ]


def curl_blocks() -> list[Block]:
    found = [b for p in DOCS for b in blocks(p) if b.language in ("sh", "bash")]
    if README.exists():
        found += [b for b in blocks(README) if b.language in ("sh", "bash")]
    return [b for b in found if re.search(r"\bcurl\b", b.code)]


def typed_blocks(language: str) -> list[Block]:
    return [b for p in DOCS for b in blocks(p) if b.language == language]


CURL = curl_blocks()
SPARQL = typed_blocks("sparql")
PYTHON = typed_blocks("python")


def expectations(code: str) -> list[str]:
    return [
        line.split("# =>", 1)[1].strip()
        for line in code.splitlines()
        if line.strip().startswith("# =>")
    ]


#: Defined before a block without stated results: every curl of it fails on an HTTP error.
FAIL_ON_HTTP_ERROR = 'curl() { command curl --fail "$@"; }\n'


def run_shell(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a block like a reader would; wait and retry when the endpoint says 429."""
    if not expectations(code):
        code = FAIL_ON_HTTP_ERROR + code
    for _ in range(10):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=cwd,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode == 0 or not RATE_LIMITED.search(done.stderr + done.stdout):
            return done
        time.sleep(1.5)
    return done


def test_the_docs_have_examples_of_every_kind() -> None:
    assert len(CURL) >= 15
    assert len(SPARQL) >= 4
    assert len(PYTHON) >= 3


@pytest.mark.parametrize("block", CURL, ids=[b.id for b in CURL])
def test_curl_example_runs(server: str, block: Block, tmp_path: Path) -> None:
    if block.path in DOCS:
        for command in re.split(r"\bcurl\b", block.code)[1:]:
            options = command.split("http", 1)[0]
            assert re.search(r"(^|\s)(-[a-zA-Z]*f[a-zA-Z]*|--fail)\b", options) or expectations(
                block.code
            ), f"{block.id}: a curl without -f must state its result ('# =>')"
    (tmp_path / "queries").symlink_to(REPO / "queries")
    code = block.code.replace(DOC_URL, server)
    done = run_shell(code, tmp_path)
    assert done.returncode == 0, f"{block.id} failed:\n{code}\n{done.stdout}\n{done.stderr}"
    output = done.stdout
    position = 0
    for expected in expectations(block.code):
        expected = expected.replace(DOC_URL, server)
        found = output.find(expected, position)
        assert found >= 0, f"{block.id}: {expected!r} not in the output:\n{output}"
        position = found + len(expected)


@pytest.mark.parametrize("block", SPARQL, ids=[b.id for b in SPARQL])
def test_sparql_example_answers(client: httpx.Client, block: Block) -> None:
    for _ in range(10):
        response = client.post(
            "/sparql",
            content=block.code.encode(),
            headers={
                "Content-Type": "application/sparql-query",
                "Accept": "application/sparql-results+json",
            },
        )
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("retry-after", "1")))
    assert response.status_code == 200, f"{block.id}: {response.text}"
    answer = response.json()
    if "boolean" in answer:
        assert answer["boolean"] is True, block.id
    else:
        assert len(answer["results"]["bindings"]) >= 1, f"{block.id} answers no row"


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_example_runs(server: str, block: Block, tmp_path: Path) -> None:
    code = block.code.replace(DOC_URL, server)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{block.id} printed nothing"


def test_researchers_doc_lists_every_example_query() -> None:
    text = DOCS[0].read_text(encoding="utf-8")
    for example in pages.load_examples(REPO / "queries"):
        assert f"`{example.slug}.rq`" in text, example.slug
        assert example.title in text, example.title


def test_researchers_doc_states_the_default_limits() -> None:
    text = " ".join(DOCS[0].read_text(encoding="utf-8").split())
    defaults = Settings()
    for stated in (
        f"| query time | {defaults.query_timeout:g} s |",
        f"| result size | {defaults.max_result_bytes // 1_000_000} MB serialised |",
        f"{defaults.max_concurrent_queries} per server",
        f"up to {defaults.queue_wait:g} s",
        f"{defaults.rate_limit:g} requests per second per client address, bursts of "
        f"{defaults.rate_burst}",
        f"| query size | {defaults.max_query_bytes // 1024} KiB |",
        f"| URL length | {defaults.max_url_bytes // 1024} KiB |",
        f"at most {pages.MAX_TABLE_ROWS:,} rows",
    ):
        assert stated in text, stated


def test_developers_doc_covers_every_document_format() -> None:
    text = DOCS[1].read_text(encoding="utf-8")
    for fmt in formats.DOCUMENT_FORMATS:
        assert f"`{fmt.media_type}`" in text and f"`.{fmt.extension}`" in text, fmt.name
    for topic in (
        "303 See Other",
        "?format=",
        "/context.jsonld",
        "If-None-Match",
        "304",
        "Access-Control-Allow-Origin",
        "/dumps/",
        "sha256sum",
    ):
        assert topic in text, topic
