"""SHACL validation with pyshacl, each result traced back to the record that produced it.

A result about ``<…/id/lab/ti-lab>`` and ``org:unitOf`` becomes
``data/labs.csv:6: column "hosts": A lab must be hosted by at least one institution…`` so that
the person who edits the spreadsheet knows what to fix. Large graphs are validated in chunks of
records on several processes: each chunk carries its records' triples plus the types and labels
of everything (so ``sh:class`` checks see the referenced nodes) and only its records are focus
nodes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pyoxigraph as ox
import rdflib
from pyshacl import validate as shacl_validate

from .mapping import Mapped
from .records import Problem
from .vocab import expand

SH = "http://www.w3.org/ns/shacl#"
RDF_TYPE = expand("rdf:type")
_CHUNK = 2000  # records per chunk when validating in parallel


@dataclass(frozen=True, order=True)
class Result:
    """One SHACL result, with the record and column it comes from when known."""

    file: str
    line: int
    column: str | None
    focus: str
    path: str | None
    value: str | None
    severity: str
    message: str
    message_fr: str | None
    component: str

    def problem(self) -> Problem:
        return Problem(self.file, self.line, self.column, self.message)


@dataclass
class Report:
    conforms: bool
    results: list[Result]
    triples: int

    @property
    def violations(self) -> list[Result]:
        return [r for r in self.results if r.severity == "Violation"]

    def problems(self) -> list[Problem]:
        return [r.problem() for r in self.violations]

    def to_text(self) -> str:
        if not self.results:
            return f"valid: {self.triples} triples conform to the shapes\n"
        lines = [str(r.problem()) if r.file else f"<{r.focus}>: {r.message}" for r in self.results]
        lines.append(f"{len(self.violations)} violation(s) in {self.triples} triples")
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "conforms": self.conforms,
                    "triples": self.triples,
                    "results": [asdict(r) for r in self.results],
                },
                ensure_ascii=False,
                indent=2,
            )
            + "\n"
        )

    def to_turtle(self) -> str:
        """A W3C SHACL validation report, with the record location as rdfs:comment."""
        g = rdflib.Graph()
        g.bind("sh", SH)
        report = rdflib.BNode("report")
        g.add((report, rdflib.RDF.type, rdflib.URIRef(SH + "ValidationReport")))
        g.add((report, rdflib.URIRef(SH + "conforms"), rdflib.Literal(self.conforms)))
        for i, r in enumerate(self.results):
            node = rdflib.BNode(f"r{i}")
            g.add((report, rdflib.URIRef(SH + "result"), node))
            g.add((node, rdflib.RDF.type, rdflib.URIRef(SH + "ValidationResult")))
            g.add((node, rdflib.URIRef(SH + "focusNode"), rdflib.URIRef(r.focus)))
            if r.path:
                g.add((node, rdflib.URIRef(SH + "resultPath"), rdflib.URIRef(r.path)))
            g.add((node, rdflib.URIRef(SH + "resultSeverity"), rdflib.URIRef(SH + r.severity)))
            g.add(
                (node, rdflib.URIRef(SH + "sourceConstraintComponent"), rdflib.URIRef(r.component))
            )
            g.add((node, rdflib.URIRef(SH + "resultMessage"), rdflib.Literal(r.message, lang="en")))
            if r.message_fr:
                g.add(
                    (
                        node,
                        rdflib.URIRef(SH + "resultMessage"),
                        rdflib.Literal(r.message_fr, lang="fr"),
                    )
                )
            if r.file:
                where = f"{r.file}:{r.line}" + (f' column "{r.column}"' if r.column else "")
                g.add((node, rdflib.RDFS.comment, rdflib.Literal(where)))
        return g.serialize(format="turtle")


def validate(
    mapped: Mapped, shapes: Path, *, jobs: int = 1, focus: Iterable[str] | None = None
) -> Report:
    """Validate ``mapped`` against the shapes; ``focus`` limits which subjects are checked."""
    subjects = sorted(mapped.subjects if focus is None else set(focus) & set(mapped.subjects))
    by_subject: dict[str, list[str]] = {}
    context: list[str] = []
    for triple in mapped.triples:
        line = str(triple) + " .\n"
        s = triple.subject.value
        if s in mapped.subjects:
            by_subject.setdefault(s, []).append(line)
            if triple.predicate.value == RDF_TYPE:
                context.append(line)
        else:
            context.append(line)  # labels of regions and concepts
    shapes_text = shapes.read_text(encoding="utf-8")
    chunks = [subjects[i : i + _CHUNK] for i in range(0, len(subjects), _CHUNK)] or [[]]
    payloads = []
    for chunk in chunks:
        body = set(context)
        for s in chunk:
            body.update(by_subject.get(s, ()))
        payloads.append(("".join(sorted(body)), chunk))
    if jobs > 1 and len(payloads) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            raw = [
                r for part in pool.map(_run, payloads, [shapes_text] * len(payloads)) for r in part
            ]
    else:
        raw = [r for p in payloads for r in _run(p, shapes_text)]
    results = sorted({_trace(r, mapped) for r in raw})
    conforms = not any(r.severity == "Violation" for r in results)
    return Report(conforms, results, len(mapped.triples))


def _run(payload: tuple[str, Sequence[str]], shapes_text: str) -> list[dict[str, str | None]]:
    """Validate one chunk with pyshacl (runs in a worker process); plain dicts cross back."""
    nt, focus = payload
    if not focus:
        return []
    data = rdflib.Graph()
    data.parse(data=nt, format="nt")
    shapes_graph = rdflib.Graph()
    shapes_graph.parse(data=shapes_text, format="turtle")
    _conforms, report, _text = shacl_validate(
        data,
        shacl_graph=shapes_graph,
        focus_nodes=[rdflib.URIRef(s) for s in focus],
        allow_warnings=True,
    )
    out = []
    sh = rdflib.Namespace(SH)
    for result in report.subjects(rdflib.RDF.type, sh.ValidationResult):
        messages = {m.language or "": str(m) for m in report.objects(result, sh.resultMessage)}
        source_shape = report.value(result, sh.sourceShape)
        if source_shape is not None:
            for m in shapes_graph.objects(source_shape, sh.message):
                messages.setdefault(getattr(m, "language", None) or "", str(m))
        path = report.value(result, sh.resultPath)
        value = report.value(result, sh.value)
        out.append(
            {
                "focus": str(report.value(result, sh.focusNode)),
                "path": str(path) if isinstance(path, rdflib.URIRef) else None,
                "value": str(value) if value is not None else None,
                "severity": str(report.value(result, sh.resultSeverity)).rsplit("#", 1)[-1],
                "message": messages.get("en")
                or messages.get("")
                or next(iter(messages.values()), ""),
                "message_fr": messages.get("fr"),
                "component": str(report.value(result, sh.sourceConstraintComponent)),
            }
        )
    return out


def _trace(raw: dict[str, str | None], mapped: Mapped) -> Result:
    focus = raw["focus"] or ""
    record = mapped.subjects.get(focus)
    column = None
    if record is not None and raw["path"]:
        column = mapped.column_for(record, raw["path"])
    return Result(
        file=record.file if record else "",
        line=record.line if record else 0,
        column=column,
        focus=focus,
        path=raw["path"],
        value=raw["value"],
        severity=raw["severity"] or "",
        message=raw["message"] or "",
        message_fr=raw["message_fr"],
        component=raw["component"] or "",
    )


def triples_to_graph(triples: Iterable[ox.Triple]) -> rdflib.Graph:
    """An rdflib graph of pyoxigraph triples (for callers that need rdflib, e.g. tests)."""
    g = rdflib.Graph()
    g.parse(data="".join(f"{t} .\n" for t in triples), format="nt")
    return g
