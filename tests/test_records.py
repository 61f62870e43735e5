"""Bad records get one clear message each, with file, line and column, all in one run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labgraph import records
from labgraph.vocab import load_schemes

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "tests" / "fixtures" / "mini"
SCHEMES = {k: frozenset(v) for k, v in load_schemes(REPO / "ontology" / "labgraph.ttl").items()}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(MINI, target)
    return target


def read(data: Path) -> list[str]:
    return [str(p) for p in records.read(data, SCHEMES, display_root=data.parent).problems]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_fixture_is_valid(data: Path) -> None:
    found = records.read(data, SCHEMES, display_root=data.parent)
    assert found.problems == []
    assert {r.type for r in found.records} == {
        "lab",
        "institution",
        "project",
        "event",
        "figure",
        "source",
    }
    lab = found.by_id["lab-alpha"]
    assert (lab.file, lab.line) == ("data/labs.csv", 2)
    assert lab.get("founded") == 2016
    assert lab.get("hosts") == ("inst-one",)


def test_bad_year_names_file_line_and_column(data: Path) -> None:
    edit(data / "labs.csv", ",2016,", ",20x1,")
    assert read(data) == ['data/labs.csv:2: column "founded": "20x1" is not a year (YYYY)']


def test_every_problem_is_reported_at_once(data: Path) -> None:
    edit(data / "labs.csv", ",2016,", ",20x1,")
    edit(data / "labs.csv", ",84,", ",99,")
    edit(data / "labs.csv", "https://alpha.example.org", "not a url")
    edit(data / "events.csv", "2022-11-02", "2022-02-30")
    problems = read(data)
    assert len(problems) == 4, problems
    assert any('column "region": "99" is not an INSEE region code' in p for p in problems)
    assert any(
        'column "website": "not a url" is not an absolute http(s) URL' in p for p in problems
    )
    assert any(
        'data/events.csv:3: column "start"' in p and "real calendar date" in p for p in problems
    )


def test_unknown_and_missing_columns(data: Path) -> None:
    edit(data / "labs.csv", "id,name,", "id,nom,")
    problems = read(data)
    assert any(p.startswith('data/labs.csv:1: column "nom": unknown column') for p in problems)
    assert 'data/labs.csv:1: column "name": required column is missing' in problems


def test_duplicate_ids_point_at_the_first(data: Path) -> None:
    with open(data / "institutions.csv", "a", encoding="utf-8") as fh:
        fh.write("lab-alpha,Doublon,,,,,,,,https://example.org/x\n")
    assert read(data) == [
        'data/institutions.csv:4: column "id": "lab-alpha" is already used by data/labs.csv:2'
    ]


def test_dangling_and_mistyped_references(data: Path) -> None:
    edit(data / "labs.csv", "inst-one;inst-two", "inst-one;inst-nowhere")
    edit(data / "projects.csv", ",lab-alpha,", ",proj-x,")
    problems = read(data)
    assert (
        'data/labs.csv:3: column "hosts": "inst-nowhere" does not exist in institutions.csv'
        in problems
    )
    assert any(p.startswith('data/projects.csv:2: column "carried_by": "proj-x"') for p in problems)


def test_missing_required_cell(data: Path) -> None:
    edit(data / "labs.csv", ",https://example.org/page-alpha", ",")
    assert read(data) == ['data/labs.csv:2: column "source": is required but empty']


def test_bad_concept_lists_the_allowed_values(data: Path) -> None:
    edit(data / "labs.csv", ",prefecture,", ",prefect,")
    (problem,) = read(data)
    assert problem.startswith('data/labs.csv:2: column "kind": "prefect" is not one of: ')
    assert "prefecture" in problem


def test_invalid_utf8_names_the_line(data: Path) -> None:
    raw = (data / "institutions.csv").read_bytes().replace(b"Deux", b"D\xe9ux")
    (data / "institutions.csv").write_bytes(raw)
    problems = read(data)
    assert problems[0].startswith("data/institutions.csv:3: invalid UTF-8")


def test_malformed_csv_unclosed_quote(data: Path) -> None:
    with open(data / "projects.csv", "a", encoding="utf-8") as fh:
        fh.write('proj-y,"Projet Y,project,lab-alpha,,,,,https://example.org/y\n')
    problems = read(data)
    assert any(p.startswith("data/projects.csv:3: malformed CSV") for p in problems), problems


def test_wrong_cell_count(data: Path) -> None:
    with open(data / "projects.csv", "a", encoding="utf-8") as fh:
        fh.write("proj-y,Projet Y,project\n")
    assert read(data) == ["data/projects.csv:3: row has 3 cells but the header has 9"]


def test_empty_and_missing_files(data: Path) -> None:
    (data / "events.csv").write_bytes(b"")
    (data / "institutions.csv").unlink()
    problems = read(data)
    assert any(p.startswith("data/events.csv: file is empty") for p in problems)
    assert "data/institutions.csv: file is missing" in problems


def test_unknown_record_file(data: Path) -> None:
    (data / "lab.csv").write_text("id\n", encoding="utf-8")
    assert read(data)[0].startswith("data/lab.csv: unknown record file")


def test_bad_id_and_siren(data: Path) -> None:
    edit(data / "labs.csv", "lab-beta,", "Lab Beta,")
    edit(
        data / "institutions.csv", "https://one.example.org,,", "https://one.example.org,123456789,"
    )
    problems = read(data)
    assert any('data/labs.csv:3: column "id": "Lab Beta" is not a valid id' in p for p in problems)
    assert any('column "siren": "123456789" is not a SIREN number' in p for p in problems)


def test_a_byte_order_mark_is_accepted(data: Path) -> None:
    path = data / "labs.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read(data) == []
