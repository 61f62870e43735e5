"""The publishing pipeline: records → mapping → validation → release, one stage after another.

Each stage is its own module; this one only chains them and decides, from their results, whether a
release is written. An invalid graph writes nothing and switches nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, catalog, dumps, formats, jsonld
from . import records as records_mod
from .iris import Minter
from .mapping import Mapped, map_records
from .records import Problem, Records
from .release import DUMP_NAMES as DUMP_NAMES  # re-exported: the dump stems
from .release import (
    STAGING_PREFIX,
    Release,
    ReleaseError,
    clean_staging,
    current,
    staging,
)
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
    fingerprints: dict[str, str] = field(default_factory=dict)
    validated: int = 0  # records validated in this run (all, or only the changed ones)

    @property
    def ok(self) -> bool:
        return not self.problems


def _quiet(_: str) -> None:
    return None


def check(
    settings: Settings,
    *,
    progress: Progress = _quiet,
    jobs: int | None = None,
    full: bool = True,
    engine: str = "sparql",
    workdir: Path | None = None,
    keep_records: bool = True,
) -> Outcome:
    """Read, map and validate the records; writes no release.

    The mapped graph goes to ``workdir`` (default: a temporary folder), which the outcome's
    ``mapped.close()`` removes. With ``keep_records=False`` the records are let go once mapped
    and fingerprinted (``outcome.records`` is then None when they had no problem), so that
    validating and writing a large graph do not also hold every record.

    With ``full=False``, records unchanged since the current release (same content, same linked
    records, same ontology, shapes and base) are not validated again: that release was valid, and
    a record's shapes only look at its own triples and the types of what it links to.
    """
    outcome, plan = _map(
        settings, progress=progress, full=full, workdir=workdir, keep_records=keep_records
    )
    if plan is None or outcome.mapped is None:
        return outcome
    progress(plan.message(outcome.mapped))
    plan.done(outcome, plan.validate(settings, outcome.mapped, jobs=jobs, engine=engine))
    return outcome


@dataclass
class _Plan:
    """What to validate once the graph is mapped: every record, or only the changed ones."""

    focus: list[str] | None
    records: int

    def message(self, mapped: Mapped) -> str:
        if self.focus is None:
            return f"validating {mapped.triples} triples"
        return f"validating {len(self.focus)} changed of {self.records} records"

    def validate(
        self, settings: Settings, mapped: Mapped, *, jobs: int | None, engine: str
    ) -> Report:
        return validate(
            mapped,
            settings.shapes,
            jobs=jobs or _jobs(self.records),
            focus=self.focus,
            engine=engine,
        )

    def done(self, outcome: Outcome, report: Report) -> None:
        """Record the validation ``report`` in ``outcome``."""
        outcome.report = report
        outcome.problems = report.problems()
        outcome.validated = len(outcome.fingerprints) if self.focus is None else len(self.focus)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while records are read and mapped: they make millions of
    objects and no garbage cycles, and every full collection walks all of them (100k labs:
    read and map 32 s → 27 s)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _map(
    settings: Settings,
    *,
    progress: Progress,
    full: bool,
    workdir: Path | None,
    keep_records: bool,
) -> tuple[Outcome, _Plan | None]:
    """Read and map the records: an outcome with the mapped graph and what to validate, or the
    problems that stop there (plan None)."""
    for path, what in ((settings.ontology, "ontology"), (settings.shapes, "shapes")):
        if not path.is_file():
            return Outcome([Problem(str(path), 0, None, f"{what} file not found")]), None
    with _no_cycle_collection():
        progress("reading records")
        schemes = load_schemes(settings.ontology)
        choices = {name: frozenset(concepts) for name, concepts in schemes.items()}
        recs = records_mod.read(settings.data_dir, choices)
        if recs.problems:
            return Outcome(list(recs.problems), records=recs), None
        progress(f"mapping {len(recs.records)} records")
        minter = Minter(settings.base)
        mapped = map_records(
            recs.records,
            minter,
            schemes,
            folder=workdir,
            memory_triples=settings.build_memory_triples,
        )
        fingerprints = record_fingerprints(recs, minter, settings)
    n_records = len(recs.records)
    kept = recs if keep_records else None
    del recs
    focus = None
    if not full:
        previous = _previous_fingerprints(settings)
        focus = [iri for iri, fp in fingerprints.items() if previous.get(iri) != fp]
    outcome = Outcome(mapped=mapped, records=kept)
    outcome.fingerprints = fingerprints
    return outcome, _Plan(focus, n_records)


def record_fingerprints(recs: Records, minter: Minter, settings: Settings) -> dict[str, str]:
    """IRI → digest of everything its validation depends on (record, linked records, rules)."""
    rules = hashlib.sha256(
        settings.base.encode() + settings.ontology.read_bytes() + settings.shapes.read_bytes()
    ).hexdigest()
    by_id = recs.by_id
    out = {}
    for rec in recs.records:
        linked = sorted(f"{by_id[r].type}:{by_id[r].digest}" for r in rec.refs() if r in by_id)
        text = "\x1f".join((rules, rec.type, rec.digest, *linked))
        out[minter.thing(rec.type, rec.id)] = hashlib.sha256(text.encode()).hexdigest()[:24]
    return out


FINGERPRINTS = "validation-index.json"


def _previous_fingerprints(settings: Settings) -> dict[str, str]:
    try:
        release = current(settings.releases_dir)
    except ReleaseError:
        return {}
    if release is None or FINGERPRINTS not in release.manifest["files"]:
        return {}
    data = json.loads(release.file(FINGERPRINTS).read_text(encoding="utf-8"))
    return dict(data.get("records", {}))


def _jobs(n_records: int) -> int:
    return min(os.cpu_count() or 1, 4) if n_records > 4000 else 1


def build(
    settings: Settings,
    *,
    progress: Progress = _quiet,
    switch: bool = True,
    jobs: int | None = None,
    now: dt.datetime | None = None,
    full: bool = False,
    engine: str = "sparql",
) -> Outcome:
    """Check the records and, when valid, write a release and make it current.

    Only records changed since the current release are validated unless ``full`` is set. The
    graph is validated on another thread while the dumps are written into the staging folder
    (validation is mostly pyoxigraph, which runs without the GIL; the dumps are mostly Python):
    an invalid graph stops the writing and the staging folder is removed, so nothing is
    published, as before.
    """
    clean_staging(settings.releases_dir)
    # The graph's working files sit beside the releases, named like a staging folder, so the
    # next build removes them if this one is killed.
    workdir = settings.releases_dir / f"{STAGING_PREFIX}graph-{os.getpid()}"
    new_folder = not settings.releases_dir.exists()
    outcome, plan = _map(
        settings, progress=progress, full=full, workdir=workdir, keep_records=False
    )
    try:
        mapped = outcome.mapped
        if plan is None or mapped is None:
            return outcome
        progress(plan.message(mapped) + ", writing the dumps meanwhile")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="labgraph-build") as pool:
            report = pool.submit(plan.validate, settings, mapped, jobs=jobs, engine=engine)
            # The catalogue's statistics are SPARQL aggregates over the same store: queued
            # after the validation on the same thread, so that an invalid graph is known first
            # (and costs no statistics).
            stats = pool.submit(_stats_if_valid, report, mapped, settings.base)
            outcome.release = write_release(
                settings,
                mapped,
                report,
                now=now,
                switch=switch,
                fingerprints=outcome.fingerprints,
                stats=stats,
                progress=progress,
            )
            plan.done(outcome, report.result())
        return outcome
    finally:
        if outcome.mapped is not None:
            outcome.mapped.close()  # the graph's working files; the release has what it needs
        elif workdir.exists():  # stopped before mapping
            shutil.rmtree(workdir, ignore_errors=True)
        if new_folder and outcome.release is None:  # an invalid first build leaves no folder
            with contextlib.suppress(OSError):
                settings.releases_dir.rmdir()


def _stats_if_valid(report: Future[Report], mapped: Mapped, base: str) -> catalog.GraphStats | None:
    if report.exception() is not None or not report.result().conforms:
        return None
    return _stats(mapped, base)


def _stats(mapped: Mapped, base: str) -> catalog.GraphStats:
    """The catalogue's statistics: SPARQL aggregates over a store in memory (run without the
    GIL), or one pass in Python over the N-Triples file of a graph too large for one (~15×
    cheaper than the same aggregates over a store on disk)."""
    if mapped.in_memory:
        return catalog.graph_stats(mapped.store(), base)
    return catalog.graph_stats_nt(mapped.nt, base)


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
    report: Report | Future[Report],
    *,
    now: dt.datetime | None = None,
    switch: bool = True,
    fingerprints: dict[str, str] | None = None,
    stats: catalog.GraphStats | Future[catalog.GraphStats | None] | None = None,
    progress: Progress = _quiet,
) -> Release | None:
    """Stream every dump from the graph on disk, the report and the manifest; commit atomically.

    ``report`` (and the catalogue's ``stats``) may still be computed by another thread: the
    dumps are written meanwhile, and the release is committed only once the report says the
    graph has no violation. An invalid graph writes nothing (the staging folder is removed)
    and returns None.
    """
    built = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    release_id = f"{built:%Y%m%dT%H%M%SZ}-{_sha256(mapped.nt)[:8]}"
    counts = {"triples": mapped.triples}
    for origin in mapped.subjects.values():
        counts[origin.type] = counts.get(origin.type, 0) + 1

    def invalid() -> bool:  # known to be invalid (or failed) already: stop writing dumps
        if not isinstance(report, Future) or not report.done():
            return False
        return report.exception() is not None or not report.result().conforms

    with contextlib.ExitStack() as stack:
        if stats is None:
            # The catalogue's statistics are SPARQL aggregates pyoxigraph evaluates without
            # the GIL: computed on another core while the dumps are written.
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
            stats = pool.submit(_stats, mapped, settings.base)
        stage = stack.enter_context(staging(settings.releases_dir, release_id))
        dumps.write_dumps(stage, mapped, turtle_prefixes(settings.base), stop=invalid)
        done = report.result() if isinstance(report, Future) else report
        if not done.conforms:
            stage.abort()
            return None
        progress("writing the catalogue and the manifest")
        found = stats.result() if isinstance(stats, Future) else stats
        if found is None:
            found = _stats(mapped, settings.base)
        stage.add("context.jsonld", jsonld.context_bytes(), formats.JSONLD.media_type)
        stage.add("ontology.ttl", settings.ontology.read_bytes(), formats.TURTLE.media_type)
        stage.add("shapes.ttl", settings.shapes.read_bytes(), formats.TURTLE.media_type)
        stage.add("validation.ttl", done.to_turtle().encode(), formats.TURTLE.media_type)
        stage.add("validation.json", done.to_json().encode(), "application/json")
        index = {"records": dict(sorted((fingerprints or {}).items()))}
        stage.add(FINGERPRINTS, json.dumps(index, indent=0).encode(), "application/json")
        extra = catalog.release_files(
            release_id=release_id,
            built=built,
            base=settings.base,
            counts=counts,
            files=dict(stage.files),
            store=mapped.store() if mapped.in_memory else None,
            stats=found,
            checksums=settings.catalog_checksums,
        )
        for name, (data, media_type) in sorted(extra.items()):
            stage.add(name, data, media_type)
        manifest = {
            "generator": f"labgraph {__version__}",
            "built": built.isoformat().replace("+00:00", "Z"),
            "base": settings.base,
            "source_digest": source_digest(settings),
            "counts": dict(sorted(counts.items())),
            "validation": {"conforms": done.conforms, "violations": len(done.violations)},
        }
        return stage.commit(manifest, switch=switch)
    raise AssertionError("unreachable")  # pragma: no cover


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def stderr_progress() -> Progress:
    """Progress lines on a terminal; silence when stderr is piped or redirected."""
    if not sys.stderr.isatty():
        return _quiet
    return lambda message: print(f"labgraph: {message}…", file=sys.stderr, flush=True)
