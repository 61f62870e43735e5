"""Every dump of a release must be read, whole and unchanged, by parsers we did not write.

labgraph writes its dumps with pyoxigraph and its own JSON-LD writer and checks them with the same
libraries; harvesters and researchers will read them with Jena, raptor and others. So the real
data is built once, then every dump (the whole graph and each record type; plain, and the .gz
copy decompressed by GNU gzip) goes through Apache Jena's ``riot`` and raptor's ``rapper``: each
must accept it without error or warning and count as many triples as the N-Triples dump has lines.
The other RDF documents of the release (catalogue, VoID, ontology…) go through the same tools.

The tools come from Debian (``.ci/interop-deps``, run by ``make interop``). A missing tool fails
the test and says so: skipping would let CI stay green without checking anything.

Debian's Jena 4.5 has no Jakarta JSON implementation for its JSON-LD 1.1 reader, so JSON-LD is
read with Jena's JSON-LD 1.0 reader (``--syntax=jsonld10``, jsonld-java); raptor has no JSON-LD.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from labgraph.build import DUMP_NAMES, build
from labgraph.formats import DUMP_FORMATS, JSONLD, NQUADS, NTRIPLES, TURTLE, Format
from labgraph.settings import load

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("labgraph", *sorted(DUMP_NAMES.values()))
VARIANTS = ("plain", "gz")
RAPPER_SYNTAX = {NTRIPLES: "ntriples", TURTLE: "turtle", NQUADS: "nquads"}
TIMEOUT = 300  # seconds: only so that a hung JVM cannot hang CI forever


@dataclass(frozen=True)
class Dump:
    """One dump file to parse: which graph, which format, and where its readable bytes are."""

    name: str
    fmt: Format
    variant: str
    path: Path  # the plain file, or the .gz decompressed by GNU gzip

    @property
    def label(self) -> str:
        gz = ".gz" if self.variant == "gz" else ""
        return f"{self.name}.{self.fmt.extension}{gz}"


def tool(name: str) -> str:
    """Path of a command-line tool; fails (never skips) with how to install it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not on PATH: run `make interop` (its `.ci/interop-deps`, as "
            "root, installs Jena's riot, raptor's rapper and the other interop tools)",
            pytrace=False,
        )
    return found


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release of the real records, built with the default settings into a temporary folder."""
    settings = load(
        data_dir=ROOT / "data",
        releases_dir=tmp_path_factory.mktemp("releases"),
        ontology=ROOT / "ontology" / "labgraph.ttl",
        shapes=ROOT / "shapes" / "labgraph.ttl",
    )
    outcome = build(settings)
    assert outcome.ok, "\n".join(str(p) for p in outcome.problems)
    assert outcome.release is not None
    return outcome.release.path


@pytest.fixture(scope="module")
def dumps(
    release: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, Format, str], Dump]:
    """Every dump, the .gz copies decompressed by GNU gzip (not by Python, which wrote them)."""
    gzip = tool("gzip")
    unpacked = tmp_path_factory.mktemp("gunzipped")
    found: dict[tuple[str, Format, str], Dump] = {}
    for name in NAMES:
        for fmt in DUMP_FORMATS:
            plain = release / f"{name}.{fmt.extension}"
            assert plain.is_file(), f"release lacks {plain.name}"
            found[(name, fmt, "plain")] = Dump(name, fmt, "plain", plain)
            packed = plain.with_name(plain.name + ".gz")
            assert packed.is_file(), f"release lacks {packed.name}"
            result = subprocess.run(
                [gzip, "-dc", str(packed)], capture_output=True, timeout=TIMEOUT, check=False
            )
            assert result.returncode == 0, f"gzip cannot read {packed.name}: {result.stderr!r}"
            copy = unpacked / plain.name
            copy.write_bytes(result.stdout)
            found[(name, fmt, "gz")] = Dump(name, fmt, "gz", copy)
    return found


@pytest.fixture(scope="module")
def expected(release: Path) -> dict[str, int]:
    """Triples of each graph: the lines of its N-Triples dump (one triple per line)."""
    return {
        name: sum(
            1 for line in (release / f"{name}.nt").read_text("utf-8").splitlines() if line.strip()
        )
        for name in NAMES
    }


def test_gz_copies_are_the_plain_dumps(dumps: dict[tuple[str, Format, str], Dump]) -> None:
    """What a client gunzips is byte for byte the uncompressed dump."""
    differ = [
        d.label
        for key, d in dumps.items()
        if d.variant == "gz" and d.path.read_bytes() != dumps[(*key[:2], "plain")].path.read_bytes()
    ]
    assert not differ, f"decompressed .gz differs from the plain dump: {differ}"


_RIOT_COUNT = re.compile(r"^(?P<url>\S+) : (?:Triples|Quads) = (?P<n>[\d,]+)\s*$")


@pytest.mark.parametrize("fmt", DUMP_FORMATS, ids=lambda f: f.extension)
def test_riot_validates_and_counts_every_dump(
    fmt: Format, dumps: dict[tuple[str, Format, str], Dump], expected: dict[str, int]
) -> None:
    """``riot --validate --count`` on every dump of one format (one JVM for all of them)."""
    riot = tool("riot")
    chosen = [d for (_, f, _), d in sorted(dumps.items(), key=lambda kv: kv[1].label) if f == fmt]
    syntax = ["--syntax=jsonld10"] if fmt == JSONLD else []
    result = run([riot, *syntax, "--validate", "--count", *(str(d.path) for d in chosen)])
    output = result.stdout + result.stderr  # riot logs to stdout and counts to stderr
    assert result.returncode == 0, f"riot failed:\n{output}"
    complaints = [line for line in output.splitlines() if " WARN " in line or " ERROR " in line]
    assert not complaints, "riot complained:\n" + "\n".join(complaints)
    counted: dict[Path, int] = {}
    for line in output.splitlines():
        match = _RIOT_COUNT.match(line)
        if match:
            path = Path(unquote(urlsplit(match["url"]).path)).resolve()
            counted[path] = int(match["n"].replace(",", ""))
    wrong = {
        d.label: (counted.get(d.path.resolve()), expected[d.name])
        for d in chosen
        if counted.get(d.path.resolve()) != expected[d.name]
    }
    assert not wrong, f"riot counts (got, expected) differ: {wrong}\n{output}"


@pytest.mark.parametrize("fmt", (TURTLE, JSONLD, NQUADS), ids=lambda f: f.extension)
def test_riot_reads_the_same_triples_as_the_ntriples_dump(fmt: Format, release: Path) -> None:
    """Equal counts could hide a changed value: riot's N-Triples of the whole graph must match."""
    riot = tool("riot")
    syntax = ["--syntax=jsonld10"] if fmt == JSONLD else []
    result = run([riot, *syntax, "--output=nt", str(release / f"labgraph.{fmt.extension}")])
    assert result.returncode == 0, f"riot failed:\n{result.stderr}"
    ours = set((release / "labgraph.nt").read_text("utf-8").splitlines())
    theirs = set(result.stdout.splitlines())
    missing, extra = sorted(ours - theirs), sorted(theirs - ours)
    assert not missing and not extra, (
        f"labgraph.{fmt.extension} read by riot: missing {missing[:5]}, extra {extra[:5]}"
    )


_RAPPER_COUNT = re.compile(r"Parsing returned (\d+) (?:triples|statements)")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("fmt", tuple(RAPPER_SYNTAX), ids=lambda f: f.extension)
@pytest.mark.parametrize("name", NAMES)
def test_rapper_parses_and_counts(
    name: str,
    fmt: Format,
    variant: str,
    dumps: dict[tuple[str, Format, str], Dump],
    expected: dict[str, int],
) -> None:
    """``rapper -i SYNTAX -c``: exit 0 (1 is an error, 2 a warning) and the N-Triples count."""
    rapper = tool("rapper")
    dump = dumps[(name, fmt, variant)]
    result = run([rapper, "-i", RAPPER_SYNTAX[fmt], "-c", str(dump.path)])
    assert result.returncode == 0, f"rapper failed on {dump.label}:\n{result.stderr}"
    match = _RAPPER_COUNT.search(result.stderr)
    assert match, f"rapper printed no count for {dump.label}:\n{result.stderr}"
    assert int(match[1]) == expected[name], f"{dump.label}: rapper counted {match[1]}"


_RIOT_SYNTAX = {"jsonld": ["--syntax=jsonld10"]}
_RAPPER_BY_EXTENSION = {"ttl": "turtle", "nt": "ntriples", "nq": "nquads", "rdf": "rdfxml"}
_RDF_EXTENSIONS = ("ttl", "nt", "nq", "rdf", "jsonld")


def test_other_rdf_documents_parse_alike(release: Path) -> None:
    """The catalogue, VoID, ontology, shapes and reports are published too: same tools, same rule.

    Found from the manifest, so a document added later is checked without editing this test.
    Without an N-Triples twin to count against, riot and rapper must agree with each other, and
    the formats of one document (catalog.ttl, .rdf, .jsonld) must hold as many triples.
    """
    riot, rapper = tool("riot"), tool("rapper")
    manifest = json.loads((release / "manifest.json").read_text("utf-8"))
    dump_files = {f"{n}.{f.extension}" for n in NAMES for f in DUMP_FORMATS}
    documents = sorted(
        release / name
        for name in manifest["files"]
        if name.rsplit(".", 1)[-1] in _RDF_EXTENSIONS
        and name not in dump_files
        and name != "context.jsonld"  # a context only: it states no triple
    )
    assert documents, "the release lists no RDF document besides the dumps"
    riot_counts: dict[Path, int] = {}
    for extension in _RDF_EXTENSIONS:
        chosen = [d for d in documents if d.suffix == f".{extension}"]
        if not chosen:
            continue
        syntax = _RIOT_SYNTAX.get(extension, [])
        result = run([riot, *syntax, "--validate", "--count", *map(str, chosen)])
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"riot failed:\n{output}"
        complaints = [ln for ln in output.splitlines() if " WARN " in ln or " ERROR " in ln]
        assert not complaints, "riot complained:\n" + "\n".join(complaints)
        for line in output.splitlines():
            match = _RIOT_COUNT.match(line)
            if match:
                path = Path(unquote(urlsplit(match["url"]).path)).resolve()
                riot_counts[path] = int(match["n"].replace(",", ""))
    problems = []
    for doc in documents:
        got = riot_counts.get(doc.resolve())
        if not got:
            problems.append(f"{doc.name}: riot counted {got} triples")
            continue
        syntax = _RAPPER_BY_EXTENSION.get(doc.suffix[1:])
        if syntax is None:  # JSON-LD: raptor has no reader
            continue
        result = run([rapper, "-i", syntax, "-c", str(doc)])
        match = _RAPPER_COUNT.search(result.stderr)
        if result.returncode != 0 or not match or int(match[1]) != got:
            problems.append(
                f"{doc.name}: rapper exit {result.returncode}, riot {got}:\n{result.stderr}"
            )
    by_stem: dict[str, set[int]] = {}
    for doc in documents:
        by_stem.setdefault(doc.stem, set()).add(riot_counts.get(doc.resolve(), -1))
    problems += [
        f"{stem}.*: formats hold {sorted(n)} triples" for stem, n in by_stem.items() if len(n) > 1
    ]
    assert not problems, "\n".join(problems)
