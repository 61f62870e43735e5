"""The publishing pipeline: records → mapping → validation → release, one stage after another.

Each stage is its own module; this one only chains them and decides, from their results, whether a
release is written. An invalid graph writes nothing and switches nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import pyoxigraph as ox

from . import __version__, catalog, formats, jsonld
from . import records as records_mod
from .iris import Minter
from .mapping import Mapped, map_records
from .records import Problem, Records
from .release import DUMP_NAMES, Release, clean_staging, staging
from .settings import Settings
from .validation import Report, validate
from .vocab import PREFIXES, load_schemes

Progress = Callable[[str], None]


@dataclass
class Outcome:
    """What a build or a check found: problems to fix, or a release."""

    problems: list[Problem] = field(default_factory=list)
    report: Report | None = None
    mapped: Mapped | None = None
    records: Records | None = None
    release: Release | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _quiet(_: str) -> None:
    return None


def check(settings: Settings, *, progress: Progress = _quiet, jobs: int | None = None) -> Outcome:
    """Read, map and validate the records; never writes anything."""
    for path, what in ((settings.ontology, "ontology"), (settings.shapes, "shapes")):
        if not path.is_file():
            return Outcome([Problem(str(path), 0, None, f"{what} file not found")])
    progress("reading records")
    schemes = load_schemes(settings.ontology)
    choices = {name: frozenset(concepts) for name, concepts in schemes.items()}
    recs = records_mod.read(settings.data_dir, choices)
    if recs.problems:
        return Outcome(list(recs.problems), records=recs)
    progress(f"mapping {len(recs.records)} records")
    mapped = map_records(recs.records, Minter(settings.base), schemes)
    progress(f"validating {len(mapped.triples)} triples")
    report = validate(mapped, settings.shapes, jobs=jobs or _jobs(len(recs.records)))
    return Outcome(report.problems(), report=report, mapped=mapped, records=recs)


def _jobs(n_records: int) -> int:
    return min(os.cpu_count() or 1, 4) if n_records > 4000 else 1


def build(
    settings: Settings,
    *,
    progress: Progress = _quiet,
    switch: bool = True,
    jobs: int | None = None,
    now: dt.datetime | None = None,
) -> Outcome:
    """Check the records and, when valid, write a release and make it current."""
    outcome = check(settings, progress=progress, jobs=jobs)
    if not outcome.ok or outcome.mapped is None or outcome.report is None:
        return outcome
    clean_staging(settings.releases_dir)
    progress("writing release")
    outcome.release = write_release(
        settings, outcome.mapped, outcome.report, now=now, switch=switch
    )
    return outcome


def source_digest(settings: Settings) -> str:
    """Digest of every input (records, ontology, shapes): what the release was built from."""
    h = hashlib.sha256()
    inputs = [*sorted(settings.data_dir.glob("*.csv")), settings.ontology, settings.shapes]
    for path in inputs:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def turtle_prefixes(base: str) -> dict[str, str]:
    """Prefixes written in Turtle dumps: the vocabularies, plus one per record type."""
    prefixes = {k: v for k, v in PREFIXES.items() if k != "sh"}
    for type_ in ("lab", "institution", "project", "event", "figure", "source"):
        prefixes[type_] = f"{base}/id/{type_}/"
    return prefixes


def write_release(
    settings: Settings,
    mapped: Mapped,
    report: Report,
    *,
    now: dt.datetime | None = None,
    switch: bool = True,
) -> Release:
    """Serialise every dump, the report and the manifest; commit atomically."""
    built = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    triples = mapped.triples
    nt = "".join(f"{t} .\n" for t in triples).encode("utf-8")
    release_id = f"{built:%Y%m%dT%H%M%SZ}-{hashlib.sha256(nt).hexdigest()[:8]}"
    prefixes = turtle_prefixes(settings.base)
    by_type: dict[str, list[ox.Triple]] = {}
    for t in triples:
        rec = mapped.subjects.get(t.subject.value)
        if rec is not None:
            by_type.setdefault(rec.type, []).append(t)
    counts = {"triples": len(triples)}
    for rec in mapped.subjects.values():
        counts[rec.type] = counts.get(rec.type, 0) + 1
    with staging(settings.releases_dir, release_id) as stage:
        for name, part in (
            ("labgraph", triples),
            *((DUMP_NAMES[t], by_type[t]) for t in sorted(by_type)),
        ):
            for fmt in formats.DUMP_FORMATS:
                data = formats.serialize_graph(part, fmt, prefixes)
                stage.add(f"{name}.{fmt.extension}", data, fmt.media_type, gzip_copy=True)
        stage.add("context.jsonld", jsonld.context_bytes(), formats.JSONLD.media_type)
        stage.add("ontology.ttl", settings.ontology.read_bytes(), formats.TURTLE.media_type)
        stage.add("shapes.ttl", settings.shapes.read_bytes(), formats.TURTLE.media_type)
        stage.add("validation.ttl", report.to_turtle().encode(), formats.TURTLE.media_type)
        stage.add("validation.json", report.to_json().encode(), "application/json")
        extra = catalog.release_files(
            release_id=release_id, built=built, base=settings.base, counts=counts,
            files=dict(stage.files), graph_nt=nt,
        )
        for name, (data, media_type) in sorted(extra.items()):
            stage.add(name, data, media_type)
        manifest = {
            "generator": f"labgraph {__version__}",
            "built": built.isoformat().replace("+00:00", "Z"),
            "base": settings.base,
            "source_digest": source_digest(settings),
            "counts": dict(sorted(counts.items())),
            "validation": {"conforms": report.conforms, "violations": len(report.violations)},
        }
        return stage.commit(manifest, switch=switch)


def stderr_progress() -> Progress:
    """Progress lines on a terminal; silence when stderr is piped or redirected."""
    if not sys.stderr.isatty():
        return _quiet
    return lambda message: print(f"labgraph: {message}…", file=sys.stderr, flush=True)
