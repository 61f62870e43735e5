"""DCAT-AP catalogue, VoID description and SPARQL service description of a release.

Everything here is generated from the release itself (its dumps, their sizes and digests, and the
graph), never written by hand, so what harvesters read cannot drift from what they download. The
functions are pure: no network, no clock (the build time comes in), and the same inputs give
byte-identical files.

Choices made for the harvesters that read the catalogue (data.gouv.fr's udata, data.europa.eu):

- every IRI is absolute and every download URL is the stable, release-independent
  ``{base}/dumps/{file}``, so a harvester that refetches finds the latest dump at the same URL;
- every resource the catalogue refers to carries an explicit class, because the DCAT-AP 3.0.1
  shapes check the class of referenced resources (no inference);
- controlled values come from the EU vocabularies (with their ``skos:inScheme``), the licence is
  named by the IRI udata maps to its ``lov2`` licence, media types use the IANA namespace udata
  strips (``https://www.iana.org/assignments/media-types/``);
- the one blank node is the ``dct:PeriodOfTime``: udata fetches a period named by IRI over the
  network instead of reading it from the catalogue, while it reads a blank one in place.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyoxigraph as ox

from . import formats
from .iris import INSEE_REGION, Minter
from .release import DUMP_NAMES
from .vocab import LG, PREFIXES

DCAT = "http://www.w3.org/ns/dcat#"
DCT = PREFIXES["dct"]
FOAF = PREFIXES["foaf"]
RDF = PREFIXES["rdf"]
RDFS = PREFIXES["rdfs"]
SKOS = PREFIXES["skos"]
XSD = PREFIXES["xsd"]
ADMS = PREFIXES["adms"]
DCATAP = "http://data.europa.eu/r5r/"
SPDX = "http://spdx.org/rdf/terms#"
VCARD = "http://www.w3.org/2006/vcard/ns#"
VOID = "http://rdfs.org/ns/void#"
SD = "http://www.w3.org/ns/sparql-service-description#"
W3C_FORMATS = "http://www.w3.org/ns/formats/"
EU = "http://publications.europa.eu/resource/authority/"

#: Prefixes written in the Turtle and RDF/XML of the catalogue, VoID and service description.
OUTPUT_PREFIXES: dict[str, str] = dict(
    sorted(
        {
            "adms": ADMS,
            "dcat": DCAT,
            "dcatap": DCATAP,
            "dct": DCT,
            "foaf": FOAF,
            "rdf": RDF,
            "rdfs": RDFS,
            "sd": SD,
            "skos": SKOS,
            "spdx": SPDX,
            "vcard": VCARD,
            "void": VOID,
            "xsd": XSD,
        }.items()
    )
)

#: Licence Ouverte / Open Licence 2.0, by the IRI data.gouv.fr lists as the ``url`` of its
#: ``lov2`` licence (udata matches it exactly, case-insensitively; the form with a trailing slash
#: only matches through a fuzzier fallback).
LICENCE = "https://www.etalab.gouv.fr/licence-ouverte-open-licence"
LICENCE_TITLE = "Licence Ouverte / Open Licence version 2.0"
LICENCE_TYPE = "http://purl.org/adms/licencetype/Attribution"
LICENCE_TYPES = "http://purl.org/adms/licencetype/1.0"
PUBLISHER_TYPE = "http://purl.org/adms/publishertype/NationalAuthority"
PUBLISHER_TYPES = "http://purl.org/adms/publishertype/1.0"
PUBLISHER_NAME = "Direction interministérielle de la transformation publique"
#: The publisher is also a record of the graph: its IRI there is the one the catalogue uses.
PUBLISHER_RECORD = ("institution", "ditp")
PUBLISHER_SITE = "https://www.modernisation.gouv.fr"
THEMES = EU + "data-theme"
THEME = THEMES + "/GOVE"
FREQUENCY = EU + "frequency/IRREG"
FRANCE = EU + "country/FRA"
FRENCH = EU + "language/FRA"
ENGLISH = EU + "language/ENG"
PUBLIC = EU + "access-right/PUBLIC"
STABLE = EU + "planned-availability/STABLE"
GZIP = formats.IANA + "application/gzip"
SHA256 = SPDX + "checksumAlgorithm_sha256"
SPARQL_PROTOCOL = "https://www.w3.org/TR/sparql11-protocol/"
SIMPLE_ENTAILMENT = "http://www.w3.org/ns/entailment/Simple"

#: W3C format IRI (http://www.w3.org/ns/formats/) of each format the endpoint answers in.
W3C_FORMAT_NAMES: dict[str, str] = {
    "turtle": "Turtle",
    "jsonld": "JSON-LD",
    "rdfxml": "RDF_XML",
    "ntriples": "N-Triples",
    "nquads": "N-Quads",
    "trig": "TriG",
    "json": "SPARQL_Results_JSON",
    "xml": "SPARQL_Results_XML",
    "csv": "SPARQL_Results_CSV",
    "tsv": "SPARQL_Results_TSV",
}

WHOLE = "labgraph"  # dump file stem of the whole graph


@dataclass(frozen=True)
class Text:
    """What a dataset is called and says, in French and English, with its French keywords."""

    title_fr: str
    title_en: str
    description_fr: str
    description_en: str
    keywords: tuple[str, ...] = ()


CATALOG_TEXT = Text(
    "Catalogue de labgraph : le réseau des laboratoires d'innovation publique en données liées",
    "labgraph catalogue: France's network of public innovation labs as linked data",
    "Données ouvertes en RDF sur les laboratoires d'innovation publique en France : laboratoires, "
    "institutions d'accueil, projets, événements du réseau et chiffres datés, chaque fait "
    "rattaché à sa source. Ce catalogue est produit à chaque publication, à partir d'elle.",
    "Open RDF data on France's public innovation labs: labs, host institutions, projects, "
    "network events and dated figures, each fact tied to its source. This catalogue is "
    "generated from each release, as part of it.",
)
KEYWORDS = (
    "innovation publique",
    "laboratoire d'innovation",
    "transformation publique",
    "administration",
    "données liées",
)
WHOLE_TEXT = Text(
    "Réseau des laboratoires d'innovation publique (graphe complet)",
    "Network of public innovation labs (whole graph)",
    "Le graphe complet : laboratoires d'innovation publique, institutions d'accueil, projets, "
    "événements et chiffres datés, chaque fait rattaché à sa source (prov:wasDerivedFrom), les "
    "régions désignées par les URI de l'INSEE.",
    "The whole graph: public innovation labs, host institutions, projects, events and dated "
    "figures, each fact tied to its source (prov:wasDerivedFrom), regions named by INSEE URIs.",
    KEYWORDS,
)
SERVICE_TEXT = Text(
    "Point d'accès SPARQL de labgraph",
    "labgraph SPARQL endpoint",
    "Interroger le graphe complet en SPARQL 1.1 (lecture seule), résultats dans tous les formats "
    "normalisés.",
    "Query the whole graph with SPARQL 1.1 (read-only), results in every standard format.",
    (*KEYWORDS, "SPARQL"),
)
#: One dataset per record type, named after its dump file stem.
TYPE_TEXT: dict[str, Text] = {
    "lab": Text(
        "Laboratoires d'innovation publique",
        "Public innovation labs",
        "Les laboratoires du réseau : nom, institution d'accueil, région, année de création, site "
        "web et compétences.",
        "The labs of the network: name, host institution, region, founding year, website and "
        "skills.",
        (*KEYWORDS, "laboratoires"),
    ),
    "institution": Text(
        "Institutions d'accueil des laboratoires",
        "Host institutions of the labs",
        "Les administrations qui accueillent ou portent les laboratoires, avec leur rattachement "
        "et leur région.",
        "The administrations that host or carry the labs, with their parent body and region.",
        (*KEYWORDS, "institutions"),
    ),
    "project": Text(
        "Projets et programmes des laboratoires",
        "Projects and programmes of the labs",
        "Les projets et programmes portés par les laboratoires, avec leurs partenaires.",
        "The projects and programmes carried by the labs, with their partners.",
        (*KEYWORDS, "projets"),
    ),
    "event": Text(
        "Événements de l'innovation publique",
        "Public innovation events",
        "Les événements du réseau (séries et éditions) : dates, organisateurs, lieux et thèmes.",
        "The events of the network (series and editions): dates, organisers, places and themes.",
        (*KEYWORDS, "événements"),
    ),
    "figure": Text(
        "Chiffres datés sur le réseau",
        "Dated figures about the network",
        "Des chiffres qui changent avec le temps (nombre de laboratoires…), chacun daté, qualifié "
        "(exact, environ, au moins) et rattaché à sa source.",
        "Figures that change over time (number of labs…), each dated, qualified (exact, about, "
        "at least) and tied to its source.",
        (*KEYWORDS, "chiffres"),
    ),
    "source": Text(
        "Sources citées",
        "Cited sources",
        "Les documents cités comme sources qui ne sont pas de simples pages web (communiqués de "
        "presse…).",
        "The documents cited as sources that are not plain web pages (press releases…).",
        (*KEYWORDS, "sources"),
    ),
}

_DATE_TYPES = frozenset(XSD + t for t in ("date", "dateTime", "gYear", "gYearMonth"))
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


# ---------------------------------------------------------------------------------------------
# What the graph says about itself


@dataclass
class Part:
    """Counts over a set of triples (the whole graph, or one record type's subjects)."""

    triples: int = 0
    subjects: set[str] = field(default_factory=set)
    start: dt.date | None = None
    end: dt.date | None = None

    def add_period(self, start: dt.date, end: dt.date) -> None:
        self.start = start if self.start is None else min(self.start, start)
        self.end = end if self.end is None else max(self.end, end)


@dataclass
class GraphStats:
    """VoID statistics and temporal extent of a release graph, computed once."""

    whole: Part
    by_type: dict[str, Part]
    entities: int
    classes: set[str]
    properties: set[str]
    distinct_objects: int
    region_links: int


def graph_stats(graph: bytes | ox.Store, base: str) -> GraphStats:
    """VoID counts and date extents, by SPARQL aggregates over the graph in pyoxigraph.

    ``graph`` is the whole graph in N-Triples (loaded into a store in memory) or a store holding
    it (a build passes its store on disk). A record type's part is the triples about its subjects
    (``{base}/id/{type}/…``).
    """
    if isinstance(graph, ox.Store):
        store = graph
    else:
        store = ox.Store()
        store.bulk_load(graph, format=ox.RdfFormat.N_TRIPLES)
    id_space = f"{base}/id/"
    whole = Part()
    by_type = {type_: Part() for type_ in TYPE_TEXT}

    def rows(query: str) -> Any:
        return store.query(query)

    whole.triples = len(store)

    def part_of(name: str) -> Part | None:
        """The part of a subject ``{base}/id/{type}/…`` (in Python: string functions over every
        triple are slow in SPARQL on a store on disk, and there are far fewer subjects)."""
        if not name.startswith(id_space):
            return None
        type_, slash, _ = name[len(id_space) :].partition("/")
        return by_type.get(type_) if slash else None

    parts: dict[str, Part | None] = {}
    for row in rows("SELECT ?s (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?s"):
        subject = row["s"]
        name = subject.value if isinstance(subject, ox.NamedNode) else str(subject)
        whole.subjects.add(name)
        part = parts[name] = part_of(name)
        if part is not None:
            part.subjects.add(name)
            part.triples += int(row["n"].value)
    entities = sum(len(part.subjects) for part in by_type.values())
    entities += sum(
        1
        for s in whole.subjects
        if s.startswith(id_space) and s[len(id_space) :].split("/", 1)[0] not in by_type
    )
    classes = {
        row["c"].value
        for row in rows(f"SELECT DISTINCT ?c WHERE {{ ?s <{RDF}type> ?c FILTER isIRI(?c) }}")
    }
    properties = {row["p"].value for row in rows("SELECT DISTINCT ?p WHERE { ?s ?p ?o }")}
    distinct_objects = int(
        next(iter(rows("SELECT (COUNT(DISTINCT ?o) AS ?n) WHERE { ?s ?p ?o }")))["n"].value
    )
    region_links = int(
        next(
            iter(
                rows(
                    f"SELECT (COUNT(*) AS ?n) WHERE {{ ?s <{DCT}spatial> ?o "
                    f'FILTER (isIRI(?o) && STRSTARTS(STR(?o), "{INSEE_REGION}")) }}'
                )
            )
        )["n"].value
    )
    dates = ", ".join(f"<{d}>" for d in sorted(_DATE_TYPES))
    periods: dict[str, tuple[dt.date, dt.date] | None] = {}
    for row in rows(
        f"SELECT DISTINCT ?s ?o WHERE {{ ?s ?p ?o "
        f"FILTER (isLiteral(?o) && datatype(?o) IN ({dates})) }}"
    ):
        lexical = row["o"].value
        if lexical not in periods:
            periods[lexical] = _period(lexical)
        period = periods[lexical]
        if period is None:
            continue
        whole.add_period(*period)
        subject = row["s"]
        part = parts.get(subject.value if isinstance(subject, ox.NamedNode) else str(subject))
        if part is not None:
            part.add_period(*period)
    return GraphStats(whole, by_type, entities, classes, properties, distinct_objects, region_links)


def graph_stats_nt(path: Path, base: str) -> GraphStats:
    """The :func:`graph_stats` of an N-Triples file written by labgraph, in one pass in Python.

    For graphs too large for a store in memory: the same aggregates over a store on disk cost
    ~15× more (RocksDB lookups of every term). The file must hold one triple per line, each
    subject's lines together and no duplicate line (a :class:`~labgraph.mapping.Mapped` graph);
    memory grows with the number of distinct objects (a set of their N-Triples forms).
    """
    id_space = f"{base}/id/"
    whole = Part()
    by_type = {type_: Part() for type_ in TYPE_TEXT}
    rdf_type, spatial = f"<{RDF}type>", f"<{DCT}spatial>"
    region_prefix = f"<{INSEE_REGION}"
    date_suffixes = tuple(f'"^^<{d}>' for d in _DATE_TYPES)
    classes: set[str] = set()
    properties: set[str] = set()
    objects: set[str] = set()
    periods: dict[str, tuple[dt.date, dt.date] | None] = {}
    region_links = 0
    last_subject = None
    part: Part | None = None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            subject, predicate, obj = line[:-3].split(" ", 2)  # "<s> <p> o .\n"
            whole.triples += 1
            if subject != last_subject:
                last_subject = subject
                name = subject[1:-1] if subject[0] == "<" else subject
                whole.subjects.add(name)
                part = None
                if name.startswith(id_space):
                    type_, slash, _ = name[len(id_space) :].partition("/")
                    part = by_type.get(type_) if slash else None
                if part is not None:
                    part.subjects.add(name)
            if part is not None:
                part.triples += 1
            properties.add(predicate)
            objects.add(obj)
            if obj[0] == "<":
                if predicate == rdf_type:
                    classes.add(obj[1:-1])
                elif predicate == spatial and obj.startswith(region_prefix):
                    region_links += 1
            elif obj[-1] == ">" and obj.endswith(date_suffixes):
                lexical = obj[1 : obj.rindex('"^^<')]
                if lexical not in periods:
                    periods[lexical] = _period(lexical)
                period = periods[lexical]
                if period is not None:
                    whole.add_period(*period)
                    if part is not None:
                        part.add_period(*period)
    entities = sum(len(p.subjects) for p in by_type.values())
    entities += sum(
        1
        for s in whole.subjects
        if s.startswith(id_space) and s[len(id_space) :].split("/", 1)[0] not in by_type
    )
    return GraphStats(
        whole,
        by_type,
        entities,
        classes,
        {p[1:-1] for p in properties},
        len(objects),
        region_links,
    )


def _period(lexical: str) -> tuple[dt.date, dt.date] | None:
    """First and last day a date, month or year covers ("2014" → 2014-01-01 … 2014-12-31)."""
    match = _DATE.match(lexical)
    if match is None:
        return None
    year, month, day = (int(g) if g else None for g in match.groups())
    assert year is not None
    try:
        start = dt.date(year, month or 1, day or 1)
        last_month = month or 12
        end = dt.date(year, last_month, day or calendar.monthrange(year, last_month)[1])
    except ValueError:  # not a real date: it says nothing about the extent
        return None
    return start, end


def vocabulary(iri: str) -> str:
    """Namespace of a term: up to its last ``#`` or ``/``."""
    cut = max(iri.rfind("#"), iri.rfind("/"))
    return iri[: cut + 1]


# ---------------------------------------------------------------------------------------------
# Building triples


class _Triples:
    """A set of triples with short helpers; IRIs are given in full or as known CURIEs."""

    _NS: ClassVar[dict[str, str]] = {**PREFIXES, **OUTPUT_PREFIXES}

    def __init__(self) -> None:
        self.triples: set[ox.Triple] = set()

    @classmethod
    def iri(cls, name: str) -> ox.NamedNode:
        prefix, sep, local = name.partition(":")
        if sep and prefix in cls._NS and not local.startswith("//"):
            return ox.NamedNode(cls._NS[prefix] + local)
        return ox.NamedNode(name)

    def add(
        self, subject: str | ox.BlankNode, predicate: str, *objects: str | ox.Literal | ox.BlankNode
    ) -> None:
        """Add ``subject predicate object`` for each object (a str object is an IRI)."""
        s = self.iri(subject) if isinstance(subject, str) else subject
        for obj in objects:
            o = self.iri(obj) if isinstance(obj, str) else obj
            self.triples.add(ox.Triple(s, self.iri(predicate), o))

    def text(self, subject: str, predicate: str, fr: str, en: str | None = None) -> None:
        self.add(subject, predicate, ox.Literal(fr, language="fr"))
        if en is not None:
            self.add(subject, predicate, ox.Literal(en, language="en"))

    def sorted(self) -> list[ox.Triple]:
        return sorted(self.triples, key=str)


def _typed(value: str | int, datatype: str) -> ox.Literal:
    return ox.Literal(str(value), datatype=_Triples.iri(datatype))


def _datetime(moment: dt.datetime) -> ox.Literal:
    if moment.tzinfo is None:
        raise ValueError("the build time must be timezone-aware")
    return _typed(moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "xsd:dateTime")


@dataclass(frozen=True)
class Dump:
    """One dump file of the release, as the manifest lists it."""

    name: str
    stem: str
    format: formats.Format
    gzipped: bool
    bytes: int
    sha256: str


def dumps(files: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Dump]]:
    """Dump files by stem ("labs" → labs.nt, labs.nt.gz, …), in file name order."""
    by_extension = {fmt.extension: fmt for fmt in formats.DUMP_FORMATS}
    found: dict[str, list[Dump]] = {}
    for name in sorted(files):
        stem, _, rest = name.partition(".")
        gzipped = rest.endswith(".gz")
        fmt = by_extension.get(rest.removesuffix(".gz"))
        if fmt is None:
            continue
        entry = files[name]
        found.setdefault(stem, []).append(
            Dump(name, stem, fmt, gzipped, int(entry["bytes"]), str(entry["sha256"]))
        )
    return found


def _stems() -> dict[str, str]:
    return dict(DUMP_NAMES)


@dataclass(frozen=True)
class _Release:
    """The inputs every description shares."""

    release_id: str
    built: dt.datetime
    minter: Minter
    counts: Mapping[str, int]
    dumps: dict[str, list[Dump]]
    stats: GraphStats

    @property
    def base(self) -> str:
        return self.minter.base

    def dataset(self, type_: str | None = None) -> str:
        return self.minter.dataset(_stems()[type_] if type_ else "")

    def types(self) -> list[str]:
        """Record types with dumps in this release, in the order of TYPE_TEXT."""
        stems = _stems()
        return [t for t in TYPE_TEXT if stems.get(t) in self.dumps]

    def download(self, dump: Dump) -> str:
        return self.minter.path("dumps", dump.name)

    @property
    def publisher(self) -> str:
        return self.minter.thing(*PUBLISHER_RECORD)

    @property
    def endpoint(self) -> str:
        return self.minter.path("sparql")

    @property
    def service(self) -> str:
        return self.endpoint + "#service"

    @property
    def void_document(self) -> str:
        return self.minter.path(".well-known", "void")


def _release(
    release_id: str,
    built: dt.datetime,
    base: str,
    counts: Mapping[str, int],
    files: Mapping[str, Mapping[str, Any]],
    graph_nt: bytes | ox.Store | None,
    stats: GraphStats | None = None,
) -> _Release:
    found = dumps(files)
    if WHOLE not in found:
        raise ValueError(f"no {WHOLE}.* dump among the release files")
    if stats is None:
        if graph_nt is None:
            raise TypeError("no graph to compute the statistics of")
        stats = graph_stats(graph_nt, base)
    if "triples" in counts and counts["triples"] != stats.whole.triples:
        raise ValueError(
            f"the graph has {stats.whole.triples} triples, the counts say "
            f"{counts['triples']}: they are not of the same release"
        )
    return _Release(release_id, built, Minter(base), counts, found, stats)


def _plural(n: int, fr: str, en: str) -> tuple[str, str]:
    return f"{n} {fr}{'s' if n > 1 else ''}", f"{n} {en}{'s' if n != 1 else ''}"


# ---------------------------------------------------------------------------------------------
# DCAT-AP


def catalog_triples(
    *,
    release_id: str,
    built: dt.datetime,
    base: str,
    counts: Mapping[str, int],
    files: Mapping[str, Mapping[str, Any]],
    graph_nt: bytes,
    checksums: bool = False,
) -> list[ox.Triple]:
    """The DCAT-AP 3 catalogue: catalogue, datasets, distributions and the SPARQL data service.

    With ``checksums``, each distribution also carries its ``spdx:checksum`` (see
    :func:`release_files`).
    """
    rel = _release(release_id, built, base, counts, files, graph_nt)
    return _catalog(rel, checksums).sorted()


def _catalog(rel: _Release, checksums: bool) -> _Triples:
    g = _Triples()
    catalog = rel.minter.path("catalog")
    home = rel.base + "/"
    when = _datetime(rel.built)
    g.add(catalog, "rdf:type", "dcat:Catalog")
    g.text(catalog, "dct:title", CATALOG_TEXT.title_fr, CATALOG_TEXT.title_en)
    g.text(catalog, "dct:description", CATALOG_TEXT.description_fr, CATALOG_TEXT.description_en)
    g.add(catalog, "dct:publisher", rel.publisher)
    g.add(catalog, "dct:license", LICENCE)
    g.add(catalog, "foaf:homepage", home)
    g.add(home, "rdf:type", "foaf:Document")
    g.add(catalog, "dct:issued", when)
    g.add(catalog, "dct:modified", when)
    g.add(catalog, "dct:language", FRENCH, ENGLISH)
    g.add(catalog, "dct:spatial", FRANCE)
    g.add(catalog, "dcat:themeTaxonomy", THEMES)
    g.add(catalog, "dcat:service", rel.service)
    _shared(g, rel, checksums)

    whole = rel.dataset()
    g.add(catalog, "dcat:dataset", whole)
    n_records = sum(n for t, n in rel.counts.items() if t in TYPE_TEXT)
    triples_fr, triples_en = _plural(rel.stats.whole.triples, "triplet", "triple")
    records_fr, records_en = _plural(n_records, "fiche", "record")
    _dataset(
        g,
        rel,
        whole,
        WHOLE_TEXT,
        rel.dumps[WHOLE],
        rel.stats.whole,
        (
            f"Cette version compte {triples_fr} et {records_fr}.",
            f"This release has {triples_en} and {records_en}.",
        ),
        checksums,
    )
    for type_ in rel.types():
        iri = rel.dataset(type_)
        g.add(catalog, "dcat:dataset", iri)
        g.add(iri, "dct:isPartOf", whole)  # not dct:hasPart on the whole: udata reads it as files
        fr, en = _plural(
            rel.counts.get(type_, len(rel.stats.by_type[type_].subjects)), "fiche", "record"
        )
        _dataset(
            g,
            rel,
            iri,
            TYPE_TEXT[type_],
            rel.dumps[_stems()[type_]],
            rel.stats.by_type[type_],
            (f"Cette version en compte {fr}.", f"This release has {en}."),
            checksums,
        )
    _data_service(g, rel, whole)
    return g


def _shared(g: _Triples, rel: _Release, checksums: bool) -> None:
    """The agents, licence and controlled values the catalogue refers to, each with its class."""
    agent = rel.publisher
    g.add(agent, "rdf:type", "foaf:Agent", "foaf:Organization")
    g.add(agent, "foaf:name", ox.Literal(PUBLISHER_NAME, language="fr"))
    g.add(agent, "dct:type", PUBLISHER_TYPE)
    _concept(g, PUBLISHER_TYPE, PUBLISHER_TYPES, ("National authority", "en"))
    g.add(PUBLISHER_TYPES, "rdf:type", "skos:ConceptScheme")
    g.add(PUBLISHER_TYPES, "dct:title", ox.Literal("Publisher type", language="en"))

    g.add(LICENCE, "rdf:type", "dct:LicenseDocument")
    g.add(LICENCE, "dct:title", ox.Literal(LICENCE_TITLE, language="fr"))
    g.add(LICENCE, "dct:type", LICENCE_TYPE)
    _concept(g, LICENCE_TYPE, LICENCE_TYPES, ("Attribution", "en"))
    g.add(LICENCE_TYPES, "rdf:type", "skos:ConceptScheme")
    g.add(LICENCE_TYPES, "dct:title", ox.Literal("Licence type", language="en"))

    contact = rel.minter.path("catalog") + "#contact"
    g.add(contact, "rdf:type", "vcard:Organization", "vcard:Kind")
    g.add(contact, "vcard:fn", ox.Literal(PUBLISHER_NAME, language="fr"))
    g.add(contact, "vcard:hasURL", PUBLISHER_SITE)

    _concept(
        g,
        THEME,
        THEMES,
        ("Gouvernement et secteur public", "fr"),
        ("Government and public sector", "en"),
    )
    g.add(THEMES, "rdf:type", "skos:ConceptScheme")
    g.add(THEMES, "dct:title", ox.Literal("Data theme", language="en"))
    _concept(g, STABLE, EU + "planned-availability", ("stable", "en"))
    for iri, class_, scheme in (
        (FRANCE, "dct:Location", "country"),
        (FRENCH, "dct:LinguisticSystem", "language"),
        (ENGLISH, "dct:LinguisticSystem", "language"),
        (FREQUENCY, "dct:Frequency", "frequency"),
        (PUBLIC, "dct:RightsStatement", "access-right"),
    ):
        g.add(iri, "rdf:type", class_)
        g.add(iri, "skos:inScheme", EU + scheme)
    if checksums:
        g.add(SHA256, "rdf:type", "spdx:ChecksumAlgorithm")
    g.add(GZIP, "rdf:type", "dct:MediaType")
    for iri, title in (
        (LG, "Ontologie labgraph"),
        (rel.minter.path("shapes"), "Formes SHACL des données labgraph"),
    ):
        g.add(iri, "rdf:type", "dct:Standard")
        g.add(iri, "dct:title", ox.Literal(title, language="fr"))


def _concept(g: _Triples, iri: str, scheme: str, *labels: tuple[str, str]) -> None:
    g.add(iri, "rdf:type", "skos:Concept")
    g.add(iri, "skos:inScheme", scheme)
    for label, lang in labels:
        g.add(iri, "skos:prefLabel", ox.Literal(label, language=lang))


def _described(g: _Triples, rel: _Release, iri: str, text: Text) -> None:
    """What a dataset and the data service say alike: who, what, under which terms."""
    g.text(iri, "dct:title", text.title_fr, text.title_en)
    g.add(iri, "dct:publisher", rel.publisher)
    g.add(iri, "dcat:contactPoint", rel.minter.path("catalog") + "#contact")
    g.add(iri, "dct:license", LICENCE)
    g.add(iri, "dct:accessRights", PUBLIC)
    g.add(iri, "dcat:theme", THEME)
    g.add(iri, "dcat:keyword", *(ox.Literal(k, language="fr") for k in text.keywords))


def _dataset(
    g: _Triples,
    rel: _Release,
    iri: str,
    text: Text,
    files: list[Dump],
    part: Part,
    size: tuple[str, str],
    checksums: bool,
) -> None:
    when = _datetime(rel.built)
    g.add(iri, "rdf:type", "dcat:Dataset")
    _described(g, rel, iri, text)
    g.text(
        iri,
        "dct:description",
        f"{text.description_fr} {size[0]}",
        f"{text.description_en} {size[1]}",
    )
    g.add(iri, "dct:identifier", ox.Literal(iri))
    g.add(iri, "dcat:version", ox.Literal(rel.release_id))
    g.add(iri, "dct:issued", when)
    g.add(iri, "dct:modified", when)
    g.add(iri, "dct:language", FRENCH)
    g.add(iri, "dct:spatial", FRANCE)
    g.add(iri, "dct:accrualPeriodicity", FREQUENCY)
    g.add(iri, "dct:conformsTo", LG, rel.minter.path("shapes"))
    if part.start is not None and part.end is not None:
        # Blank on purpose: udata fetches a period named by IRI instead of reading it here.
        period = ox.BlankNode("period" + (rel.minter.local_path(iri) or "").replace("/", "-"))
        g.add(iri, "dct:temporal", period)
        g.add(period, "rdf:type", "dct:PeriodOfTime")
        g.add(period, "dcat:startDate", _typed(part.start.isoformat(), "xsd:date"))
        g.add(period, "dcat:endDate", _typed(part.end.isoformat(), "xsd:date"))
    for dump in files:
        distribution = rel.download(dump) + "#distribution"
        g.add(iri, "dcat:distribution", distribution)
        _distribution(g, rel, distribution, text, dump, checksums)


def _distribution(
    g: _Triples, rel: _Release, iri: str, text: Text, dump: Dump, checksums: bool
) -> None:
    when = _datetime(rel.built)
    url = rel.download(dump)
    label = dump.format.label + (", compressé gzip" if dump.gzipped else "")
    label_en = dump.format.label + (", gzip-compressed" if dump.gzipped else "")
    g.add(iri, "rdf:type", "dcat:Distribution")
    g.text(iri, "dct:title", f"{text.title_fr} ({label})", f"{text.title_en} ({label_en})")
    # Without spdx:checksum, the digest is still in each download's Digest header (and ETag).
    digest_fr = (
        "taille et empreinte SHA-256 permettent"
        if checksums
        else "la taille, et l'empreinte SHA-256 envoyée dans l'en-tête Digest, permettent"
    )
    digest_en = (
        "size and SHA-256 digest let"
        if checksums
        else "size, and the SHA-256 digest sent in the Digest header, let"
    )
    g.text(
        iri,
        "dct:description",
        f"Fichier {dump.name} : {text.title_fr.lower()}, en {label}. Adresse stable qui sert "
        f"toujours la dernière publication ; {digest_fr} de vérifier le téléchargement.",
        f"File {dump.name}: {text.title_en.lower()}, in {label_en}. Stable address that always "
        f"serves the latest release; {digest_en} you check the download.",
    )
    g.add(iri, "dcat:downloadURL", url)
    g.add(iri, "dcat:accessURL", url)
    g.add(iri, "dcat:mediaType", dump.format.iana_iri)
    g.add(dump.format.iana_iri, "rdf:type", "dct:MediaType")
    if dump.format.eu_iri:
        g.add(iri, "dct:format", dump.format.eu_iri)
        g.add(dump.format.eu_iri, "rdf:type", "dct:MediaTypeOrExtent")
        g.add(dump.format.eu_iri, "skos:inScheme", EU + "file-type")
    if dump.gzipped:
        # One file compressed, not a package of several: dcat:compressFormat, no packageFormat.
        g.add(iri, "dcat:compressFormat", GZIP)
    g.add(iri, "dcat:byteSize", _typed(dump.bytes, "xsd:nonNegativeInteger"))
    if checksums:
        # xsd:hexBinary, as the DCAT-AP 3.0.1 shapes require; udata 17.18 refuses it (it reads the
        # literal as bytes into a string field), hence off by default (docs/harvesters.md).
        checksum = url + "#sha256"
        g.add(iri, "spdx:checksum", checksum)
        g.add(checksum, "rdf:type", "spdx:Checksum")
        g.add(checksum, "spdx:algorithm", SHA256)
        g.add(checksum, "spdx:checksumValue", _typed(dump.sha256, "xsd:hexBinary"))
    g.add(iri, "dct:license", LICENCE)
    g.add(iri, "dcatap:availability", STABLE)
    g.add(iri, "dct:issued", when)
    g.add(iri, "dct:modified", when)


def _data_service(g: _Triples, rel: _Release, whole: str) -> None:
    service = rel.service
    g.add(service, "rdf:type", "dcat:DataService")
    _described(g, rel, service, SERVICE_TEXT)
    g.text(service, "dct:description", SERVICE_TEXT.description_fr, SERVICE_TEXT.description_en)
    # As for datasets: udata skips a data service without one ("missing identifier").
    g.add(service, "dct:identifier", ox.Literal(service))
    g.add(service, "dcat:endpointURL", rel.endpoint)
    g.add(service, "dcat:endpointDescription", rel.endpoint)
    g.add(service, "dcat:servesDataset", whole)
    g.add(service, "dct:conformsTo", SPARQL_PROTOCOL)
    g.add(SPARQL_PROTOCOL, "rdf:type", "dct:Standard")
    g.add(SPARQL_PROTOCOL, "dct:title", ox.Literal("SPARQL 1.1 Protocol", language="en"))


# ---------------------------------------------------------------------------------------------
# VoID


def void_triples(
    *,
    release_id: str,
    built: dt.datetime,
    base: str,
    counts: Mapping[str, int],
    files: Mapping[str, Mapping[str, Any]],
    graph_nt: bytes,
) -> list[ox.Triple]:
    """VoID of the whole graph, its record-type subsets and its links to INSEE regions."""
    rel = _release(release_id, built, base, counts, files, graph_nt)
    return _void(rel).sorted()


def _void(rel: _Release) -> _Triples:
    g = _Triples()
    stats = rel.stats
    whole = rel.dataset()
    document = rel.void_document
    g.add(document, "rdf:type", "void:DatasetDescription")
    g.text(document, "dct:title", "Description VoID de labgraph", "VoID description of labgraph")
    g.add(document, "foaf:primaryTopic", whole)

    g.add(whole, "rdf:type", "void:Dataset")
    g.text(whole, "dct:title", WHOLE_TEXT.title_fr, WHOLE_TEXT.title_en)
    g.add(whole, "dct:publisher", rel.publisher)
    g.add(whole, "dct:license", LICENCE)
    g.add(whole, "dct:modified", _datetime(rel.built))
    g.add(whole, "rdfs:seeAlso", rel.minter.path("catalog"))
    g.add(whole, "void:sparqlEndpoint", rel.endpoint)
    g.add(whole, "void:uriSpace", ox.Literal(f"{rel.base}/id/"))
    g.add(whole, "void:triples", _typed(stats.whole.triples, "xsd:integer"))
    g.add(whole, "void:entities", _typed(stats.entities, "xsd:integer"))
    g.add(whole, "void:classes", _typed(len(stats.classes), "xsd:integer"))
    g.add(whole, "void:properties", _typed(len(stats.properties), "xsd:integer"))
    g.add(whole, "void:distinctSubjects", _typed(len(stats.whole.subjects), "xsd:integer"))
    g.add(whole, "void:distinctObjects", _typed(stats.distinct_objects, "xsd:integer"))
    g.add(
        whole, "void:vocabulary", *sorted({vocabulary(t) for t in stats.classes | stats.properties})
    )
    if rel.publisher in stats.whole.subjects:  # the DITP animates the network: its entry point
        g.add(whole, "void:rootResource", rel.publisher)
    _dumps(g, rel, whole, rel.dumps[WHOLE])
    for type_ in rel.types():
        subset = rel.dataset(type_)
        part = stats.by_type[type_]
        g.add(whole, "void:subset", subset)
        g.add(subset, "rdf:type", "void:Dataset")
        g.text(subset, "dct:title", TYPE_TEXT[type_].title_fr, TYPE_TEXT[type_].title_en)
        g.add(subset, "void:uriSpace", ox.Literal(rel.minter.thing(type_, "")))
        g.add(subset, "void:triples", _typed(part.triples, "xsd:integer"))
        g.add(subset, "void:entities", _typed(len(part.subjects), "xsd:integer"))
        g.add(subset, "void:distinctSubjects", _typed(len(part.subjects), "xsd:integer"))
        _dumps(g, rel, subset, rel.dumps[_stems()[type_]])

    linkset, insee = document + "#insee-regions", document + "#insee"
    g.add(whole, "void:subset", linkset)
    g.add(linkset, "rdf:type", "void:Linkset")
    g.text(linkset, "dct:title", "Liens vers les régions de l'INSEE", "Links to INSEE regions")
    g.add(linkset, "void:subjectsTarget", whole)
    g.add(linkset, "void:objectsTarget", insee)
    g.add(linkset, "void:target", whole, insee)
    g.add(linkset, "void:linkPredicate", "dct:spatial")
    g.add(linkset, "void:triples", _typed(stats.region_links, "xsd:integer"))
    g.add(insee, "rdf:type", "void:Dataset")
    g.text(
        insee,
        "dct:title",
        "Code officiel géographique de l'INSEE : régions",
        "INSEE official geographic code: regions",
    )
    g.add(insee, "void:uriSpace", ox.Literal(INSEE_REGION))
    g.add(insee, "foaf:homepage", "https://www.insee.fr/")
    return g


def _dumps(g: _Triples, rel: _Release, dataset: str, files: list[Dump]) -> None:
    for dump in files:
        g.add(dataset, "void:dataDump", rel.download(dump))
        if not dump.gzipped:
            g.add(dataset, "void:feature", W3C_FORMATS + W3C_FORMAT_NAMES[dump.format.name])


# ---------------------------------------------------------------------------------------------
# SPARQL 1.1 Service Description


def service_description_triples(
    *,
    release_id: str,
    built: dt.datetime,
    base: str,
    counts: Mapping[str, int],
    files: Mapping[str, Mapping[str, Any]],
    graph_nt: bytes,
) -> list[ox.Triple]:
    """The endpoint's SPARQL 1.1 Service Description (what GET /sparql without a query returns)."""
    rel = _release(release_id, built, base, counts, files, graph_nt)
    return _service_description(rel).sorted()


def _service_description(rel: _Release) -> _Triples:
    g = _Triples()
    service = rel.service
    dataset, graph = rel.endpoint + "#dataset", rel.endpoint + "#default-graph"
    g.add(service, "rdf:type", "sd:Service")
    g.text(service, "dct:title", SERVICE_TEXT.title_fr, SERVICE_TEXT.title_en)
    g.add(service, "sd:endpoint", rel.endpoint)
    g.add(service, "sd:supportedLanguage", "sd:SPARQL11Query")
    g.add(
        service,
        "sd:resultFormat",
        *(
            W3C_FORMATS + W3C_FORMAT_NAMES[fmt.name]
            for fmt in (*formats.RESULTS_FORMATS, *formats.GRAPH_FORMATS)
        ),
    )
    g.add(service, "sd:defaultEntailmentRegime", SIMPLE_ENTAILMENT)
    g.add(service, "sd:defaultDataset", dataset)
    g.add(dataset, "rdf:type", "sd:Dataset")
    g.add(dataset, "sd:defaultGraph", graph)
    g.add(graph, "rdf:type", "sd:Graph")
    g.add(graph, "void:triples", _typed(rel.stats.whole.triples, "xsd:integer"))
    g.add(graph, "rdfs:seeAlso", rel.dataset(), rel.void_document, rel.minter.path("catalog"))
    return g


# ---------------------------------------------------------------------------------------------
# Files of a release


def serialise(triples: list[ox.Triple], fmt: formats.Format) -> bytes:
    """Deterministic bytes of sorted triples (Turtle prefix lines sorted, as in the dumps)."""
    if fmt is formats.JSONLD:  # expanded JSON-LD: the data's short-key context does not apply
        return ox.serialize(triples, format=ox.RdfFormat.JSON_LD)
    return formats.serialize_graph(triples, fmt, OUTPUT_PREFIXES)


def release_files(
    *,
    release_id: str,
    built: dt.datetime,
    base: str,
    counts: dict[str, int],
    files: dict[str, dict[str, Any]],
    graph_nt: bytes | None = None,
    store: ox.Store | None = None,
    stats: GraphStats | None = None,
    checksums: bool = False,
) -> dict[str, tuple[bytes, str]]:
    """The catalogue (Turtle, JSON-LD, RDF/XML), VoID and service description of a release.

    ``files`` is the manifest's mapping of the dumps already written (name → bytes, sha256, …);
    the graph is given as ``graph_nt``, the whole graph in N-Triples, or as ``store``, a
    pyoxigraph store holding it; ``stats``, when given, are its :func:`graph_stats`, already
    computed (then the graph is not needed: what a build of a large graph passes).
    ``checksums`` (the ``catalog_checksums`` setting) gives each distribution its
    ``spdx:checksum``. Returns file name → (content, media type).
    """
    graph = store if store is not None else graph_nt
    if graph is None and stats is None:
        raise TypeError("release_files needs graph_nt, store or stats")
    rel = _release(release_id, built, base, counts, files, graph, stats)
    catalog = _catalog(rel, checksums).sorted()
    out = {
        f"catalog.{fmt.extension}": (serialise(catalog, fmt), fmt.media_type)
        for fmt in (formats.TURTLE, formats.JSONLD, formats.RDFXML)
    }
    out["void.ttl"] = (serialise(_void(rel).sorted(), formats.TURTLE), formats.TURTLE.media_type)
    out["service-description.ttl"] = (
        serialise(_service_description(rel).sorted(), formats.TURTLE),
        formats.TURTLE.media_type,
    )
    return out
