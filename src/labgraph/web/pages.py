"""HTML for people: home, browse, resource, query, ontology, shapes, dumps and 404 pages.

Every page is rendered on the server by Jinja2 with autoescape on for every template, so anything
echoed from the data or from a query is escaped and the pages work without JavaScript. The only
``| safe`` values are JSON-LD blocks made by :func:`script_json`, which escapes ``<``, ``>`` and
``&`` so that they cannot close their ``<script>`` element.

Figures on the pages come from trusted SPARQL run in the server process (``Engine.select``) and
are computed once per release: a release never changes, so neither do they. Queries typed by
people go through the worker pool, with its deadline and result cap, like any SPARQL request.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .. import formats, mapping
from ..release import DUMP_NAMES
from ..remote import StoreUnavailable
from ..store import Busy, Job, QueryError, QueryTimeout, ResultTooLarge
from ..vocab import LG, PREFIXES, expand
from .http import etag_for, link_header, not_modified, validators
from .runtime import Published

T = TypeVar("T")

TEMPLATES = Path(__file__).parent / "templates"
#: The example queries (``queries/*.rq`` at the root of the repository).
QUERIES_DIR = Path(__file__).resolve().parents[3] / "queries"
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
#: Rows of a query result shown in HTML; the downloads carry them all.
MAX_TABLE_ROWS = 1000

RDF_TYPE = expand("rdf:type")
RDFS_LABEL = expand("rdfs:label")
LABEL_PROPERTIES = (RDFS_LABEL, expand("skos:prefLabel"), expand("dct:title"))
XSD = PREFIXES["xsd"]
DATE_TYPES = {XSD + "date", XSD + "gYear", XSD + "gYearMonth", XSD + "dateTime"}
NUMBER_TYPES = {XSD + "decimal", XSD + "integer"}
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

#: French labels of the reused terms a page shows (ours come from the ontology).
PROPERTY_LABELS: dict[str, str] = {
    expand(k): v
    for k, v in {
        "rdf:type": "type",
        "rdfs:label": "nom",
        "skos:altLabel": "autre nom",
        "skos:prefLabel": "libellé",
        "skos:inScheme": "liste",
        "dct:identifier": "identifiant",
        "org:unitOf": "porté par",
        "org:classification": "type d'administration",
        "dct:spatial": "région",
        "schema:location": "lieu",
        "schema:foundingDate": "création",
        "foaf:homepage": "site web",
        "dct:description": "description",
        "prov:wasDerivedFrom": "source",
        "org:subOrganizationOf": "rattachée à",
        "org:identifier": "SIREN",
        "owl:sameAs": "même que",
        "dct:type": "genre",
        "schema:startDate": "début",
        "schema:endDate": "fin",
        "schema:superEvent": "fait partie de",
        "schema:organizer": "organisé par",
        "schema:about": "concerne",
        "schema:keywords": "thème",
        "dct:subject": "porte sur",
        "rdf:value": "valeur",
        "dct:date": "date",
        "dct:title": "titre",
        "dct:publisher": "éditeur",
        "dct:issued": "publié le",
        "foaf:page": "page",
        "rdfs:comment": "note",
        "lg:carriedBy": "porté par",
        "lg:partner": "partenaire",
        "lg:skill": "compétence",
        "lg:measure": "mesure",
        "lg:qualifier": "précision",
        "lg:edition": "numéro d'édition",
    }.items()
}

#: How a link reads from the other end (an institution's page lists the labs it hosts).
INVERSE_LABELS: dict[str, str] = {
    expand(k): v
    for k, v in {
        "org:unitOf": "Laboratoires portés",
        "lg:carriedBy": "Projets portés",
        "lg:partner": "Projets dont il est partenaire",
        "schema:organizer": "Événements organisés",
        "schema:about": "Événements qui le concernent",
        "schema:superEvent": "Événements rattachés",
        "org:subOrganizationOf": "Organisations rattachées",
        "dct:publisher": "Documents publiés",
        "prov:wasDerivedFrom": "Fiches tirées de ce document",
        "dct:subject": "Chiffres datés",
    }.items()
}

CLASS_LABELS: dict[str, str] = {
    expand(k): v
    for k, v in {
        "lg:Lab": "Laboratoire d'innovation publique",
        "cv:PublicOrganisation": "Institution",
        "schema:Project": "Projet",
        "schema:Event": "Événement",
        "schema:EventSeries": "Série",
        "lg:Figure": "Chiffre daté",
        "dct:BibliographicResource": "Source",
        "org:Organization": "Organisation",
        "org:OrganizationalUnit": "Unité organisationnelle",
        "prov:Entity": "Entité (PROV)",
    }.items()
}

#: Most specific class first: the one a page names its thing by.
MAIN_CLASSES = tuple(
    expand(c)
    for c in (
        "lg:Lab",
        "cv:PublicOrganisation",
        "schema:Project",
        "schema:EventSeries",
        "schema:Event",
        "lg:Figure",
        "dct:BibliographicResource",
    )
)

#: Order of the rows of a resource's table; other properties follow by label.
PROPERTY_ORDER = tuple(
    expand(p)
    for p in (
        "rdfs:label",
        "dct:title",
        "skos:altLabel",
        "rdf:type",
        "dct:identifier",
        "org:unitOf",
        "lg:carriedBy",
        "lg:partner",
        "schema:superEvent",
        "lg:edition",
        "org:classification",
        "dct:type",
        "dct:spatial",
        "schema:location",
        "schema:foundingDate",
        "schema:startDate",
        "schema:endDate",
        "dct:date",
        "dct:issued",
        "schema:organizer",
        "schema:about",
        "dct:subject",
        "lg:measure",
        "rdf:value",
        "lg:qualifier",
        "schema:keywords",
        "lg:skill",
        "foaf:homepage",
        "foaf:page",
        "org:identifier",
        "owl:sameAs",
        "dct:publisher",
        "dct:description",
        "rdfs:comment",
        "prov:wasDerivedFrom",
    )
)

#: Where each reused term comes from: namespace → (vocabulary, its reference page).
VOCABULARIES: dict[str, tuple[str, str]] = {
    PREFIXES["org"]: ("W3C ORG (Organization Ontology)", "https://www.w3.org/TR/vocab-org/"),
    PREFIXES["schema"]: ("schema.org", "https://schema.org/docs/schemas.html"),
    PREFIXES["dct"]: (
        "DCMI Metadata Terms (Dublin Core)",
        "https://www.dublincore.org/specifications/dublin-core/dcmi-terms/",
    ),
    PREFIXES["skos"]: ("W3C SKOS", "https://www.w3.org/TR/skos-reference/"),
    PREFIXES["foaf"]: ("FOAF", "http://xmlns.com/foaf/spec/"),
    PREFIXES["prov"]: ("W3C PROV-O", "https://www.w3.org/TR/prov-o/"),
    PREFIXES["cv"]: (
        "Vocabulaires de base de l'UE (Core Public Organisation Vocabulary)",
        "https://semiceu.github.io/CPOV/",
    ),
    PREFIXES["rdfs"]: ("W3C RDF Schema", "https://www.w3.org/TR/rdf-schema/"),
    PREFIXES["rdf"]: ("W3C RDF", "https://www.w3.org/TR/rdf11-concepts/"),
    PREFIXES["owl"]: ("W3C OWL 2", "https://www.w3.org/TR/owl2-overview/"),
    PREFIXES["dcat"]: ("W3C DCAT", "https://www.w3.org/TR/vocab-dcat-3/"),
    PREFIXES["sh"]: ("W3C SHACL", "https://www.w3.org/TR/shacl/"),
    PREFIXES["xsd"]: ("W3C XML Schema (types de données)", "https://www.w3.org/TR/xmlschema11-2/"),
    PREFIXES["insee"]: (
        "INSEE, Code officiel géographique",
        "https://www.insee.fr/fr/information/2560452",
    ),
    "http://www.wikidata.org/entity/": ("Wikidata", "https://www.wikidata.org/"),
    "http://purl.org/vocab/vann/": ("VANN", "https://vocab.org/vann/"),
}

RECORD_LABELS = {
    "lab": "laboratoire",
    "institution": "institution",
    "project": "projet",
    "event": "événement",
    "figure": "chiffre daté",
    "source": "source",
}

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)
#: Part of every page's ETag: a new version of the templates must not be answered with a 304.
TEMPLATES_DIGEST = hashlib.sha256(
    b"".join(p.name.encode() + p.read_bytes() for p in sorted(TEMPLATES.glob("*.html")))
).hexdigest()[:16]


# --- formatting ----------------------------------------------------------------------------------


def french_date(value: str) -> str:
    """``2021-11-02`` → ``2 novembre 2021``; ``2014-09`` → ``septembre 2014``; a year stays."""
    head = value[:10]
    parts = head.split("-")
    try:
        if len(parts) == 3 and len(parts[0]) == 4:
            day = int(parts[2])
            return f"{'1er' if day == 1 else day} {MONTHS[int(parts[1]) - 1]} {parts[0]}"
        if len(parts) == 2 and len(parts[0]) == 4:
            return f"{MONTHS[int(parts[1]) - 1]} {parts[0]}"
    except (ValueError, IndexError):
        return value
    return value


def french_number(value: Any) -> str:
    """Thousands separated by a narrow no-break space, as French typography wants."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer():
        return f"{int(number):,}".replace(",", "\u202f")
    return f"{number:,.2f}".replace(",", "\u202f").replace(".", ",")


def file_size(value: int) -> str:
    """Bytes in the unit a person reads (ko, Mo), with the French decimal comma."""
    size = float(value)
    for unit in ("octets", "ko", "Mo", "Go"):
        if size < 1000 or unit == "Go":
            text = f"{size:.0f}" if unit == "octets" else f"{size:.1f}".replace(".", ",")
            return f"{text}\u00a0{unit}"
        size /= 1000
    return str(value)


env.filters.update(date_fr=french_date, number_fr=french_number, filesize=file_size)


def script_json(data: Any) -> str:
    """JSON for a ``<script>`` element: ``<``, ``>`` and ``&`` escaped so it cannot break out."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def fold(text: str) -> str:
    """Case, accents, spaces and punctuation removed: "ti lab" finds "Ti Lab" and "TiLab"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def short(iri: str) -> str:
    """``org:unitOf`` for a known namespace, else the IRI."""
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and "/" not in iri[len(ns) :] and "#" not in iri[len(ns) :]:
            return f"{prefix}:{iri[len(ns) :]}"
    return iri


def term_anchor(iri: str) -> str:
    """The fragment /def/{term} redirects to (the same rule as the 303 of resources.py)."""
    return iri[len(LG) :].replace("/", "-")


def vocabulary_of(iri: str) -> tuple[str, str, str] | None:
    """(namespace, vocabulary name, reference page) of a term, longest namespace first."""
    if iri.startswith(LG):
        return LG, "labgraph", LG
    for ns in sorted(VOCABULARIES, key=len, reverse=True):
        if iri.startswith(ns):
            return (ns, *VOCABULARIES[ns])
    return None


# --- per-release values ------------------------------------------------------------------------


class PerRelease:
    """Values computed once per release and dropped when the release is no longer served."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._slots: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def get(self, published: Published, key: str, make: Callable[[], T]) -> T:
        slot = self._slots.get(published.id)
        if slot is None:
            slot = self._slots[published.id] = {}
            while len(self._slots) > self.keep:
                self._slots.popitem(last=False)
        if key not in slot:
            slot[key] = make()
        value: T = slot[key]
        return value


CACHE = PerRelease()


def select(published: Published, query: str, **iris: str) -> list[dict[str, Any]]:
    """Rows of a trusted SELECT as plain strings (None when unbound), with the usual prefixes.

    ``$name`` in the query is replaced by the IRI given as ``name=...``, written by pyoxigraph
    (which checks and escapes it), so a value from the data can never change the query.
    """
    text = Template(query).substitute({k: str(ox.NamedNode(v)) for k, v in iris.items()})
    rows = published.engine.select(text, prefixes=PREFIXES)
    return [{k: (v.value if v is not None else None) for k, v in row.items()} for row in rows]


def ontology_labels(published: Published) -> dict[str, dict[str, str]]:
    """Labels and definitions of the ontology's own terms: IRI → {label, definition, en}."""

    def make() -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        if published.release is None or "ontology.ttl" not in published.release.manifest["files"]:
            return found
        for t in _parse_turtle(published.release.file("ontology.ttl")):
            if not isinstance(t.object, ox.Literal) or not isinstance(t.subject, ox.NamedNode):
                continue
            entry = found.setdefault(t.subject.value, {})
            key = {
                RDFS_LABEL: "label",
                expand("skos:prefLabel"): "label",
                expand("skos:definition"): "definition",
            }.get(t.predicate.value)
            if key is None:
                continue
            if t.object.language == "en":
                key += "_en"
            entry.setdefault(key, t.object.value)
        return found

    return CACHE.get(published, "ontology-labels", make)


def _parse_turtle(path: Path) -> list[ox.Triple]:
    return [
        q.triple if isinstance(q, ox.Quad) else q
        for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)
    ]


def property_label(published: Published, iri: str) -> str:
    if iri in PROPERTY_LABELS:
        return PROPERTY_LABELS[iri]
    return ontology_labels(published).get(iri, {}).get("label", short(iri))


def class_label(published: Published, iri: str) -> str:
    if iri in CLASS_LABELS:
        return CLASS_LABELS[iri]
    return ontology_labels(published).get(iri, {}).get("label", short(iri))


# --- rendering -----------------------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _context(request: Request, published: Published, **values: Any) -> dict[str, Any]:
    base = _base(request)

    def here(path: str) -> str:
        return base + path

    context: dict[str, Any] = {
        "here": here,
        "release_id": published.id,
        "section": None,
        "head_links": [],
        "description": "Le réseau français des laboratoires d'innovation publique en données "
        "ouvertes liées : fiches, SPARQL, téléchargements.",
        "json_ld": None,
    }
    context.update(values)
    return context


def render_text(name: str, request: Request, published: Published, **values: Any) -> str:
    return env.get_template(name).render(_context(request, published, **values))


def render(
    name: str,
    request: Request,
    published: Published,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    html = render_text(name, request, published, **values)
    return HTMLResponse(
        html, status_code=status, headers={"Content-Language": "fr", **(headers or {})}
    )


def cached_page(
    request: Request,
    published: Published,
    name: str,
    *,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    """A page that depends only on the release and the URL: ETag, Last-Modified, 304."""
    etag = etag_for(published, "page", TEMPLATES_DIGEST, str(request.url))
    all_headers = validators(published, etag)
    all_headers.update(headers or {})
    if not_modified(request, etag, published.modified):
        return Response(status_code=304, headers=all_headers)
    return render(name, request, published, headers=all_headers, **values)


def local_href(request: Request, published: Published, iri: str) -> str | None:
    """Where a browser should go for ``iri``: its page on this server, or the IRI itself."""
    runtime = request.app.state.runtime
    path = runtime.minter.local_path(iri)
    if iri.startswith(LG):
        return _base(request) + "/def/#" + term_anchor(iri)
    if path is not None and path.startswith("/id/"):
        return _base(request) + "/doc/" + path[len("/id/") :] + ".html"
    if path is not None:
        return _base(request) + path
    if iri.startswith(("http://", "https://")):
        return iri
    return None


def record_type(request: Request, iri: str) -> str | None:
    """``lab`` for ``{base}/id/lab/x``: the record type a local IRI names."""
    path = request.app.state.runtime.minter.local_path(iri) or ""
    parts = path.split("/")
    return parts[2] if len(parts) == 4 and parts[1] == "id" else None


def main_class(types: Iterable[str]) -> str | None:
    found = set(types)
    return next((c for c in MAIN_CLASSES if c in found), None)


# --- resource pages ------------------------------------------------------------------------------

NEIGHBOURS = """
SELECT ?other ?type ?date ?title WHERE {
  { $thing ?p ?other } UNION { ?other ?p $thing }
  FILTER(isIRI(?other))
  OPTIONAL { ?other a ?type }
  OPTIONAL { ?other schema:startDate|schema:foundingDate|dct:date|dct:issued ?date }
  OPTIONAL { ?other dct:title ?title }
}"""

FIGURES_ABOUT = """
SELECT ?figure ?value ?date ?measure ?qualifier ?wording WHERE {
  ?figure dct:subject $thing ; rdf:value ?value ; dct:date ?date .
  OPTIONAL { ?figure lg:measure/skos:prefLabel ?measure FILTER(LANG(?measure) = "fr") }
  OPTIONAL { ?figure lg:qualifier/skos:prefLabel ?qualifier FILTER(LANG(?qualifier) = "fr") }
  OPTIONAL { ?figure rdfs:label ?wording }
} ORDER BY STR(?date)"""


@dataclass
class Neighbour:
    """What a page says about a thing it links to: its type and date."""

    types: set[str] = field(default_factory=set)
    date: str | None = None
    title: str | None = None


def labels_of(triples: Iterable[ox.Triple]) -> dict[str, str]:
    """Best label per node: French first, then untagged, then any."""
    found: dict[str, tuple[int, str]] = {}
    for t in triples:
        if t.predicate.value in LABEL_PROPERTIES and isinstance(t.object, ox.Literal):
            rank = {"fr": 0, None: 1}.get(t.object.language, 2)
            current = found.get(t.subject.value)
            if current is None or rank < current[0]:
                found[t.subject.value] = (rank, t.object.value)
    return {k: v for k, (_, v) in found.items()}


def source_text(url: str) -> str:
    """A readable name for a web page cited as a source: its site and last path segment."""
    parts = urlsplit(url)
    host = parts.netloc.removeprefix("www.")
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        return host
    last = unquote(segments[-1]).rsplit(".", 1)[0].replace("-", " ").replace("_", " ").strip()
    if len(last) > 70:
        last = last[:69].rstrip() + "…"
    return f"{host} — {last}" if last else host


class ResourceView:
    """Everything the resource page shows about one thing, gathered from its document."""

    def __init__(
        self, request: Request, published: Published, iri: str, triples: list[ox.Triple]
    ) -> None:
        self.request = request
        self.published = published
        self.iri = iri
        self.triples = triples
        self.labels = labels_of(triples)
        self.neighbours: dict[str, Neighbour] = defaultdict(Neighbour)
        for row in select(published, NEIGHBOURS, thing=iri):
            n = self.neighbours[row["other"]]
            if row["type"]:
                n.types.add(row["type"])
            n.date = n.date or row["date"]
            n.title = n.title or row["title"]
        self.figures = select(published, FIGURES_ABOUT, thing=iri)

    def label(self, iri: str) -> str:
        neighbour = self.neighbours.get(iri)
        return self.labels.get(iri) or (neighbour.title if neighbour else None) or iri

    def value(self, term: Any, predicate: str | None = None) -> dict[str, Any]:
        """A value as shown on a page: text, link, language, machine-readable date."""
        if isinstance(term, ox.NamedNode):
            iri = term.value
            neighbour = self.neighbours.get(iri)
            if (
                predicate == expand("prov:wasDerivedFrom")
                and iri not in self.labels
                and not (neighbour and neighbour.title)
            ):
                text = source_text(iri)
            else:
                text = self.label(iri)
            kind = main_class(neighbour.types) if neighbour else None
            return {
                "text": text,
                "href": local_href(self.request, self.published, iri),
                "iri": iri,
                "lang": None,
                "datetime": None,
                "note": class_label(self.published, kind).lower() if kind else None,
                "date": neighbour.date if neighbour else None,
            }
        if isinstance(term, ox.Literal):
            datatype = term.datatype.value if term.datatype else None
            text, when = term.value, None
            if datatype in DATE_TYPES:
                text, when = french_date(term.value), term.value
            elif datatype in NUMBER_TYPES:
                text = french_number(term.value)
            return {
                "text": text,
                "href": None,
                "iri": None,
                "datetime": when,
                "note": None,
                "lang": term.language if term.language and term.language != "fr" else None,
                "date": None,
            }
        return {
            "text": str(term),
            "href": None,
            "iri": None,
            "datetime": None,
            "note": None,
            "lang": None,
            "date": None,
        }

    def types(self) -> list[str]:
        return [
            t.object.value
            for t in self.triples
            if t.subject.value == self.iri and t.predicate.value == RDF_TYPE
        ]

    def rows(self) -> list[dict[str, Any]]:
        """Every property of the thing with its label, in a reading order."""
        grouped: dict[str, list[Any]] = defaultdict(list)
        for t in self.triples:
            if t.subject.value == self.iri:
                grouped[t.predicate.value].append(t.object)
        order = {p: i for i, p in enumerate(PROPERTY_ORDER)}
        rows = []
        for predicate, objects in grouped.items():
            values = [self.value(o, predicate) for o in objects]
            if predicate == RDF_TYPE:
                values = [{**v, "text": class_label(self.published, v["iri"])} for v in values]
            values.sort(key=lambda v: (v["datetime"] or "", fold(v["text"])))
            rows.append(
                {
                    "predicate": predicate,
                    "curie": short(predicate),
                    "label": property_label(self.published, predicate),
                    "href": local_href(self.request, self.published, predicate),
                    "values": values,
                }
            )
        rows.sort(key=lambda r: (order.get(r["predicate"], len(order)), r["label"]))
        return rows

    def relations(self) -> list[dict[str, Any]]:
        """Links made to the thing by other records, under the label of the reverse link."""
        grouped: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for t in self.triples:
            if (
                isinstance(t.object, ox.NamedNode)
                and t.object.value == self.iri
                and t.subject.value != self.iri
                and t.predicate.value != expand("dct:subject")
            ):
                grouped[t.predicate.value][t.subject.value] = self.value(t.subject)
        out = []
        for predicate, items in grouped.items():
            label = INVERSE_LABELS.get(predicate) or (
                f"{property_label(self.published, predicate).capitalize()} (lien entrant)"
            )
            values = sorted(
                items.values(), key=lambda v: (-int((v["date"] or "0")[:4] or 0), fold(v["text"]))
            )
            out.append(
                {
                    "predicate": predicate,
                    "curie": short(predicate),
                    "label": label,
                    "values": values,
                }
            )
        return sorted(out, key=lambda r: r["label"])

    def sources(self) -> list[dict[str, Any]]:
        return sorted(
            (
                self.value(t.object, t.predicate.value)
                for t in self.triples
                if t.subject.value == self.iri
                and t.predicate.value == expand("prov:wasDerivedFrom")
            ),
            key=lambda v: v["text"],
        )

    def figure_rows(self) -> list[dict[str, Any]]:
        return [
            {**row, "href": local_href(self.request, self.published, row["figure"])}
            for row in self.figures
        ]

    def schema_org(self) -> dict[str, Any]:
        """A schema.org description of the thing, for search engines."""
        kinds = set(self.types())
        kind = (
            "GovernmentOrganization"
            if kinds & {expand("lg:Lab"), expand("cv:PublicOrganisation")}
            else "EventSeries"
            if expand("schema:EventSeries") in kinds
            else "Event"
            if expand("schema:Event") in kinds
            else "Project"
            if expand("schema:Project") in kinds
            else "CreativeWork"
            if expand("dct:BibliographicResource") in kinds
            else "Observation"
            if expand("lg:Figure") in kinds
            else "Thing"
        )
        data: dict[str, Any] = {
            "@context": "https://schema.org",
            "@type": kind,
            "@id": self.iri,
            "name": self.labels.get(self.iri, self.iri),
        }
        page = local_href(self.request, self.published, self.iri)
        if page:
            data["mainEntityOfPage"] = page

        def ref(iri: str, kind: str = "Organization") -> dict[str, str]:
            return {"@type": kind, "@id": iri, "name": self.label(iri)}

        plain = {
            "foaf:homepage": "url",
            "dct:description": "description",
            "schema:foundingDate": "foundingDate",
            "schema:startDate": "startDate",
            "schema:endDate": "endDate",
            "dct:identifier": "identifier",
            "schema:keywords": "keywords",
            "owl:sameAs": "sameAs",
            "skos:altLabel": "alternateName",
        }
        linked = {
            "org:unitOf": ("parentOrganization", "GovernmentOrganization"),
            "org:subOrganizationOf": ("parentOrganization", "GovernmentOrganization"),
            "lg:carriedBy": ("parentOrganization", "Organization"),
            "schema:organizer": ("organizer", "Organization"),
            "schema:about": ("about", "Thing"),
            "schema:superEvent": ("superEvent", "Event"),
            "dct:spatial": ("areaServed", "AdministrativeArea"),
        }
        many: dict[str, list[Any]] = defaultdict(list)
        for t in self.triples:
            if t.subject.value == self.iri:
                p = short(t.predicate.value)
                if p in plain:
                    many[plain[p]].append(t.object.value)
                elif p in linked:
                    key, ref_kind = linked[p]
                    many[key].append(ref(t.object.value, ref_kind))
                elif p == "schema:location":
                    many["location"].append({"@type": "Place", "name": t.object.value})
            elif (
                isinstance(t.object, ox.NamedNode)
                and t.object.value == self.iri
                and t.predicate.value == expand("org:unitOf")
            ):
                many["subOrganization"].append(ref(t.subject.value, "GovernmentOrganization"))
        for key, values in many.items():
            values = sorted(values, key=lambda v: json.dumps(v, sort_keys=True))
            data[key] = values[0] if len(values) == 1 else values
        return data


def resource_html(
    request: Request, published: Published, iri: str, triples: list[ox.Triple]
) -> bytes:
    """The HTML representation of a thing's document (cached per release by the caller)."""
    view = ResourceView(request, published, iri, triples)
    kind = record_type(request, iri)
    runtime = request.app.state.runtime
    path = runtime.minter.local_path(iri) or ""
    stem = _base(request) + "/doc/" + path[len("/id/") :]
    alternates = [
        {
            "href": f"{stem}.{f.extension}",
            "media_type": f.media_type,
            "label": f.label,
            "extension": f.extension,
        }
        for f in formats.DOCUMENT_FORMATS
        if f is not formats.HTML
    ]
    main = main_class(view.types())
    label = view.labels.get(iri, iri)
    wording = None
    if main == expand("lg:Figure"):  # a figure is named by what it counts, its value and date
        facts = {t.predicate.value: t.object for t in triples if t.subject.value == iri}
        measure, value = facts.get(expand("lg:measure")), facts.get(expand("rdf:value"))
        when = facts.get(expand("dct:date"))
        if measure is not None and value is not None and when is not None:
            wording = label if label != iri else None
            label = (
                f"{view.label(measure.value)} : {french_number(value.value)} "
                f"({french_date(when.value)})"
            )
    descriptions = [
        t.object.value
        for t in triples
        if t.subject.value == iri and t.predicate.value == expand("dct:description")
    ]
    alt_names = sorted(
        t.object.value
        for t in triples
        if t.subject.value == iri and t.predicate.value == expand("skos:altLabel")
    )
    explore = (
        f"SELECT ?property ?value WHERE {{\n  <{iri}> ?property ?value\n}}\nORDER BY ?property"
    )
    html = render_text(
        "resource.html",
        request,
        published,
        section=kind if kind in BROWSE else None,
        iri=iri,
        label=label,
        kind=kind,
        kind_title=BROWSE[kind].title if kind in BROWSE else None,
        main_type=class_label(published, main) if main else None,
        description=(descriptions[0] if descriptions else f"{label} — fiche labgraph"),
        lead=descriptions[0] if descriptions else (f"« {wording} »" if wording else None),
        alt_names=alt_names,
        rows=view.rows(),
        relations=view.relations(),
        figures=view.figure_rows(),
        sources=view.sources(),
        alternates=alternates,
        head_links=[
            {"rel": "alternate", "type": a["media_type"], "href": a["href"]} for a in alternates
        ],
        json_ld=script_json(view.schema_org()),
        explore_href=_base(request) + "/sparql?" + urlencode({"query": explore}),
        id_url=_base(request) + path,
    )
    return html.encode("utf-8")


def not_found(request: Request, published: Published, path: str) -> Response:
    """A 404 page that helps: what was asked, and where to look instead."""
    return render(
        "not_found.html", request, published, status=404, path=path, browse=list(BROWSE.values())
    )


# --- browse pages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Browse:
    """A list page of one record type: what it shows and how it can be filtered."""

    type: str
    title: str
    one: str
    class_iri: str
    kind_property: str | None
    kind_title: str
    date_property: str | None
    date_title: str
    region: bool
    link_property: str
    link_title: str
    link_inverse: bool = False
    default_sort: str = "name"


BROWSE: dict[str, Browse] = {
    b.type: b
    for b in (
        Browse(
            "lab",
            "Laboratoires",
            "laboratoire",
            expand("lg:Lab"),
            expand("org:classification"),
            "Type d'administration",
            expand("schema:foundingDate"),
            "Création",
            True,
            expand("org:unitOf"),
            "Porté par",
        ),
        Browse(
            "institution",
            "Institutions",
            "institution",
            expand("cv:PublicOrganisation"),
            expand("org:classification"),
            "Type d'administration",
            None,
            "",
            True,
            expand("org:unitOf"),
            "Laboratoires portés",
            link_inverse=True,
        ),
        Browse(
            "project",
            "Projets",
            "projet",
            expand("schema:Project"),
            expand("dct:type"),
            "Genre",
            expand("schema:startDate"),
            "Début",
            False,
            expand("lg:carriedBy"),
            "Porté par",
        ),
        Browse(
            "event",
            "Événements",
            "événement",
            expand("schema:Event"),
            expand("dct:type"),
            "Genre",
            expand("schema:startDate"),
            "Date",
            True,
            expand("schema:superEvent"),
            "Fait partie de",
            default_sort="-date",
        ),
    )
}


@dataclass
class Item:
    """One row of a list page."""

    iri: str
    name: str
    alt_names: list[str] = field(default_factory=list)
    region: str | None = None
    region_name: str | None = None
    kind: str | None = None
    kind_name: str | None = None
    date: str | None = None
    links: list[tuple[str, str]] = field(default_factory=list)

    @property
    def region_code(self) -> str | None:
        return self.region.rsplit("/", 1)[-1] if self.region else None

    @property
    def kind_code(self) -> str | None:
        return self.kind.rsplit("/", 1)[-1] if self.kind else None

    @property
    def year(self) -> str | None:
        return self.date[:4] if self.date else None

    def matches(self, words: str) -> bool:
        return any(words in fold(name) for name in (self.name, *self.alt_names))


ITEMS = """
SELECT ?s ?name ?region ?regionName ?kind ?kindName ?date WHERE {
  ?s a $class ; rdfs:label ?name .
  OPTIONAL { ?s dct:spatial ?region OPTIONAL { ?region rdfs:label ?regionName } }
  OPTIONAL { ?s $kind ?kind
             OPTIONAL { ?kind skos:prefLabel ?kindName FILTER(LANG(?kindName) = "fr") } }
  OPTIONAL { ?s $date ?date }
}"""
ALT_NAMES = "SELECT ?s ?alt WHERE { ?s a $class ; skos:altLabel ?alt }"
LINKS = (
    "SELECT ?s ?other ?otherName WHERE { ?s a $class . ?s $link ?other . "
    "?other rdfs:label ?otherName }"
)
LINKS_IN = (
    "SELECT ?s ?other ?otherName WHERE { ?s a $class . ?other $link ?s . "
    "?other rdfs:label ?otherName }"
)


def load_items(published: Published, browse: Browse) -> list[Item]:
    """Every record of a type with what its list shows (trusted SPARQL, once per release)."""

    def make() -> list[Item]:
        none = LG + "none"  # a property no triple uses: the column stays empty
        items: dict[str, Item] = {}
        for row in select(
            published,
            ITEMS,
            **{"class": browse.class_iri},
            kind=browse.kind_property or none,
            date=browse.date_property or none,
        ):
            items.setdefault(
                row["s"],
                Item(
                    row["s"],
                    row["name"],
                    [],
                    row["region"],
                    row["regionName"],
                    row["kind"],
                    row["kindName"],
                    row["date"],
                ),
            )
        for row in select(published, ALT_NAMES, **{"class": browse.class_iri}):
            items[row["s"]].alt_names.append(row["alt"])
        for row in select(
            published,
            LINKS_IN if browse.link_inverse else LINKS,
            **{"class": browse.class_iri},
            link=browse.link_property,
        ):
            items[row["s"]].links.append((row["other"], row["otherName"]))
        for item in items.values():
            item.alt_names.sort()
            item.links.sort(key=lambda link: fold(link[1]))
        return sorted(items.values(), key=lambda i: fold(i.name))

    return CACHE.get(published, f"items-{browse.type}", make)


def _facet(
    items: list[Item], key: Callable[[Item], str | None], name: Callable[[Item], str | None]
) -> list[dict[str, Any]]:
    counts: dict[str, list[Any]] = {}
    for item in items:
        value = key(item)
        if value:
            counts.setdefault(value, [name(item) or value, 0])[1] += 1
    return sorted(
        ({"value": v, "label": label, "count": n} for v, (label, n) in counts.items()),
        key=lambda f: fold(f["label"]),
    )


SORT_KEYS: dict[str, Callable[[Item], Any]] = {
    "name": lambda i: fold(i.name),
    "date": lambda i: i.date,
    "region": lambda i: fold(i.region_name) if i.region_name else None,
    "kind": lambda i: fold(i.kind_name) if i.kind_name else None,
    "links": lambda i: len(i.links),
}


def sort_items(items: list[Item], sort: str) -> list[Item]:
    """Sorted by ``sort`` (``-`` for descending), then by name; missing values always last."""
    key = SORT_KEYS[sort.lstrip("-")]
    by_name = sorted(items, key=lambda i: fold(i.name))
    present = [i for i in by_name if key(i) is not None]
    missing = [i for i in by_name if key(i) is None]
    return sorted(present, key=key, reverse=sort.startswith("-")) + missing


def browse_page(request: Request, published: Published, browse: Browse) -> Response:
    """A list page: filters, search by name, sort and pages, all from the query string."""
    params = request.query_params
    items = load_items(published, browse)
    facets = {
        "region": _facet(items, lambda i: i.region_code, lambda i: i.region_name)
        if browse.region
        else [],
        "kind": _facet(items, lambda i: i.kind_code, lambda i: i.kind_name)
        if browse.kind_property
        else [],
        "year": sorted(
            _facet(items, lambda i: i.year, lambda i: i.year),
            key=lambda f: f["value"],
            reverse=True,
        )
        if browse.date_property
        else [],
    }
    chosen = {name: (params.get(name) or "").strip() for name in ("region", "kind", "year")}
    query = (params.get("q") or "").strip()[:200]
    sorts = (
        ["name", "-name"]
        + (["date", "-date"] if browse.date_property else [])
        + (["region"] if browse.region else [])
        + (["kind"] if browse.kind_property else [])
        + (["-links"] if browse.link_inverse else [])
    )
    sort = params.get("sort") or browse.default_sort
    if sort not in sorts:
        sort = browse.default_sort
    try:
        per_page = min(max(int(params.get("per_page") or PAGE_SIZE), 1), MAX_PAGE_SIZE)
    except ValueError:
        per_page = PAGE_SIZE
    selected = [
        i
        for i in items
        if (not chosen["region"] or i.region_code == chosen["region"])
        and (not chosen["kind"] or i.kind_code == chosen["kind"])
        and (not chosen["year"] or i.year == chosen["year"])
        and (not query or i.matches(fold(query)))
    ]
    selected = sort_items(selected, sort)
    pages = max(1, math.ceil(len(selected) / per_page))
    try:
        page = min(max(int(params.get("page") or 1), 1), pages)
    except ValueError:
        page = 1
    shown = selected[(page - 1) * per_page : page * per_page]

    state = {
        "q": query,
        **chosen,
        "sort": sort if sort != browse.default_sort else "",
        "per_page": str(per_page) if per_page != PAGE_SIZE else "",
    }

    def url(**changes: Any) -> str:
        values = {**state, "page": "", **{k: str(v) for k, v in changes.items()}}
        if values["page"] == "1":
            values["page"] = ""
        if values["sort"] == browse.default_sort:
            values["sort"] = ""
        encoded = urlencode({k: v for k, v in values.items() if v})
        return f"{_base(request)}/{browse.type}/" + (f"?{encoded}" if encoded else "")

    links: list[tuple[str, str, str | None]] = []
    if page < pages:
        links.append((url(page=page + 1), "next", "text/html"))
    if page > 1:
        links.append((url(page=page - 1), "prev", "text/html"))
    if pages > 1:
        links += [(url(page=1), "first", "text/html"), (url(page=pages), "last", "text/html")]
    labels = {name: {f["value"]: f["label"] for f in facets[name]} for name in facets}
    active = [
        {
            "name": name,
            "label": labels[name].get(value, value),
            "remove": url(**{name: "", "page": ""}),
        }
        for name, value in chosen.items()
        if value
    ]
    if query:
        active.append({"name": "q", "label": f"« {query} »", "remove": url(q="", page="")})

    def sort_link(column: str) -> dict[str, Any]:
        """Link of a column header: sorts by it, or reverses the order when it already does."""
        current = sort.lstrip("-") == column
        descending = sort.startswith("-")
        target = (
            (column if descending else f"-{column}")
            if current
            else ("-" + column if column == "links" else column)
        )
        if target not in sorts:
            target = column if column in sorts else f"-{column}"
        aria = ("descending" if descending else "ascending") if current else None
        return {"href": url(sort=target, page=""), "aria": aria}

    return cached_page(
        request,
        published,
        "browse.html",
        headers={"Link": link_header(links)} if links else None,
        section=browse.type,
        browse=browse,
        items=[_item_view(request, published, i) for i in shown],
        total=len(items),
        count=len(selected),
        page=page,
        pages=pages,
        per_page=per_page,
        facets=facets,
        chosen=chosen,
        query=query,
        sort=sort,
        active=active,
        next_url=url(page=page + 1) if page < pages else None,
        prev_url=url(page=page - 1) if page > 1 else None,
        page_urls=[(n, url(page=n)) for n in range(1, pages + 1)],
        sort_links={c: sort_link(c) for c in ("name", "date", "region", "kind", "links")},
        head_links=[
            {"rel": rel, "type": None, "href": href}
            for href, rel, _ in links
            if rel in ("next", "prev")
        ],
        description=f"{browse.title} du réseau des laboratoires d'innovation publique : "
        "liste filtrable et triable.",
    )


def _item_view(request: Request, published: Published, item: Item) -> dict[str, Any]:
    return {
        "name": item.name,
        "href": local_href(request, published, item.iri),
        "alt_names": item.alt_names,
        "region": item.region_name,
        "kind": item.kind_name,
        "date": item.date,
        "links": [
            {"text": name, "href": local_href(request, published, iri)} for iri, name in item.links
        ],
    }


# --- home page -----------------------------------------------------------------------------------

COUNTS = """
SELECT ?key (COUNT(DISTINCT ?s) AS ?n) WHERE {
  VALUES (?key ?class) { ("lab" lg:Lab) ("institution" cv:PublicOrganisation)
                         ("project" schema:Project) ("event" schema:Event) }
  ?s a ?class
} GROUP BY ?key"""
TRIPLES = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
LABS_BY = """
SELECT ?value ?name (COUNT(?lab) AS ?n) WHERE {
  ?lab a lg:Lab .
  OPTIONAL { ?lab $by ?value OPTIONAL { ?value rdfs:label|skos:prefLabel ?name
                                        FILTER(LANG(?name) = "fr") } }
} GROUP BY ?value ?name"""
LATEST_EVENTS = """
SELECT ?event ?name ?start (SAMPLE(?kindName) AS ?kind) (SAMPLE(?where) AS ?place) WHERE {
  ?event a schema:Event ; rdfs:label ?name ; schema:startDate ?start .
  OPTIONAL { ?event dct:type/skos:prefLabel ?kindName FILTER(LANG(?kindName) = "fr") }
  OPTIONAL { ?event schema:location ?where }
} GROUP BY ?event ?name ?start ORDER BY DESC(STR(?start)) ?name LIMIT 6"""
NETWORK_SIZE = """
SELECT ?figure ?value ?date ?qualifier ?wording ?about ?aboutName WHERE {
  ?figure lg:measure measure:lab-count ; rdf:value ?value ; dct:date ?date ; dct:subject ?about .
  ?about rdfs:label ?aboutName .
  OPTIONAL { ?figure lg:qualifier/skos:prefLabel ?qualifier FILTER(LANG(?qualifier) = "fr") }
  OPTIONAL { ?figure rdfs:label ?wording }
} ORDER BY DESC(STR(?date)) LIMIT 1"""


def home_data(published: Published) -> dict[str, Any]:
    """The figures of the home page, computed once per release."""

    def make() -> dict[str, Any]:
        counts = {row["key"]: int(row["n"]) for row in select(published, COUNTS)}
        counts["triples"] = int(select(published, TRIPLES)[0]["n"])
        by: dict[str, list[dict[str, Any]]] = {}
        for name, predicate in (("region", "dct:spatial"), ("kind", "org:classification")):
            rows = select(published, LABS_BY, by=expand(predicate))
            by[name] = sorted(
                (
                    {
                        "code": r["value"].rsplit("/", 1)[-1] if r["value"] else None,
                        "name": r["name"] or (r["value"] or ""),
                        "count": int(r["n"]),
                    }
                    for r in rows
                ),
                key=lambda r: (r["code"] is None, -r["count"], fold(r["name"])),
            )
        size = select(published, NETWORK_SIZE)
        release = published.release
        built = str(release.manifest["built"]) if release else published.modified.isoformat()
        return {
            "counts": counts,
            "by": by,
            "events": select(published, LATEST_EVENTS),
            "network": size[0] if size else None,
            "built": built,
        }

    return CACHE.get(published, "home", make)


def dataset_json_ld(request: Request, published: Published, data: dict[str, Any]) -> dict[str, Any]:
    """A schema.org Dataset for the home page, so dataset search engines find the dumps."""
    base = _base(request)
    release = published.release
    downloads = []
    if release is not None:
        for fmt in formats.DUMP_FORMATS:
            name = f"labgraph.{fmt.extension}"
            if name in release.manifest["files"]:
                downloads.append(
                    {
                        "@type": "DataDownload",
                        "encodingFormat": fmt.media_type,
                        "contentUrl": f"{base}/dumps/{name}",
                        "contentSize": str(release.manifest["files"][name]["bytes"]),
                    }
                )
    return {
        "@context": "https://schema.org",
        "@type": "Dataset",
        "name": "labgraph — laboratoires d'innovation publique",
        "description": "Le réseau français des laboratoires d'innovation publique "
        "(laboratoires, institutions, projets, événements, chiffres datés) en "
        "données ouvertes liées.",
        "url": base + "/",
        "inLanguage": "fr",
        "dateModified": data["built"],
        "license": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
        "isAccessibleForFree": True,
        "distribution": downloads,
        "spatialCoverage": "France",
        "version": published.id,
    }


# --- example queries and the query page ----------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """An example query of queries/*.rq, with the title and sentence its comments give."""

    slug: str
    title: str
    description: str
    query: str


def load_examples(folder: Path = QUERIES_DIR) -> list[Example]:
    """Read the example queries; each starts with ``# title:`` and ``# description:`` lines."""
    examples = []
    for path in sorted(folder.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        meta: dict[str, str] = {}
        for line in text.splitlines():
            if not line.startswith("#"):
                break
            key, sep, value = line.lstrip("#").partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip()
        examples.append(
            Example(
                path.stem,
                meta.get("title", path.stem),
                meta.get("description", ""),
                text.strip() + "\n",
            )
        )
    return sorted(examples, key=lambda e: fold(e.title))


_EXAMPLES: list[Example] | None = None


def examples() -> list[Example]:
    global _EXAMPLES
    if _EXAMPLES is None:
        _EXAMPLES = load_examples() if QUERIES_DIR.is_dir() else []
    return _EXAMPLES


DEFAULT_QUERY = """PREFIX lg: <https://w3id.org/labgraph/def/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>

SELECT ?lab ?name WHERE {
  ?lab a lg:Lab ; rdfs:label ?name .
}
ORDER BY ?name
LIMIT 50
"""


def _sparql_values(request: Request, published: Published, query: str) -> dict[str, Any]:
    base = _base(request)
    known = {e.query.strip(): e for e in examples()}
    return {
        "query": query,
        "examples": [
            {
                "slug": e.slug,
                "title": e.title,
                "description": e.description,
                "query": e.query,
                "load": base + "/sparql?" + urlencode({"example": e.slug}) + "#editeur",
                "run": base + "/sparql?" + urlencode({"query": e.query}) + "#resultats",
            }
            for e in examples()
        ],
        "current": known.get(query.strip()),
        "table": None,
        "boolean": None,
        "error": None,
        "downloads": [],
        "truncated": False,
        "notice": None,
        "timeout": request.app.state.runtime.settings.query_timeout,
        "section": "sparql",
        "description": "Interroger le graphe des laboratoires d'innovation publique en SPARQL : "
        "éditeur, requêtes d'exemple, résultats en tableau, CSV ou JSON.",
    }


def query_form(request: Request, published: Published) -> Response:
    """The query page without a query: the editor, filled with an example when asked."""
    values = _sparql_values(request, published, DEFAULT_QUERY)
    wanted = request.query_params.get("example")
    if wanted:
        found = next((e for e in examples() if e.slug == wanted), None)
        if found is None:
            values["notice"] = (
                f"Aucun exemple ne s'appelle « {wanted} » ; voici la requête par défaut."
            )
        else:
            values["query"], values["current"] = found.query, found
    return render("sparql.html", request, published, headers={"Vary": "Accept"}, **values)


def _cell(request: Request, published: Published, cell: dict[str, Any] | None) -> dict[str, Any]:
    if cell is None:
        return {"text": "", "href": None, "note": None, "lang": None}
    if cell["type"] == "uri":
        value = cell["value"]
        return {
            "text": short(value),
            "href": local_href(request, published, value),
            "note": None,
            "lang": None,
        }
    if cell["type"] == "bnode":
        return {"text": "_:" + cell["value"], "href": None, "note": None, "lang": None}
    datatype = cell.get("datatype")
    note = short(datatype) if datatype and datatype != XSD + "string" else None
    return {"text": cell["value"], "href": None, "note": note, "lang": cell.get("xml:lang")}


async def sparql_page(request: Request, published: Published, query: str) -> Response:
    """Run a SELECT or ASK for a browser and show the results as a table (no JavaScript)."""
    settings = request.app.state.runtime.settings
    base = _base(request) + "/sparql?"
    values = _sparql_values(request, published, query)
    values["downloads"] = [
        {
            "label": fmt.label,
            "media_type": fmt.media_type,
            "href": base + urlencode({"query": query, "format": fmt.extension}),
        }
        for fmt in formats.RESULTS_FORMATS
    ]
    status = 200
    try:
        answer = await published.engine.run(Job(query, results_format="json", graph_format=None))
        parsed = json.loads(answer.body)
        if "boolean" in parsed:
            values["boolean"] = bool(parsed["boolean"])
            values["downloads"] = [
                d for d in values["downloads"] if d["label"] in ("SPARQL JSON", "SPARQL XML")
            ]
        else:
            variables = parsed["head"]["vars"]
            bindings = parsed["results"]["bindings"]
            values["truncated"] = len(bindings) > MAX_TABLE_ROWS
            rows = [
                [_cell(request, published, b.get(v)) for v in variables]
                for b in bindings[:MAX_TABLE_ROWS]
            ]
            values["table"] = {"variables": variables, "rows": rows, "count": len(bindings)}
    except QueryError as err:
        values["error"], status = f"Requête invalide : {err}", 400
    except QueryTimeout:
        values["error"], status = (
            (
                f"Requête arrêtée après {settings.query_timeout:g} s, la "
                "limite de ce service : ajoutez des filtres ou LIMIT, ou "
                "téléchargez les données."
            ),
            503,
        )
    except (Busy, StoreUnavailable):
        values["error"], status = "Le service est occupé ; réessayez dans un instant.", 503
    except ResultTooLarge:
        values["error"], status = (
            (
                f"Résultat plus grand que {file_size(settings.max_result_bytes)}"
                ", la limite de ce service : ajoutez LIMIT ou téléchargez "
                "les données."
            ),
            422,
        )
    headers = {"Vary": "Accept", "Cache-Control": "no-store"}
    if status == 503:
        headers["Retry-After"] = "5"
    return render("sparql.html", request, published, status=status, headers=headers, **values)


# --- ontology, shapes and dumps ------------------------------------------------------------------


def _index(triples: Iterable[ox.Triple]) -> dict[Any, dict[str, list[Any]]]:
    index: dict[Any, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for t in triples:
        index[t.subject][t.predicate.value].append(t.object)
    return index


def _text(values: list[Any], lang: str | None = "fr") -> str | None:
    """The literal in ``lang`` among ``values`` (else the first one)."""
    literals = [v for v in values if isinstance(v, ox.Literal)]
    for v in literals:
        if v.language == lang:
            return str(v.value)
    return str(literals[0].value) if literals else None


def _rdf_list(index: dict[Any, dict[str, list[Any]]], head: Any) -> list[Any]:
    items: list[Any] = []
    nil = expand("rdf:nil")
    while isinstance(head, ox.BlankNode | ox.NamedNode) and head.value != nil and len(items) < 100:
        entry = index.get(head, {})
        items += entry.get(expand("rdf:first"), [])
        rest = entry.get(expand("rdf:rest"), [])
        head = rest[0] if rest else None
    return items


def _property_rank(link: dict[str, Any] | None) -> tuple[int, str]:
    """Where a property comes in a shape's table: the reading order of the resource pages."""
    if link is None:
        return len(PROPERTY_ORDER) + 1, ""
    iri = link["iri"] or ""
    order = PROPERTY_ORDER.index(iri) if iri in PROPERTY_ORDER else len(PROPERTY_ORDER)
    return order, iri


class VocabularyView:
    """The ontology or the shapes, arranged for reading."""

    def __init__(self, request: Request, published: Published, triples: list[ox.Triple]) -> None:
        self.request = request
        self.published = published
        self.index = _index(triples)
        self.labels = labels_of(triples)

    def link(self, term: Any) -> dict[str, Any]:
        """A term as a link: its label, CURIE and where it is defined."""
        if not isinstance(term, ox.NamedNode):
            return {
                "text": str(term.value if isinstance(term, ox.Literal) else term),
                "curie": None,
                "href": None,
                "vocabulary": None,
                "iri": None,
            }
        iri = term.value
        found = vocabulary_of(iri)
        label = self.labels.get(iri) or PROPERTY_LABELS.get(iri) or CLASS_LABELS.get(iri)
        return {
            "text": label or short(iri),
            "curie": short(iri),
            "iri": iri,
            "href": (_base(self.request) + "/def/#" + term_anchor(iri))
            if iri.startswith(LG)
            else iri,
            "vocabulary": found[1] if found else None,
        }

    def entry(
        self, node: ox.NamedNode, anchor: str | None = None, *, scheme: bool = False
    ) -> dict[str, Any]:
        """Labels and definitions of a term (a concept scheme is named by its skos:prefLabel)."""
        props = self.index[node]
        names = (
            [expand("skos:prefLabel"), RDFS_LABEL]
            if scheme
            else [RDFS_LABEL, expand("skos:prefLabel")]
        )
        labels = next((props[n] for n in names if props.get(n)), [])
        definitions = props.get(expand("skos:definition"), [])
        return {
            "iri": node.value,
            "anchor": anchor or term_anchor(node.value),
            "curie": short(node.value),
            "label": _text(labels) or short(node.value),
            "label_en": _text(labels, "en"),
            "definitions": [
                v.value for v in definitions if isinstance(v, ox.Literal) and v.language == "fr"
            ],
            "definitions_en": [
                v.value for v in definitions if isinstance(v, ox.Literal) and v.language == "en"
            ],
            "facts": [],
            "same_as_property": False,
        }

    def ontology(self) -> dict[str, Any]:
        typed: dict[str, list[ox.NamedNode]] = defaultdict(list)
        for subject, props in self.index.items():
            if isinstance(subject, ox.NamedNode):
                for kind in props.get(RDF_TYPE, []):
                    typed[kind.value].append(subject)
        ontology = next(iter(typed.get(expand("owl:Ontology"), [])), None)
        head = self.index[ontology] if ontology is not None else {}
        used: set[str] = set()

        def own(kind: str) -> list[ox.NamedNode]:
            return sorted(
                (s for s in typed.get(expand(kind), []) if s.value.startswith(LG)),
                key=lambda s: s.value,
            )

        classes, properties = [], []
        for node in own("owl:Class"):
            entry = self.entry(node)
            used.add(entry["anchor"])
            for p, title in (("rdfs:subClassOf", "sous-classe de"),):
                values = [self.link(v) for v in self.index[node].get(expand(p), [])]
                if values:
                    entry["facts"].append({"title": title, "values": values})
            classes.append(entry)
        schemes_by_iri = {s.value for s in own("skos:ConceptScheme")}
        for node in own("owl:ObjectProperty") + own("owl:DatatypeProperty"):
            entry = self.entry(node)
            used.add(entry["anchor"])
            entry["kind"] = (
                "propriété d'objet"
                if node in typed[expand("owl:ObjectProperty")]
                else "propriété de valeur"
            )
            for p, title in (
                ("rdfs:domain", "domaine"),
                ("rdfs:range", "portée (range)"),
                ("rdfs:subPropertyOf", "sous-propriété de"),
            ):
                values = [self.link(v) for v in self.index[node].get(expand(p), [])]
                if values:
                    entry["facts"].append({"title": title, "values": values})
            if node.value in schemes_by_iri:
                entry["scheme_anchor"] = term_anchor(node.value) + "-liste"
            properties.append(entry)
        properties.sort(key=lambda e: e["curie"])
        concepts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for node in typed.get(expand("skos:Concept"), []):
            props = self.index[node]
            for scheme in props.get(expand("skos:inScheme"), []):
                concepts[scheme.value].append(
                    {
                        "anchor": term_anchor(node.value) if node.value.startswith(LG) else None,
                        "iri": node.value,
                        "notation": _text(props.get(expand("skos:notation"), [])),
                        "label": _text(props.get(expand("skos:prefLabel"), [])),
                        "label_en": _text(props.get(expand("skos:prefLabel"), []), "en"),
                    }
                )
        schemes = []
        for node in own("skos:ConceptScheme"):
            anchor = term_anchor(node.value)
            entry = self.entry(node, anchor + "-liste" if anchor in used else anchor, scheme=True)
            if anchor in used:  # one IRI names both a property and its list (punning)
                entry.update(definitions=[], definitions_en=[], same_as_property=anchor)
            entry["concepts"] = sorted(
                concepts.get(node.value, []), key=lambda c: c["notation"] or ""
            )
            schemes.append(entry)
        return {
            "title": _text(head.get(expand("dct:title"), [])) or "Ontologie labgraph",
            "title_en": _text(head.get(expand("dct:title"), []), "en"),
            "description": _text(head.get(expand("dct:description"), [])),
            "version": _text(head.get(expand("owl:versionInfo"), [])),
            "license": next((v.value for v in head.get(expand("dct:license"), [])), None),
            "namespace": LG,
            "prefix": "lg",
            "classes": classes,
            "properties": properties,
            "schemes": schemes,
            "reused": self.reused(),
        }

    def reused(self) -> list[dict[str, Any]]:
        """The terms of other vocabularies the data uses, grouped by where they come from."""
        uses: dict[str, list[str]] = defaultdict(list)
        for record, classes in mapping.CLASSES.items():
            for curie in classes:
                uses[expand(curie)].append(f"classe des fiches « {RECORD_LABELS[record]} »")
        for record, columns in mapping.TERMS.items():
            for column, (curie, _) in columns.items():
                uses[expand(curie)].append(f"{RECORD_LABELS[record]} : colonne {column}")
        uses[expand("schema:EventSeries")].append("classe des séries d'événements")
        for curie in ("dct:identifier", "skos:prefLabel", "skos:inScheme", "rdf:type"):
            uses[expand(curie)].append(
                "toutes les fiches"
                if curie in ("dct:identifier", "rdf:type")
                else "listes contrôlées"
            )
        groups: dict[str, dict[str, Any]] = {}
        for iri, where in sorted(uses.items()):
            found = vocabulary_of(iri)
            if found is None or found[0] == LG:
                continue
            ns, name, page = found
            group = groups.setdefault(
                ns,
                {
                    "namespace": ns,
                    "name": name,
                    "page": page,
                    "prefix": short(iri).split(":", 1)[0],
                    "terms": [],
                },
            )
            group["terms"].append(
                {
                    "iri": iri,
                    "curie": short(iri),
                    "label": PROPERTY_LABELS.get(iri) or CLASS_LABELS.get(iri) or "",
                    "uses": sorted(set(where)),
                }
            )
        return sorted(groups.values(), key=lambda g: fold(g["name"]))

    def shapes(self) -> dict[str, Any]:
        sh = PREFIXES["sh"]
        out = []
        for subject, props in self.index.items():
            if not isinstance(subject, ox.NamedNode) or ox.NamedNode(
                sh + "NodeShape"
            ) not in props.get(RDF_TYPE, []):
                continue
            entry = self.entry(subject, subject.value.rsplit("/", 1)[-1])
            entry["targets"] = [self.link(v) for v in props.get(sh + "targetClass", [])]
            entry["rules"] = self.constraints(props)
            entry["message"] = _text(props.get(sh + "message", []))
            entry["properties"] = []
            for shape in props.get(sh + "property", []):
                p = self.index.get(shape, {})
                path = next(iter(p.get(sh + "path", [])), None)
                low = _text(p.get(sh + "minCount", [])) or "0"
                high = _text(p.get(sh + "maxCount", [])) or "n"
                entry["properties"].append(
                    {
                        "path": self.link(path) if path is not None else None,
                        "count": low if low == high else f"{low}..{high}",
                        "rules": self.constraints(p),
                        "message": _text(p.get(sh + "message", [])),
                        "message_en": _text(p.get(sh + "message", []), "en"),
                    }
                )
            entry["properties"].sort(key=lambda r: _property_rank(r["path"]))
            out.append(entry)
        classes = {c: i for i, c in enumerate(MAIN_CLASSES)}
        out.sort(
            key=lambda e: (
                min(
                    (classes.get(t["iri"], len(classes)) for t in e["targets"]),
                    default=len(classes) + 1,
                ),
                e["iri"],
            )
        )
        return {"shapes": out}

    def constraints(self, props: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """The constraints of a shape other than path, counts and messages, as readable lines."""
        sh = PREFIXES["sh"]
        names = {
            "datatype": "type de donnée",
            "class": "classe",
            "nodeKind": "nature",
            "node": "conforme à",
            "hasValue": "valeur",
            "pattern": "motif",
            "languageIn": "langues",
            "or": "l'un de",
        }
        rules = []
        for local, title in names.items():
            for value in props.get(sh + local, []):
                if local in ("languageIn", "or"):
                    members = _rdf_list(self.index, value)
                    if local == "or":
                        members = [
                            m2
                            for m in members
                            for m2 in self.index.get(m, {}).get(sh + "datatype", [])
                        ]
                    links = [self.link(m) for m in members]
                elif local == "node" and isinstance(value, ox.NamedNode):
                    link = self.link(value)
                    link["href"] = "#" + value.value.rsplit("/", 1)[-1]
                    links = [link]
                else:
                    links = [self.link(value)]
                rules.append({"title": title, "values": links})
        return rules


def vocabulary_html(
    request: Request, published: Published, triples: list[ox.Triple], title: str
) -> bytes:
    """The ontology (/def/) or the shapes (/shapes) as a page to read."""
    view = VocabularyView(request, published, triples)
    is_shapes = any(
        t.object.value == PREFIXES["sh"] + "NodeShape"
        for t in triples
        if t.predicate.value == RDF_TYPE
    )
    path = "/shapes" if is_shapes else "/def/"
    alternates = [
        {
            "href": f"{_base(request)}{path}?format={f.extension}",
            "media_type": f.media_type,
            "label": f.label,
        }
        for f in (formats.TURTLE, formats.JSONLD, formats.RDFXML, formats.NTRIPLES)
    ]
    common = {
        "title": title,
        "alternates": alternates,
        "head_links": [
            {"rel": "alternate", "type": a["media_type"], "href": a["href"]} for a in alternates
        ],
    }
    if is_shapes:
        html = render_text(
            "shapes.html",
            request,
            published,
            section="def",
            description="Les formes SHACL qui valident le graphe labgraph.",
            **common,
            **view.shapes(),
        )
    else:
        data = view.ontology()
        html = render_text(
            "vocabulary.html",
            request,
            published,
            section="def",
            description=data["description"] or title,
            **common,
            **{k: v for k, v in data.items() if k not in ("title", "description")},
        )
    return html.encode("utf-8")


def dumps_page(request: Request, published: Published) -> Response:
    """The files of the current release with their sizes and SHA-256 digests."""
    release = published.release
    groups = []
    others = []
    if release is not None:
        files = release.manifest["files"]
        for stem, title in (
            ("labgraph", "Graphe complet"),
            *(
                (
                    DUMP_NAMES[t],
                    BROWSE[t].title
                    if t in BROWSE
                    else {"figure": "Chiffres datés", "source": "Sources"}.get(t, t),
                )
                for t in DUMP_NAMES
            ),
        ):
            rows = []
            for name in sorted(files):
                parts = name.split(".")
                if parts[0] != stem or len(parts) < 2:
                    continue
                fmt = formats.by_extension(parts[1], formats.DUMP_FORMATS)
                if fmt is None:
                    continue
                entry = files[name]
                rows.append(
                    {
                        "name": name,
                        "href": f"{_base(request)}/dumps/{name}",
                        "format": fmt.label,
                        "gzip": parts[-1] == "gz",
                        "media_type": "application/gzip" if parts[-1] == "gz" else fmt.media_type,
                        "bytes": int(entry["bytes"]),
                        "sha256": entry["sha256"],
                    }
                )
            if rows:
                rows.sort(
                    key=lambda r: (
                        formats.DUMP_FORMATS.index(
                            formats.by_extension(r["name"].split(".")[1], formats.DUMP_FORMATS)
                            or formats.NTRIPLES
                        ),
                        r["gzip"],
                    )
                )
                groups.append({"stem": stem, "title": title, "files": rows})
        for name, path, title in (
            ("catalog.ttl", "/catalog.ttl", "Catalogue DCAT-AP (Turtle)"),
            ("catalog.jsonld", "/catalog.jsonld", "Catalogue DCAT-AP (JSON-LD)"),
            ("catalog.rdf", "/catalog.rdf", "Catalogue DCAT-AP (RDF/XML)"),
            ("void.ttl", "/.well-known/void", "Description VoID"),
            ("ontology.ttl", "/def/", "Ontologie"),
            ("shapes.ttl", "/shapes", "Formes SHACL"),
            ("context.jsonld", "/context.jsonld", "Contexte JSON-LD"),
        ):
            if name in files:
                others.append(
                    {
                        "name": name,
                        "title": title,
                        "href": _base(request) + path,
                        "bytes": int(files[name]["bytes"]),
                        "sha256": files[name]["sha256"],
                    }
                )
    manifest = release.manifest if release is not None else {}
    return cached_page(
        request,
        published,
        "dumps.html",
        section="dumps",
        groups=groups,
        others=others,
        built=manifest.get("built"),
        validation=manifest.get("validation"),
        counts=manifest.get("counts", {}),
        description="Téléchargements du graphe labgraph : N-Triples, Turtle, "
        "JSON-LD, N-Quads, avec tailles et empreintes SHA-256.",
    )


# --- routes --------------------------------------------------------------------------------------

router = APIRouter()


@router.api_route(
    "/", methods=["GET", "HEAD"], summary="Home page (HTML, French)", response_class=HTMLResponse
)
async def home(request: Request) -> Response:
    async with request.app.state.runtime.use() as published:
        data = home_data(published)
        base = _base(request)
        labs = load_items(published, BROWSE["lab"])  # the curl example names a real lab
        described = next((i for i in labs if i.region and i.date and i.links), None)
        lab = (described or labs[0]).iri if labs else None
        path = request.app.state.runtime.minter.local_path(lab) if lab else None
        example = base + path if path else (lab or base + "/id/lab/{id}")
        return cached_page(
            request,
            published,
            "home.html",
            section="home",
            data=data,
            counts=data["counts"],
            browse=list(BROWSE.values()),
            built_date=data["built"][:10],
            example_iri=example,
            examples=[
                {
                    "title": e.title,
                    "href": base + "/sparql?" + urlencode({"example": e.slug}) + "#editeur",
                }
                for e in examples()[:5]
            ],
            json_ld=script_json(dataset_json_ld(request, published, data)),
            head_links=[{"rel": "alternate", "type": "text/turtle", "href": base + "/catalog.ttl"}],
            max_region=max((r["count"] for r in data["by"]["region"]), default=1),
            max_kind=max((r["count"] for r in data["by"]["kind"]), default=1),
            events=[
                {**e, "href": local_href(request, published, e["event"])} for e in data["events"]
            ],
            network_href=local_href(request, published, data["network"]["figure"])
            if data["network"]
            else None,
            timeout=request.app.state.runtime.settings.query_timeout,
        )


def _browse_route(browse: Browse) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        async with request.app.state.runtime.use() as published:
            return browse_page(request, published, browse)

    endpoint.__name__ = f"browse_{browse.type}"
    return endpoint


for _browse in BROWSE.values():
    router.add_api_route(
        f"/{_browse.type}/",
        _browse_route(_browse),
        methods=["GET", "HEAD"],
        response_class=HTMLResponse,
        summary=f"List of {_browse.type} records (HTML): ?q=, region, kind, year, sort, page",
    )
