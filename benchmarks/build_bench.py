"""Build benchmark: ``labgraph build`` against the naive pipeline on the same synthetic records.

The naive pipeline is what one would write first with the usual Python tools: csv.DictReader,
triples added one by one to an ``rdflib.Graph`` (through labgraph's own ``mapping.TERMS`` table,
so both produce the same graph), one ``pyshacl.validate`` over the whole graph, and rdflib's
Turtle writer. If labgraph's design (typed records, pyoxigraph terms and writers, its own
validation engine) is worth its complexity, it must beat that by a wide margin and grow no faster
with the data. Both run as child processes so that wall time and peak RSS
(``wait4`` rusage: the largest process of the child's tree) are measured the same way; ratios
matter more than seconds on a shared 2-core machine.

    python benchmarks/build_bench.py            # 1k and 10k labs
    python benchmarks/build_bench.py --large    # also 100k labs (long)
    python benchmarks/build_bench.py --sizes 500 --stages   # quick look, with labgraph's stages
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic  # the sibling module (also runnable on its own)

ROOT = synthetic.ROOT
SHAPES = ROOT / "shapes" / "labgraph.ttl"
OUT_DIR = ROOT / "benchmarks" / "out"
DEFAULT_SIZES = (1_000, 10_000)
LARGE_SIZE = 100_000


@dataclass
class Run:
    """One child process: how long it took, what it cost, and what it reported."""

    wall_s: float
    cpu_s: float
    peak_mb: float
    report: dict[str, Any]


def run_child(cmd: Sequence[str], *, cwd: Path) -> Run:
    """Run ``cmd`` and measure it with ``wait4``, so each child's rusage is its own.

    ``resource.getrusage(RUSAGE_CHILDREN)`` would keep the maximum over every child so far; the
    rusage ``wait4`` returns belongs to that one child (and the workers it waited for).
    Output goes to files, not pipes, so a chatty child cannot block on a full pipe.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABGRAPH_")}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-3000:]}")
    last = stdout.strip().splitlines()[-1] if stdout.strip() else "{}"
    report = json.loads(last) if last.startswith("{") else {"stdout": last}
    # Linux reports ru_maxrss in KiB.
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, report)


def labgraph_command() -> list[str]:
    """The ``labgraph`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("labgraph")
    found = str(script) if script.exists() else shutil.which("labgraph")
    if not found:
        raise SystemExit("labgraph is not installed in this environment (pip install -e .)")
    return [found]


def build_args(data: Path, releases: Path, extra: Sequence[str] = ()) -> list[str]:
    """Arguments of ``labgraph build`` on synthetic records, under the fake base."""
    return [
        "build",
        "--data",
        str(data),
        "--releases",
        str(releases),
        "--base",
        synthetic.BASE,
        "--ontology",
        str(synthetic.ONTOLOGY),
        "--shapes",
        str(SHAPES),
        *extra,
    ]


def measure_labgraph(data: Path, work: Path, extra: Sequence[str] = ()) -> Run:
    """``labgraph build`` into an empty releases folder, so the build is always a full one."""
    releases = work / "releases"
    shutil.rmtree(releases, ignore_errors=True)
    run = run_child([*labgraph_command(), *build_args(data, releases, extra)], cwd=ROOT)
    manifest = json.loads((releases / "current" / "manifest.json").read_text(encoding="utf-8"))
    run.report = {
        "triples": manifest["counts"]["triples"],
        "conforms": manifest["validation"]["conforms"],
    }
    return run


def measure_naive(data: Path, work: Path) -> Run:
    return run_child(
        [sys.executable, __file__, "naive", "--data", str(data), "--out", str(work / "naive.ttl")],
        cwd=ROOT,
    )


def measure_stages(data: Path, work: Path, extra: Sequence[str] = ()) -> Run:
    releases = work / "stage-releases"
    shutil.rmtree(releases, ignore_errors=True)
    return run_child(
        [sys.executable, __file__, "stages", *build_args(data, releases, extra)], cwd=ROOT
    )


def naive_build(
    data: Path,
    out: Path,
    *,
    base: str = synthetic.BASE,
    ontology: Path = synthetic.ONTOLOGY,
    shapes: Path = SHAPES,
) -> dict[str, Any]:
    """The straightforward pipeline: DictReader → rdflib.Graph.add → pyshacl → rdflib Turtle."""
    import pyshacl
    import rdflib
    from rdflib.namespace import RDF, RDFS, SKOS, XSD

    from labgraph.iris import region
    from labgraph.mapping import CLASSES, TERMS
    from labgraph.records import SCHEMA, SEPARATOR
    from labgraph.regions import REGIONS
    from labgraph.vocab import LG, expand, load_schemes

    schemes = load_schemes(ontology)
    rows: dict[str, list[dict[str, str]]] = {}
    for type_, rtype in SCHEMA.items():
        path = data / rtype.file
        if path.exists():
            with open(path, encoding="utf-8-sig", newline="") as fh:
                rows[type_] = list(csv.DictReader(fh))
    type_of = {row["id"]: type_ for type_, found in rows.items() for row in found}

    def uri(id_: str) -> rdflib.URIRef:
        return rdflib.URIRef(f"{base}/id/{type_of[id_]}/{id_}")

    dates = {4: XSD.gYear, 7: XSD.gYearMonth, 10: XSD.date}
    graph = rdflib.Graph()
    identifier = rdflib.URIRef(expand("dct:identifier"))
    for type_, found in rows.items():
        schema = SCHEMA[type_]
        for row in found:
            subject = uri(row["id"])
            for cls in CLASSES[type_]:
                graph.add((subject, RDF.type, rdflib.URIRef(expand(cls))))
            if type_ == "event" and row.get("kind") == "series":
                graph.add((subject, RDF.type, rdflib.URIRef(expand("schema:EventSeries"))))
            graph.add((subject, identifier, rdflib.Literal(row["id"])))
            for column, (predicate, how) in TERMS[type_].items():
                raw = (row.get(column) or "").strip()
                if not raw:
                    continue
                col = schema.column(column)
                pred = rdflib.URIRef(expand(predicate))
                for item in [p.strip() for p in raw.split(SEPARATOR)] if col.many else [raw]:
                    obj: rdflib.term.Node
                    if how in ("lang-fr", "lang-en"):
                        obj = rdflib.Literal(item, lang=how[-2:])
                    elif how == "text":
                        obj = rdflib.Literal(item)
                    elif how == "iri":
                        obj = rdflib.URIRef(item)
                    elif how == "ref":
                        obj = uri(item)
                    elif how == "source":
                        obj = rdflib.URIRef(item) if "://" in item else uri(item)
                    elif how == "concept":
                        concept = schemes[col.scheme or ""][item]
                        obj = rdflib.URIRef(concept.iri)
                        graph.add((obj, SKOS.inScheme, rdflib.URIRef(LG + (col.scheme or ""))))
                        for lang, label in concept.labels:
                            graph.add((obj, SKOS.prefLabel, rdflib.Literal(label, lang=lang)))
                    elif how == "region":
                        obj = rdflib.URIRef(region(item))
                        graph.add((obj, RDFS.label, rdflib.Literal(REGIONS[item], lang="fr")))
                    elif how == "wikidata":
                        obj = rdflib.URIRef("http://www.wikidata.org/entity/" + item)
                    elif how == "year":
                        obj = rdflib.Literal(item, datatype=XSD.gYear)
                    elif how == "date":
                        obj = rdflib.Literal(item, datatype=dates[len(item)])
                    elif how == "decimal":
                        obj = rdflib.Literal(item, datatype=XSD.decimal)
                    elif how == "integer":
                        obj = rdflib.Literal(item, datatype=XSD.integer)
                    else:
                        raise ValueError(f"unknown term kind {how!r} in labgraph.mapping.TERMS")
                    graph.add((subject, pred, obj))
    shapes_graph = rdflib.Graph().parse(shapes, format="turtle")
    conforms, _report, _text = pyshacl.validate(graph, shacl_graph=shapes_graph)
    graph.serialize(destination=out, format="turtle")
    return {"triples": len(graph), "conforms": bool(conforms)}


def stages(cli_args: Sequence[str]) -> dict[str, float]:
    """Time ``labgraph build`` (same CLI, same flags) between its progress messages.

    The CLI prints progress only on a terminal, through ``labgraph.build.stderr_progress``;
    replacing that function gives the time of each stage (read, map, validate, write) without
    touching labgraph.
    """
    import labgraph.build
    import labgraph.cli

    marks: list[tuple[str, float]] = []
    names = {"reading": "read", "mapping": "map", "validating": "validate", "writing": "write"}

    def progress(message: str) -> None:
        marks.append((names.get(message.split()[0], message), time.perf_counter()))

    labgraph.build.stderr_progress = lambda: progress  # type: ignore[assignment]
    code = labgraph.cli.main(list(cli_args))
    marks.append(("end", time.perf_counter()))
    if code != 0:
        raise SystemExit(f"labgraph build exited {code}")
    return {name: round(marks[i + 1][1] - t, 3) for i, (name, t) in enumerate(marks[:-1])}


@dataclass
class Row:
    labs: int
    records: int
    triples: int
    labgraph: Run
    naive: Run
    stages: dict[str, float] | None
    load: tuple[float, float]  # 1-minute load average before and after: noise from neighbours

    @property
    def ratio(self) -> float:
        return self.naive.wall_s / self.labgraph.wall_s


def _growth(rows: list[Row], i: int, attr: str) -> float | None:
    """Time per lab at this size over time per lab at the previous size (1.0 = linear)."""
    if i == 0:
        return None
    now, before = rows[i], rows[i - 1]
    per_now = getattr(now, attr).wall_s / now.labs
    return per_now / (getattr(before, attr).wall_s / before.labs)


def table(rows: list[Row]) -> str:
    head = (
        "labs",
        "triples",
        "labgraph s",
        "naive s",
        "naive/lg",
        "lg peak MB",
        "naive peak MB",
        "lg growth/lab",
        "naive growth/lab",
    )
    lines = [head]
    for i, r in enumerate(rows):
        g_lg, g_naive = _growth(rows, i, "labgraph"), _growth(rows, i, "naive")
        lines.append(
            (
                f"{r.labs:,}",
                f"{r.triples:,}",
                f"{r.labgraph.wall_s:.1f}",
                f"{r.naive.wall_s:.1f}",
                f"{r.ratio:.2f}×",
                f"{r.labgraph.peak_mb:.0f}",
                f"{r.naive.peak_mb:.0f}",
                "—" if g_lg is None else f"{g_lg:.2f}",
                "—" if g_naive is None else f"{g_naive:.2f}",
            )
        )
    widths = [max(len(line[c]) for line in lines) for c in range(len(head))]
    out = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    busy = [r for r in rows if max(r.load) > (os.cpu_count() or 1)]
    if busy:
        out.append(
            "note: load average above the CPU count during "
            + ", ".join(f"{r.labs:,} labs ({max(r.load):.1f})" for r in busy)
            + ": other processes shared the machine; compare ratios, or rerun with --repeat"
        )
    stage_rows = [(r.labs, r.stages) for r in rows if r.stages]
    if stage_rows:
        out.append("")
        out.append(
            "labgraph stages (s, in-process): "
            + "; ".join(
                f"{labs:,} labs: " + ", ".join(f"{k} {v:.1f}" for k, v in st.items())
                for labs, st in stage_rows
            )
        )
    return "\n".join(out)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("labgraph", "rdflib", "pyshacl", "pyoxigraph"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "absent"
    try:
        found["labgraph_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # Uncommitted changes to what the build runs make the commit alone misleading.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "ontology", "shapes"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        found["labgraph_uncommitted_changes"] = str(bool(dirty)).lower()
    except (OSError, subprocess.CalledProcessError):
        found["labgraph_commit"] = "unknown"
    return found


def bench(
    sizes: Sequence[int],
    *,
    repeat: int,
    seed: int,
    with_stages: bool,
    keep: Path | None,
    labgraph_args: Sequence[str] = (),
) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="labgraph-bench-") as tmp:
        for labs in sizes:
            work = (keep or Path(tmp)) / f"{labs}"
            data = work / "data"
            shutil.rmtree(work, ignore_errors=True)
            made = synthetic.generate(data, labs, seed=seed)
            load_before = os.getloadavg()[0]
            print(f"{labs:,} labs ({sum(made.values()):,} records): ", end="", flush=True)
            lg_runs, naive_runs = [], []
            for _ in range(repeat):  # alternate, so drift in machine load hits both alike
                lg_runs.append(measure_labgraph(data, work, labgraph_args))
                print(f"labgraph {lg_runs[-1].wall_s:.1f}s ", end="", flush=True)
                naive_runs.append(measure_naive(data, work))
                print(f"naive {naive_runs[-1].wall_s:.1f}s ", end="", flush=True)
            st = measure_stages(data, work, labgraph_args).report if with_stages else None
            print(flush=True)
            lg = _median_run(lg_runs)
            naive = _median_run(naive_runs)
            if lg.report["triples"] != naive.report["triples"]:
                print(
                    f"  note: labgraph wrote {lg.report['triples']} triples, naive "
                    f"{naive.report['triples']}",
                    flush=True,
                )
            load = (load_before, os.getloadavg()[0])
            rows.append(Row(labs, sum(made.values()), lg.report["triples"], lg, naive, st, load))
    return rows


def _median_run(runs: list[Run]) -> Run:
    """The run with the median wall time (its memory and report go with it)."""
    wanted = median(r.wall_s for r in runs)
    return min(runs, key=lambda r: abs(r.wall_s - wanted))


def write_json(rows: list[Row], args: argparse.Namespace) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    path = OUT_DIR / f"build_bench-{now:%Y%m%dT%H%M%SZ}.json"
    doc = {
        "benchmark": "build",
        "when": now.isoformat(),
        "seed": args.seed,
        "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": _versions(),
        "peers": {
            "labgraph": " ".join(["labgraph build", *args.labgraph_args]) + " (subprocess)",
            "naive": "csv.DictReader + rdflib.Graph.add + pyshacl.validate(whole graph) "
            "+ rdflib Turtle serialize (subprocess)",
        },
        "sizes": [
            {
                "labs": r.labs,
                "records": r.records,
                "triples": r.triples,
                "labgraph": asdict(r.labgraph),
                "naive": asdict(r.naive),
                "naive_over_labgraph": round(r.ratio, 3),
                "labgraph_growth_per_lab": _growth(rows, i, "labgraph"),
                "naive_growth_per_lab": _growth(rows, i, "naive"),
                "labgraph_stages_s": r.stages,
                "load_average_1min": {"before": r.load[0], "after": r.load[1]},
            }
            for i, r in enumerate(rows)
        ],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    p = sub.add_parser("naive", help="(internal) run the naive pipeline once, print JSON")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("stages", help="(internal) labgraph's CLI in-process, print its stages")
    p.add_argument("cli_args", nargs=argparse.REMAINDER, help="arguments of `labgraph`")
    parser.add_argument("--sizes", type=int, nargs="+", help="numbers of labs (default 1000 10000)")
    parser.add_argument("--large", action="store_true", help=f"also {LARGE_SIZE:,} labs (long)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the median is kept")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic records")
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also time labgraph's stages (read, map, validate, write)",
    )
    parser.add_argument("--keep", type=Path, help="keep records and outputs in this folder")
    parser.add_argument(
        "--labgraph-args",
        type=shlex.split,
        default=[],
        help='extra flags for labgraph build, e.g. "--engine pyshacl"',
    )
    args = parser.parse_args(argv)
    if args.mode == "naive":
        print(json.dumps(naive_build(args.data, args.out)))
        return 0
    if args.mode == "stages":
        print(json.dumps(stages(args.cli_args)))
        return 0
    sizes = list(args.sizes or DEFAULT_SIZES) + ([LARGE_SIZE] if args.large else [])
    rows = bench(
        sorted(set(sizes)),
        repeat=max(1, args.repeat),
        seed=args.seed,
        with_stages=args.stages,
        keep=args.keep,
        labgraph_args=args.labgraph_args,
    )
    print()
    print(table(rows))
    print(f"\nfigures: {write_json(rows, args).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
