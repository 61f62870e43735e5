"""SHACL validation, each result traced back to the record that produced it.

A result about ``<…/id/lab/ti-lab>`` and ``org:unitOf`` becomes
``data/labs.csv:6: column "hosts": A lab must be hosted by at least one institution…`` so that
the person who edits the spreadsheet knows what to fix. The default engine runs the shapes
compiled to SPARQL (:mod:`labgraph.shacl_sparql`) against the mapped graph's pyoxigraph store (in
memory up to ``build_memory_triples``, on disk above), so validating never holds the graph as
Python objects; pyshacl, the reference, parses the graph into an rdflib graph in memory. Only the
small per-subject index (IRI → type, file, line) is needed to trace a result.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyoxigraph as ox
import rdflib

from .mapping import Mapped
from .records import Problem
from .shacl_sparql import Check, Unsupported, compile_shapes
from .shacl_sparql import run as run_checks
from .vocab import expand

log = logging.getLogger("labgraph.validation")
SH = "http://www.w3.org/ns/shacl#"
RDF_TYPE = expand("rdf:type")


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
    engine: str = "pyshacl"

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
                    "engine": self.engine,
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


ENGINES = ("sparql", "pyshacl")


def validate(
    mapped: Mapped,
    shapes: Path,
    *,
    jobs: int = 1,
    focus: Iterable[str] | None = None,
    engine: str = "sparql",
) -> Report:
    """Validate ``mapped`` against the shapes; ``focus`` limits which subjects are checked.

    ``engine="sparql"`` runs the shapes compiled to SPARQL on the graph's pyoxigraph store
    (:meth:`Mapped.store`), its checks on ``jobs`` threads (fast; falls back to pyshacl
    if the shapes use a feature the compiler does not know); ``"pyshacl"`` is the reference
    implementation, over the whole graph parsed into an rdflib graph in memory.
    """
    if engine == "sparql":
        try:
            checks = compile_shapes(shapes)
        except Unsupported as err:
            log.warning("shapes not compilable to SPARQL (%s): validating with pyshacl", err)
        else:
            if mapped.in_memory or not mapped.memory_triples or mapped.index is None:
                raw = run_checks(checks, mapped.store(), jobs=jobs)
            else:
                raw = _run_in_slices(checks, mapped, jobs=jobs)
            if focus is not None:
                wanted = set(focus)
                raw = [r for r in raw if r["focus"] in wanted]
            return _report(raw, mapped, "sparql")
    elif engine != "pyshacl":
        raise ValueError(f"unknown validation engine {engine!r}; use one of {ENGINES}")
    return _validate_pyshacl(mapped, shapes, focus=focus)


RDFS_SUBCLASSOF = expand("rdfs:subClassOf")


def _run_in_slices(
    checks: list[Check], mapped: Mapped, *, jobs: int
) -> list[dict[str, str | None]]:
    """The checks of a graph too large for one store in memory, run a slice at a time.

    Each slice of subjects goes into its own store in memory, with every triple about the
    nodes its triples point to and every rdfs:subClassOf triple: what a compiled check reads
    about a focus node (its triples, its targets' classes, and the types and triples of its
    values; see :mod:`labgraph.shacl_sparql`). Only results about the slice's own subjects are
    kept, so each subject is checked once, with everything its shapes look at. Much faster
    than a store on disk, in bounded memory (a quarter of ``build_memory_triples`` triples a
    slice, plus the nodes they point to). A graph with blank nodes (never mapped from records)
    is checked on the store on disk instead, as blank node labels do not cross stores.
    """
    classes = _lines_with(mapped.nt, f" <{RDFS_SUBCLASSOF}> ".encode())
    if classes is None:
        return run_checks(checks, mapped.store(), jobs=jobs)
    out: list[dict[str, str | None]] = []
    of_classes = _iri_objects(classes)
    for data, keys in mapped.slices(max(mapped.memory_triples // 4, 1)):
        store = ox.Store()
        store.load(data + classes, format=ox.RdfFormat.N_TRIPLES)
        inside = set(keys)
        outside = (_iri_objects(data) | of_classes) - inside
        if outside:
            store.load(mapped.lines_about(sorted(outside)), format=ox.RdfFormat.N_TRIPLES)
        focus = {key[1:-2] for key in inside}
        out.extend(r for r in run_checks(checks, store, jobs=jobs) if r["focus"] in focus)
    return out


#: A line whose object is an IRI, in the N-Triples the mapping writes (``<s> <p> <o> .``: IRIs
#: hold no space nor ``>``, and a literal's object starts with a quote).
_IRI_OBJECT = re.compile(rb"^<[^>]*> <[^>]*> (<[^>]*>) \.$", re.MULTILINE)


def _iri_objects(data: bytes) -> set[str]:
    """The subject keys (``"<iri> "``) of the IRIs that lines of ``data`` point to.

    A regular expression over the bytes, not a SPARQL query over the slice's store: building a
    Python string per row held the interpreter lock for a third of a 100k-lab build, while the
    main thread needed it for the dumps.
    """
    return {iri.decode("utf-8") + " " for iri in set(_IRI_OBJECT.findall(data))}


def _lines_with(path: Path, needle: bytes) -> bytes | None:
    """Every line of ``path`` that holds ``needle``; None if the file has a blank node."""
    found = []
    with open(path, "rb") as fh:
        rest = b""
        while block := fh.read(32 << 20):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
            if b"_:" in data:
                return None
            if needle in data:
                found.extend(line + b"\n" for line in data.split(b"\n") if needle in line)
        if rest:
            return None  # not whole lines: not a graph of this module
    return b"".join(found)


def _result_order(r: Result) -> tuple[str, int, str, str, str, str, str]:
    return (r.file, r.line, r.column or "", r.focus, r.path or "", r.value or "", r.component)


def _report(raw: list[dict[str, str | None]], mapped: Mapped, engine: str) -> Report:
    results = sorted({_trace(r, mapped) for r in raw}, key=_result_order)
    conforms = not any(r.severity == "Violation" for r in results)
    return Report(conforms, results, mapped.triples, engine)


def _validate_pyshacl(mapped: Mapped, shapes: Path, *, focus: Iterable[str] | None) -> Report:
    """The reference: pyshacl over the whole graph, results kept for the focus records.

    pyshacl's own ``focus_nodes`` mode is not used: it is slower than a whole run here and, in
    pyshacl 0.40, misses violations of nested shapes (sh:node, sh:or) — tests pin this.
    """
    from pyshacl import validate as shacl_validate  # heavy import: only when pyshacl is used

    data = rdflib.Graph()
    data.parse(source=str(mapped.nt), format="nt")
    shapes_graph = rdflib.Graph().parse(shapes, format="turtle")
    _conforms, report, _text = shacl_validate(data, shacl_graph=shapes_graph, allow_warnings=True)
    raw = _pyshacl_results(report, shapes_graph)
    if focus is not None:
        wanted = set(focus)
        raw = [r for r in raw if r["focus"] in wanted]
    return _report(raw, mapped, "pyshacl")


def _pyshacl_results(
    report: rdflib.Graph, shapes_graph: rdflib.Graph
) -> list[dict[str, str | None]]:
    """pyshacl's report graph as plain result dicts."""
    out = []
    sh = rdflib.Namespace(SH)
    for result in report.subjects(rdflib.RDF.type, sh.ValidationResult):
        if (None, sh.detail, result) in report:  # nested detail of a sh:node result
            continue
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
