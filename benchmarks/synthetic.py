"""Synthetic record files for benchmarks and tests: N fake labs and proportional other records.

Benchmarks need record sets 10 to 1000 times larger than the real network, with the same schema
and the same shape of references, so that timings say something about labgraph's pipeline. The
records are obviously fake ("Synthetic lab 00042", sources under ``http://example.invalid/``)
so they can never be mistaken for facts, and deterministic from a seed so runs are comparable.
Build them under a fake base too: ``labgraph build --base http://example.invalid/synthetic``.

    python benchmarks/synthetic.py --labs 1000 --out /tmp/synthetic-1k
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from labgraph.records import SCHEMA
from labgraph.regions import REGIONS
from labgraph.vocab import load_schemes

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY = ROOT / "ontology" / "labgraph.ttl"
#: The base to build synthetic records under: never a real host (RFC 2606 ``.invalid``).
BASE = "http://example.invalid/synthetic"
SITE = "http://example.invalid"
N_SOURCES = 3

Row = dict[str, str]


def counts(labs: int) -> dict[str, int]:
    """How many records of each type go with ``labs`` labs (the proportions of the brief)."""
    if labs < 1:
        raise ValueError("at least one lab is needed")
    return {
        "lab": labs,
        "institution": max(1, round(labs / 3)),
        "project": labs // 2,
        "event": labs // 10,
        "figure": labs // 10,
        "source": N_SOURCES,
    }


class _Generator:
    """Draws every record from one seeded RNG, in a fixed order, so bytes depend only on inputs."""

    def __init__(self, labs: int, seed: int, schemes: Mapping[str, Sequence[str]]) -> None:
        self.rng = random.Random(seed)
        self.n = counts(labs)
        self.width = max(5, len(str(max(self.n.values()))))
        self.schemes = {name: sorted(values) for name, values in schemes.items()}
        self.regions = sorted(REGIONS)

    def num(self, i: int) -> str:
        return f"{i:0{self.width}d}"

    def id(self, type_: str, i: int) -> str:
        return f"{type_}-{self.num(i)}"

    def pick(self, type_: str, k: int = 1, below: int | None = None) -> list[int]:
        """``k`` distinct record numbers of ``type_`` (only those ``< below`` when given)."""
        top = self.n[type_] if below is None else min(below, self.n[type_])
        return sorted(self.rng.sample(range(top), min(k, top)))

    def ids(self, type_: str, k: int = 1) -> str:
        return ";".join(self.id(type_, i) for i in self.pick(type_, k))

    def maybe(self, p: float, value: Callable[[], str]) -> str:
        """``value()`` with probability ``p``, else an empty cell (facts are often unknown)."""
        return value() if self.rng.random() < p else ""

    def concept(self, scheme: str) -> str:
        return self.rng.choice(self.schemes[scheme])

    def date(self) -> str:
        year = self.rng.randint(2010, 2025)
        form = self.rng.random()
        if form < 0.2:
            return str(year)
        if form < 0.4:
            return f"{year}-{self.rng.randint(1, 12):02d}"
        return f"{year}-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"

    def source(self, type_: str, i: int) -> str:
        """One or two URLs under example.invalid; now and then a sources.csv entry instead."""
        if self.rng.random() < 0.1:
            return f"synthetic-source-{self.rng.randint(1, N_SOURCES)}"
        urls = [f"{SITE}/source/{type_}/{self.num(i)}"]
        if self.rng.random() < 0.3:
            urls.append(f"{SITE}/source/press/{self.rng.randint(1, 500):04d}")
        return ";".join(urls)

    def actors(self, k: int) -> str:
        """Ids of labs or institutions (``carried_by``, ``partners``, ``organizers``)."""
        out = []
        for _ in range(k):
            type_ = "lab" if self.rng.random() < 0.7 else "institution"
            out.append(self.id(type_, self.pick(type_)[0]))
        return ";".join(sorted(set(out)))

    def institutions(self) -> list[Row]:
        rows = []
        for i in range(self.n["institution"]):
            rows.append(
                {
                    "id": self.id("institution", i),
                    "name": f"Synthetic institution {self.num(i)}",
                    "alt_names": self.maybe(0.3, lambda i=i: f"SI{self.num(i)}"),
                    "kind": self.maybe(0.9, lambda: self.concept("administration-kind")),
                    "region": self.maybe(0.8, lambda: self.rng.choice(self.regions)),
                    # A parent always has a smaller number: no cycles, never itself.
                    "parent": self.maybe(
                        0.2 if i else 0.0,
                        lambda i=i: self.id("institution", self.pick("institution", below=i)[0]),
                    ),
                    "website": self.maybe(0.5, lambda i=i: f"{SITE}/institution/{self.num(i)}"),
                    "siren": "",  # a random valid SIREN could be a real company's: never invent one
                    "wikidata": "",
                    "source": self.source("institution", i),
                }
            )
        return rows

    def labs(self) -> list[Row]:
        rows = []
        for i in range(self.n["lab"]):
            rows.append(
                {
                    "id": self.id("lab", i),
                    "name": f"Synthetic lab {self.num(i)}",
                    "alt_names": self.maybe(0.3, lambda i=i: f"SL{self.num(i)};Lab {self.num(i)}"),
                    "hosts": self.ids("institution", self.rng.choice((1, 1, 1, 2))),
                    "kind": self.maybe(0.9, lambda: self.concept("administration-kind")),
                    "region": self.maybe(0.9, lambda: self.rng.choice(self.regions)),
                    "cities": self.maybe(
                        0.5,
                        lambda: ";".join(
                            f"Synthetic town {t:03d}"
                            for t in sorted(self.rng.sample(range(1000), self.rng.randint(1, 2)))
                        ),
                    ),
                    "founded": self.maybe(0.7, lambda: str(self.rng.randint(1990, 2025))),
                    "website": self.maybe(0.6, lambda i=i: f"{SITE}/lab/{self.num(i)}"),
                    "skills": self.maybe(
                        0.6,
                        lambda: ";".join(
                            self.rng.sample(self.schemes["skill"], self.rng.randint(1, 3))
                        ),
                    ),
                    "description": self.maybe(
                        0.8,
                        lambda i=i: (
                            f"Laboratoire fictif numéro {self.num(i)}, généré pour les mesures de "
                            "performance ; il n'existe pas."
                        ),
                    ),
                    "source": self.source("lab", i),
                }
            )
        return rows

    def projects(self) -> list[Row]:
        rows = []
        for i in range(self.n["project"]):
            carried = self.actors(self.rng.choice((1, 1, 2)))
            partners = self.maybe(0.3, lambda: self.actors(self.rng.randint(1, 3)))
            partners = ";".join(p for p in partners.split(";") if p and p not in carried.split(";"))
            rows.append(
                {
                    "id": self.id("project", i),
                    "name": f"Synthetic project {self.num(i)}",
                    "kind": self.maybe(0.9, lambda: self.concept("project-kind")),
                    "carried_by": carried,
                    "partners": partners,
                    "started": self.maybe(0.6, self.date),
                    "website": self.maybe(0.3, lambda i=i: f"{SITE}/project/{self.num(i)}"),
                    "description": self.maybe(0.7, lambda i=i: f"Projet fictif {self.num(i)}."),
                    "source": self.source("project", i),
                }
            )
        return rows

    def events(self) -> list[Row]:
        rows = []
        series: list[str] = []
        editions: dict[str, int] = {}
        for i in range(self.n["event"]):
            id_ = self.id("event", i)
            kind = "series" if i % 10 == 0 else self.concept("event-kind")
            if kind == "series":
                series.append(id_)
            part_of = edition = ""
            if kind == "edition" and series:
                part_of = self.rng.choice(series)
                editions[part_of] = editions.get(part_of, 0) + 1
                edition = str(editions[part_of])
            start = self.maybe(
                0.8, lambda: f"{self.rng.randint(2014, 2025)}-{self.rng.randint(1, 12):02d}-01"
            )
            rows.append(
                {
                    "id": id_,
                    "name": f"Synthetic event {self.num(i)}",
                    "kind": kind,
                    "part_of": part_of,
                    "edition": edition,
                    "start": start,
                    "end": start[:8] + "28" if start and self.rng.random() < 0.5 else "",
                    "organizers": self.maybe(0.8, lambda: self.actors(self.rng.randint(1, 2))),
                    "about": self.maybe(0.4, lambda: self.ids(self.rng.choice(("lab", "project")))),
                    "region": self.maybe(0.5, lambda: self.rng.choice(self.regions)),
                    "location": self.maybe(
                        0.5, lambda: f"Synthetic town {self.rng.randint(0, 999):03d}"
                    ),
                    "theme": self.maybe(
                        0.3,
                        lambda: self.rng.choice(("innovation ouverte", "coproduction", "sobriété")),
                    ),
                    "website": self.maybe(0.3, lambda i=i: f"{SITE}/event/{self.num(i)}"),
                    "description": self.maybe(0.5, lambda i=i: f"Événement fictif {self.num(i)}."),
                    "source": self.source("event", i),
                }
            )
        return rows

    def figures(self) -> list[Row]:
        rows = []
        for i in range(self.n["figure"]):
            about_type = self.rng.choice(("lab", "institution", "project", "event"))
            if not self.n[about_type]:
                about_type = "lab"
            value = self.rng.randint(1, 5000)
            rows.append(
                {
                    "id": self.id("figure", i),
                    "about": self.id(about_type, self.pick(about_type)[0]),
                    "measure": self.concept("measure"),
                    "value": str(value) if i % 4 else f"{value}.5",
                    "qualifier": self.maybe(0.7, lambda: self.concept("qualifier")),
                    "date": self.date(),
                    "label": self.maybe(0.5, lambda v=value: f"environ {v} (chiffre fictif)"),
                    "source": self.source("figure", i),
                }
            )
        return rows

    def sources(self) -> list[Row]:
        return [
            {
                "id": f"synthetic-source-{k}",
                "title": f"Synthetic source document {k}",
                "publisher": self.id("institution", self.pick("institution")[0]),
                "date": self.date(),
                "url": f"{SITE}/document/{k}" if k % 2 else "",
                "note": "Synthetic document for benchmarks; it does not exist.",
            }
            for k in range(1, N_SOURCES + 1)
        ]


def generate(out: Path, labs: int, *, seed: int = 0, ontology: Path = ONTOLOGY) -> dict[str, int]:
    """Write the six record files for ``labs`` labs into ``out``; returns the count per type.

    The controlled values (kinds, skills, measures…) are read from the ontology and the regions
    from ``labgraph.regions``, so the records stay valid when those lists change.
    """
    schemes = {name: list(concepts) for name, concepts in load_schemes(ontology).items()}
    gen = _Generator(labs, seed, schemes)
    # Fixed order: every draw happens in the same sequence for the same (labs, seed).
    produced = {
        "institution": gen.institutions(),
        "lab": gen.labs(),
        "project": gen.projects(),
        "event": gen.events(),
        "figure": gen.figures(),
        "source": gen.sources(),
    }
    out.mkdir(parents=True, exist_ok=True)
    for type_, rows in produced.items():
        rtype = SCHEMA[type_]
        with open(out / rtype.file, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(
                fh, fieldnames=[c.name for c in rtype.columns], lineterminator="\n"
            )
            writer.writeheader()
            writer.writerows(rows)
    return {type_: len(rows) for type_, rows in produced.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labs", type=int, required=True, help="number of labs")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the CSVs into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--ontology", type=Path, default=ONTOLOGY, help="ontology with the controlled lists"
    )
    args = parser.parse_args(argv)
    made = generate(args.out, args.labs, seed=args.seed, ontology=args.ontology)
    print(", ".join(f"{n} {t}" for t, n in made.items()), f"-> {args.out}")
    print(f"build with: labgraph build --data {args.out} --base {BASE} --releases DIR")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
