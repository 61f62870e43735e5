"""The synthetic records the benchmarks use must be valid labgraph input, and reproducible.

A benchmark on records labgraph rejects would time the error path; a generator that drifts would
make two runs incomparable. So: 50 synthetic labs build with no problem under the fake base, and
the same seed gives the same bytes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from labgraph.build import build
from labgraph.records import SCHEMA
from labgraph.settings import load

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synthetic() -> ModuleType:
    """benchmarks/synthetic.py, loaded from its file (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("synthetic", ROOT / "benchmarks" / "synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))}


def test_same_seed_same_bytes(synthetic: ModuleType, tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "a", 50, seed=7)
    synthetic.generate(tmp_path / "b", 50, seed=7)
    synthetic.generate(tmp_path / "c", 50, seed=8)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert sorted(a) == sorted(t.file for t in SCHEMA.values())
    assert a == b
    assert a != c


def test_fifty_labs_build_without_problems(synthetic: ModuleType, tmp_path: Path) -> None:
    made = synthetic.generate(tmp_path / "data", 50, seed=0)
    assert made == {
        "institution": 17,
        "lab": 50,
        "project": 25,
        "event": 5,
        "figure": 5,
        "source": 3,
    }
    settings = load(
        data_dir=tmp_path / "data",
        releases_dir=tmp_path / "releases",
        base=synthetic.BASE,
        ontology=ROOT / "ontology" / "labgraph.ttl",
        shapes=ROOT / "shapes" / "labgraph.ttl",
    )
    outcome = build(settings)
    assert outcome.problems == []
    assert outcome.report is not None and outcome.report.results == []
    assert outcome.release is not None
    counts = outcome.release.manifest["counts"]
    assert {t: counts[t] for t in made} == made
    nt = outcome.release.file("labgraph.nt").read_text("utf-8")
    assert f"<{synthetic.BASE}/id/lab/lab-00042>" in nt
    assert "https://w3id.org/labgraph/id/" not in nt  # nothing minted under the real base


def test_records_are_obviously_fake(synthetic: ModuleType, tmp_path: Path) -> None:
    """Names say "Synthetic"; every URL is under example.invalid, which can never resolve."""
    synthetic.generate(tmp_path, 50, seed=0)
    text = (tmp_path / "labs.csv").read_text("utf-8")
    assert "Synthetic lab 00042" in text
    for name, data in _files(tmp_path).items():
        for cell in data.decode().replace("\n", ",").replace(";", ",").split(","):
            if "://" in cell:
                assert cell.startswith("http://example.invalid/"), (name, cell)


def test_proportions(synthetic: ModuleType) -> None:
    assert synthetic.counts(1000) == {
        "lab": 1000,
        "institution": 333,
        "project": 500,
        "event": 100,
        "figure": 100,
        "source": 3,
    }
