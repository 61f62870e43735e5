"""HTML for people: resource pages, the query page, messages. Jinja2 with autoescape.

Everything echoed from the data or from a query goes through Jinja2's autoescaping; the only
``| safe`` value is the schema.org JSON-LD block, which is serialised by ``json.dumps`` with
``<``, ``>`` and ``&`` escaped so it cannot close its ``<script>`` element.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import formats
from ..store import Busy, Job, QueryError, QueryTimeout, ResultTooLarge
from ..vocab import PREFIXES, expand
from .runtime import Published

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)

RDF_TYPE = expand("rdf:type")
LABEL_PROPERTIES = (expand("rdfs:label"), expand("skos:prefLabel"), expand("dct:title"))

#: French labels of the reused properties a page shows (ours come from the ontology).
PROPERTY_LABELS: dict[str, str] = {expand(k): v for k, v in {
    "rdf:type": "type", "rdfs:label": "nom", "skos:altLabel": "autre nom",
    "skos:prefLabel": "libellé", "skos:inScheme": "liste", "dct:identifier": "identifiant",
    "org:unitOf": "porté par", "org:classification": "type d'administration",
    "dct:spatial": "région", "schema:location": "lieu", "schema:foundingDate": "création",
    "foaf:homepage": "site web", "dct:description": "description",
    "prov:wasDerivedFrom": "source", "org:subOrganizationOf": "rattachée à",
    "org:identifier": "SIREN", "owl:sameAs": "même que", "dct:type": "genre",
    "schema:startDate": "début", "schema:endDate": "fin", "schema:superEvent": "fait partie de",
    "schema:organizer": "organisé par", "schema:about": "concerne",
    "schema:keywords": "thème", "dct:subject": "porte sur", "rdf:value": "valeur",
    "dct:date": "date", "dct:title": "titre", "dct:publisher": "éditeur",
    "dct:issued": "publié le", "foaf:page": "page", "rdfs:comment": "note",
    "lg:carriedBy": "porté par", "lg:partner": "partenaire", "lg:skill": "compétence",
    "lg:measure": "mesure", "lg:qualifier": "précision", "lg:edition": "édition",
}.items()}

CLASS_LABELS: dict[str, str] = {expand(k): v for k, v in {
    "lg:Lab": "Laboratoire d'innovation publique", "cv:PublicOrganisation": "Institution",
    "schema:Project": "Projet", "schema:Event": "Événement", "schema:EventSeries": "Série",
    "lg:Figure": "Chiffre daté", "dct:BibliographicResource": "Source",
}.items()}


def _context(request: Request, published: Published, **values: Any) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    here: Callable[[str], str] = lambda path: base + path  # noqa: E731
    return {"here": here, "release_id": published.id, **values}


def render(name: str, request: Request, published: Published, status: int = 200,
           headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:
    html = env.get_template(name).render(_context(request, published, **values))
    return HTMLResponse(html, status_code=status, headers=headers)


def local_href(request: Request, published: Published, iri: str) -> str | None:
    """Where a browser should go for ``iri``: its page on this server, or the IRI itself."""
    runtime = request.app.state.runtime
    path = runtime.minter.local_path(iri)
    base = str(request.base_url).rstrip("/")
    if path is not None and path.startswith("/id/"):
        return base + "/doc/" + path[len("/id/"):] + ".html"
    if iri.startswith(("http://", "https://")):
        return iri
    return None


def _short(iri: str) -> str:
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and "/" not in iri[len(ns):]:
            return f"{prefix}:{iri[len(ns):]}"
    return iri


def _labels(triples: list[ox.Triple]) -> dict[str, str]:
    """Best label per node: French first, then any."""
    found: dict[str, tuple[int, str]] = {}
    for t in triples:
        if t.predicate.value in LABEL_PROPERTIES and isinstance(t.object, ox.Literal):
            rank = 0 if t.object.language == "fr" else 1
            current = found.get(t.subject.value)
            if current is None or rank < current[0]:
                found[t.subject.value] = (rank, t.object.value)
    return {k: v for k, (_, v) in found.items()}


def resource_html(request: Request, published: Published, iri: str,
                  triples: list[ox.Triple]) -> bytes:
    """The HTML representation of a thing's document."""
    labels = _labels(triples)
    outgoing: dict[str, list[dict[str, Any]]] = {}
    incoming: dict[str, list[dict[str, Any]]] = {}
    types = []
    for t in triples:
        if t.subject.value == iri:
            if t.predicate.value == RDF_TYPE:
                types.append(CLASS_LABELS.get(t.object.value, _short(t.object.value)))
                continue
            outgoing.setdefault(t.predicate.value, []).append(_value(request, published, t.object,
                                                                     labels))
        elif isinstance(t.object, ox.NamedNode) and t.object.value == iri:
            incoming.setdefault(t.predicate.value, []).append({
                "text": labels.get(t.subject.value, t.subject.value),
                "href": local_href(request, published, t.subject.value)})
    runtime = request.app.state.runtime
    path = runtime.minter.local_path(iri) or ""
    stem = str(request.base_url).rstrip("/") + "/doc/" + path[len("/id/"):]
    alternates = [{"href": f"{stem}.{f.extension}", "media_type": f.media_type, "label": f.label}
                  for f in formats.DOCUMENT_FORMATS if f is not formats.HTML]
    html = env.get_template("resource.html").render(_context(
        request, published, iri=iri, label=labels.get(iri, iri), types=sorted(set(types)),
        outgoing=_rows(outgoing), incoming=_rows(incoming), alternates=alternates,
        schema_org=schema_org_json(iri, triples, labels),
    ))
    return html.encode("utf-8")


def _rows(props: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = [{"predicate": p, "predicate_label": PROPERTY_LABELS.get(p, _short(p)),
             "values": sorted(v, key=lambda x: x["text"])} for p, v in props.items()]
    return sorted(rows, key=lambda r: (r["predicate"] != expand("rdfs:label"),
                                       r["predicate_label"]))


def _value(request: Request, published: Published, term: Any,
           labels: dict[str, str]) -> dict[str, Any]:
    if isinstance(term, ox.NamedNode):
        return {"text": labels.get(term.value, term.value),
                "href": local_href(request, published, term.value)}
    if isinstance(term, ox.Literal):
        note = f"@{term.language}" if term.language else None
        return {"text": term.value, "href": None, "note": note}
    return {"text": str(term), "href": None}


_SCHEMA_TYPES = {expand("lg:Lab"): "GovernmentOrganization",
                 expand("cv:PublicOrganisation"): "GovernmentOrganization",
                 expand("schema:Project"): "Project", expand("schema:Event"): "Event"}


def schema_org_json(iri: str, triples: list[ox.Triple], labels: dict[str, str]) -> str:
    """A schema.org description for search engines, safe to embed in <script>."""
    kind = "Thing"
    data: dict[str, Any] = {"@context": "https://schema.org", "@id": iri}
    for t in triples:
        if t.subject.value != iri:
            continue
        p, o = t.predicate.value, t.object
        if p == RDF_TYPE and o.value in _SCHEMA_TYPES:
            kind = _SCHEMA_TYPES[o.value]
        elif p == expand("foaf:homepage"):
            data["url"] = o.value
        elif p == expand("dct:description"):
            data["description"] = o.value
        elif p == expand("schema:foundingDate"):
            data["foundingDate"] = o.value
        elif p in (expand("schema:startDate"), expand("schema:endDate")):
            data[p.rsplit("/", 1)[-1]] = o.value
        elif p in (expand("org:unitOf"), expand("org:subOrganizationOf")):
            data["parentOrganization"] = {"@type": "GovernmentOrganization", "@id": o.value,
                                          "name": labels.get(o.value, o.value)}
        elif p == expand("schema:location") and isinstance(o, ox.Literal):
            data.setdefault("location", []).append(o.value)
    data["@type"] = kind
    data["name"] = labels.get(iri, iri)
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def not_found(request: Request, published: Published, path: str) -> Response:
    return render("message.html", request, published, status=404, title="Introuvable",
                  message=f"Aucune ressource à l'adresse {path} dans ce jeu de données.")


def query_form(request: Request, published: Published, query: str = "") -> Response:
    return render("sparql.html", request, published, query=query or DEFAULT_QUERY, table=None,
                  boolean=None, error=None, downloads={})


DEFAULT_QUERY = """PREFIX lg: <https://w3id.org/labgraph/def/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?lab ?name WHERE { ?lab a lg:Lab ; rdfs:label ?name } ORDER BY ?name LIMIT 50"""


async def sparql_page(request: Request, published: Published, query: str) -> Response:
    """Run a query for a browser and render the results table (works without JavaScript)."""
    settings = request.app.state.runtime.settings
    base = str(request.base_url).rstrip("/") + "/sparql?"
    downloads = {"csv": base + urlencode({"query": query, "format": "csv"}),
                 "json": base + urlencode({"query": query, "format": "json"})}
    values: dict[str, Any] = {"query": query, "table": None, "boolean": None, "error": None,
                              "downloads": downloads}
    status = 200
    try:
        answer = await published.engine.pool.run(Job(query, results_format="json",
                                                      graph_format=None))
        parsed = json.loads(answer.body)
        if "boolean" in parsed:
            values["boolean"] = parsed["boolean"]
        else:
            variables = parsed["head"]["vars"]
            rows = []
            for binding in parsed["results"]["bindings"]:
                row = []
                for var in variables:
                    cell = binding.get(var)
                    if cell is None:
                        row.append({"text": "", "href": None})
                    elif cell["type"] == "uri":
                        row.append({"text": cell["value"],
                                    "href": local_href(request, published, cell["value"])})
                    else:
                        row.append({"text": cell["value"], "href": None})
                rows.append(row)
            values["table"] = {"variables": variables, "rows": rows}
    except QueryError as err:
        values["error"], status = f"Requête invalide : {err}", 400
    except QueryTimeout:
        values["error"], status = (f"Requête arrêtée après {settings.query_timeout:g} s "
                                   "(limite du service)."), 503
    except Busy:
        values["error"], status = "Le service est occupé ; réessayez dans un instant.", 503
    except ResultTooLarge:
        values["error"], status = "Résultat trop volumineux : ajoutez LIMIT.", 422
    except Exception as err:  # NotAcceptable cannot happen for JSON; anything else is shown
        values["error"], status = f"Erreur : {err}", 400
    return render("sparql.html", request, published, status=status,
                  headers={"Vary": "Accept"}, **values)


def dumps_page(request: Request, published: Published) -> Response:
    release = published.release
    files = sorted(release.manifest["files"].items()) if release else []
    rows = "".join(f"<li><a href='/dumps/{name}'>{name}</a> ({entry['bytes']} o)</li>"
                   for name, entry in files if name.split(".")[0] in _DUMP_STEMS)
    return render("message.html", request, published, title="Téléchargements",
                  message="Les fichiers de la version courante sont listés ci-dessous.",
                  ) if not rows else HTMLResponse(
        env.from_string("{% extends 'base.html' %}{% block main %}<h1>Téléchargements</h1>"
                        "<ul>{% for name, size in files %}<li><a href='{{ here('/dumps/' ~ name)"
                        " }}'>{{ name }}</a> ({{ size }} octets)</li>{% endfor %}</ul>"
                        "{% endblock %}").render(_context(
                            request, published,
                            files=[(n, e["bytes"]) for n, e in files
                                   if n.split(".")[0] in _DUMP_STEMS])))


_DUMP_STEMS = {"labgraph", "labs", "institutions", "projects", "events", "figures", "sources"}


def vocabulary_html(request: Request, published: Published, triples: list[ox.Triple],
                    title: str) -> bytes:
    labels = _labels(triples)
    subjects = sorted({t.subject.value for t in triples if isinstance(t.subject, ox.NamedNode)})
    rows = []
    for s in subjects:
        props: dict[str, list[dict[str, Any]]] = {}
        for t in triples:
            if t.subject.value == s:
                props.setdefault(t.predicate.value, []).append(_value(request, published,
                                                                      t.object, labels))
        rows.append({"iri": s, "label": labels.get(s, _short(s)), "props": _rows(props)})
    template = env.from_string(
        "{% extends 'base.html' %}{% block title %}{{ title }}{% endblock %}{% block main %}"
        "<h1>{{ title }}</h1>{% for r in rows %}<section id='{{ r.iri.rsplit('/', 1)[-1] }}'>"
        "<h2>{{ r.label }}</h2><p class='iri'><code>{{ r.iri }}</code></p><table class='props'>"
        "{% for p in r.props %}<tr><th scope='row'>{{ p.predicate_label }}</th><td>"
        "{% for v in p['values'] %}{{ v.text }}{% if not loop.last %}<br>{% endif %}{% endfor %}"
        "</td></tr>{% endfor %}</table></section>{% endfor %}{% endblock %}")
    return template.render(_context(request, published, title=title, rows=rows)).encode()


router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], summary="Home page (HTML)",
                  response_class=HTMLResponse)
async def home(request: Request) -> Response:
    async with request.app.state.runtime.use() as published:
        counts = published.release.manifest["counts"] if published.release else {}
        return render("message.html", request, published, title="labgraph",
                      message=f"Le réseau des laboratoires d'innovation publique : "
                      f"{counts.get('lab', 0)} labs, {counts.get('triples', 0)} triplets.")
