"""Pages for people, read from a real server over the real data.

Each test checks what a person relies on: figures that agree with SPARQL, links that lead both
ways, machine-readable alternates that exist, filters and pages that select what they say, every
example query answering, and anything echoed from a query arriving escaped.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from labgraph.web import pages

REPO = Path(__file__).resolve().parents[1]
QUERIES = sorted((REPO / "queries").glob("*.rq"))
HTML = {"Accept": "text/html"}
PREFIXES = """PREFIX lg: <https://w3id.org/labgraph/def/>
PREFIX cv: <http://data.europa.eu/m8g/>
PREFIX schema: <https://schema.org/>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX org: <http://www.w3.org/ns/org#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX adminkind: <https://w3id.org/labgraph/def/administration-kind/>
"""
XSS = "<script>alert(1)</script>"


@dataclass
class Page:
    """What the tests read from an HTML page: its links, ids, scripts, tables and text."""

    url: str
    links: list[dict[str, str]] = field(default_factory=list)  # <a>
    head_links: list[dict[str, str]] = field(default_factory=list)  # <link>
    scripts: list[dict[str, str]] = field(default_factory=list)
    ids: dict[str, dict[str, str]] = field(default_factory=dict)
    tables: list[list[list[str]]] = field(default_factory=list)  # table → body rows → cells
    h1: list[str] = field(default_factory=list)
    text: str = ""
    textarea: str | None = None
    html_attrs: dict[str, str] = field(default_factory=dict)
    labels_for: set[str] = field(default_factory=set)
    controls: list[dict[str, str]] = field(default_factory=list)

    def hrefs(self) -> list[str]:
        return [urljoin(self.url, a["href"]) for a in self.links if a.get("href")]

    def link_texts(self, href_part: str) -> list[str]:
        return [a["_text"].strip() for a in self.links if href_part in a.get("href", "")]


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.stack: list[dict[str, str]] = []
        self.capture: list[tuple[str, dict[str, str], list[str]]] = []
        self.texts: list[str] = []
        self.in_tbody = 0

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if "id" in attrs:
            self.page.ids[attrs["id"]] = {"tag": tag, **attrs}
        if tag == "html":
            self.page.html_attrs = attrs
        elif tag == "link":
            self.page.head_links.append(attrs)
        elif tag == "label" and "for" in attrs:
            self.page.labels_for.add(attrs["for"])
        elif tag in ("input", "select", "textarea") and attrs.get("type") not in (
            "hidden",
            "submit",
        ):
            self.page.controls.append({"tag": tag, **attrs})
        elif tag == "table":
            self.page.tables.append([])
        elif tag == "tbody":
            self.in_tbody += 1
        elif tag == "tr" and self.in_tbody and self.page.tables:
            self.page.tables[-1].append([])
        if tag in ("a", "script", "h1", "textarea", "td", "th"):
            self.capture.append((tag, attrs, []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.in_tbody -= 1
        for i in range(len(self.capture) - 1, -1, -1):
            if self.capture[i][0] == tag:
                name, attrs, parts = self.capture.pop(i)
                text = "".join(parts)
                if name == "a":
                    self.page.links.append({**attrs, "_text": text})
                elif name == "script":
                    self.page.scripts.append({**attrs, "_text": text})
                elif name == "h1":
                    self.page.h1.append(text.strip())
                elif name == "textarea":
                    self.page.textarea = text
                elif self.in_tbody and self.page.tables and self.page.tables[-1]:
                    self.page.tables[-1][-1].append(" ".join(text.split()))
                break

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        for _, _, parts in self.capture:
            parts.append(data)


def parse(response: httpx.Response) -> Page:
    assert response.headers["content-type"].startswith("text/html"), response.headers
    page = Page(str(response.url))
    reader = _Reader(page)
    reader.feed(response.text)
    page.text = " ".join("".join(reader.texts).split())
    return page


def get_page(client: httpx.Client, path: str, status: int = 200, **params: str) -> Page:
    response = client.get(path, params=params or None, headers=HTML)
    assert response.status_code == status, response.text[:500]
    return parse(response)


def sparql(client: httpx.Client, query: str) -> list[dict[str, dict[str, str]]]:
    """Bindings of a SELECT run through the real endpoint (waiting politely on 429)."""
    for _ in range(20):
        response = client.get(
            "/sparql",
            params={"query": query},
            headers={"Accept": "application/sparql-results+json"},
        )
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("retry-after", "1")))
    assert response.status_code == 200, response.text
    bindings: list[dict[str, dict[str, str]]] = response.json()["results"]["bindings"]
    return bindings


def count(client: httpx.Client, where: str) -> int:
    rows = sparql(client, PREFIXES + f"SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE {{ {where} }}")
    return int(rows[0]["n"]["value"])


def next_link(response: httpx.Response) -> str | None:
    for part in response.headers.get("link", "").split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="next"', part)
        if match:
            return match.group(1)
    return None


# --- home ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(client: httpx.Client) -> Page:
    return get_page(client, "/")


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("lab", "?s a lg:Lab"),
        ("institution", "?s a cv:PublicOrganisation"),
        ("project", "?s a schema:Project"),
        ("event", "?s a schema:Event"),
    ],
)
def test_home_counts_equal_sparql_counts(
    client: httpx.Client, home: Page, key: str, where: str
) -> None:
    shown = re.search(rf'id="count-{key}".*?<data value="(\d+)"', client.get("/").text, re.S)
    assert shown is not None
    assert int(shown.group(1)) == count(client, where)


def test_home_counts_triples_and_dates_the_release(
    client: httpx.Client, releases_dir: Path, home: Page
) -> None:
    text = client.get("/").text
    triples = re.search(r'id="count-triples".*?<data value="(\d+)"', text, re.S)
    assert triples is not None
    rows = sparql(client, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert int(triples.group(1)) == int(rows[0]["n"]["value"])
    manifest = json.loads((releases_dir / "current" / "manifest.json").read_text())
    assert f'<time datetime="{manifest["built"]}">' in text
    assert home.html_attrs.get("lang") == "fr"


def test_home_breaks_labs_down_by_region_and_kind(client: httpx.Client, home: Page) -> None:
    in_brittany = count(client, "?s a lg:Lab ; dct:spatial <http://id.insee.fr/geo/region/53>")
    row = next(r for r in home.tables[0] if r[0] == "Bretagne")
    assert int(row[1]) == in_brittany
    assert sum(int(r[1]) for r in home.tables[0]) == count(client, "?s a lg:Lab")
    prefectures = count(client, "?s a lg:Lab ; org:classification adminkind:prefecture")
    assert any(int(r[1]) == prefectures for r in home.tables[1] if r[0].startswith("Préfecture"))
    assert any("/lab/?region=53" in h for h in home.hrefs())
    assert any("/lab/?kind=prefecture" in h for h in home.hrefs())


def test_home_shows_latest_events_and_links_each_audience(home: Page) -> None:
    hrefs = home.hrefs()
    assert sum("/doc/event/" in h for h in hrefs) >= 3
    for path in ("/catalog.ttl", "/dumps/", "/sparql", "/context.jsonld", "/def/", "?example="):
        assert any(path in h for h in hrefs), path
    assert "303 See Other" in home.text
    dataset = json.loads(
        next(s["_text"] for s in home.scripts if s.get("type") == "application/ld+json")
    )
    assert dataset["@type"] == "Dataset"


def test_home_revalidates_with_its_etag(client: httpx.Client) -> None:
    first = client.get("/")
    again = client.get("/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


# --- resource pages ------------------------------------------------------------------------------


def test_lab_page_links_its_host_and_the_host_links_back(client: httpx.Client) -> None:
    lab = get_page(client, "/doc/lab/ti-lab.html")
    assert lab.h1 == ["Ti Lab"]
    assert lab.link_texts("/doc/institution/region-bretagne.html") == ["Région Bretagne"]
    assert lab.link_texts("/doc/institution/prefecture-region-bretagne.html") == [
        "Préfecture de la région Bretagne"
    ]
    assert any("/doc/project/labacces.html" in h for h in lab.hrefs())  # projects it carries
    assert any("/doc/event/inauguration-ti-lab.html" in h for h in lab.hrefs())  # its events
    host = get_page(client, "/doc/institution/region-bretagne.html")
    assert host.link_texts("/doc/lab/ti-lab.html") == ["Ti Lab"]
    assert "Laboratoires portés" in host.text


def test_resource_page_shows_labels_not_iris(client: httpx.Client) -> None:
    lab = get_page(client, "/doc/lab/ti-lab.html")
    texts = [a["_text"].strip() for a in lab.links]
    assert "Bretagne" in texts  # dct:spatial, an INSEE IRI, shown by its label
    assert "Préfecture de région (services de l'État en région)" in texts  # a SKOS concept
    assert "Laboratoire d'innovation publique" in texts  # rdf:type lg:Lab
    for label in ("porté par", "région", "type d'administration", "création", "source"):
        assert label in lab.text
    assert not any(
        t.startswith(("http://id.insee.fr", "https://w3id.org/labgraph/def/")) for t in texts
    )


def test_resource_page_cites_every_source_of_the_record(client: httpx.Client) -> None:
    rows = sparql(
        client,
        PREFIXES + "SELECT ?src WHERE { "
        "<https://w3id.org/labgraph/id/lab/lab-o-occitanie> prov:wasDerivedFrom ?src }",
    )
    page = get_page(client, "/doc/lab/lab-o-occitanie.html")
    sources = {row["src"]["value"] for row in rows}
    assert sources and sources <= set(page.hrefs())
    assert "Sources" in page.text


def test_resource_page_offers_every_alternate(client: httpx.Client) -> None:
    page = get_page(client, "/doc/lab/ti-lab.html")
    alternates = {
        link["type"]: link["href"] for link in page.head_links if link.get("rel") == "alternate"
    }
    assert set(alternates) == {
        "text/turtle",
        "application/ld+json",
        "application/rdf+xml",
        "application/n-triples",
    }
    visible = {a.get("type"): a["href"] for a in page.links if a.get("type")}
    for media_type, href in alternates.items():
        assert visible[media_type] == href
        response = client.get(href)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        assert "ti-lab" in response.text


def test_schema_org_description_parses_and_names_the_host(client: httpx.Client) -> None:
    page = get_page(client, "/doc/lab/ti-lab.html")
    blocks = [s["_text"] for s in page.scripts if s.get("type") == "application/ld+json"]
    assert len(blocks) == 1
    data = json.loads(blocks[0])
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "GovernmentOrganization"
    assert data["name"] == "Ti Lab"
    parents = data["parentOrganization"]
    assert {p["name"] for p in parents} == {"Région Bretagne", "Préfecture de la région Bretagne"}
    event = json.loads(
        next(
            s["_text"]
            for s in get_page(client, "/doc/event/mois-innovation-publique-2022.html").scripts
            if s.get("type") == "application/ld+json"
        )
    )
    assert event["@type"] == "Event" and event["startDate"] == "2022-11-02"


def test_schema_org_json_cannot_close_its_script_element() -> None:
    data = {"name": "</script><script>alert(1)</script>", "note": "a & b <!-- c"}
    text = pages.script_json(data)
    assert "</script" not in text.lower() and "<!--" not in text and "&" not in text
    assert json.loads(text) == data


def test_figure_page_is_named_by_what_it_counts(client: httpx.Client) -> None:
    page = get_page(client, "/doc/figure/ditp-reseau-lab-count-2025-09.html")
    assert page.h1 == ["Nombre de laboratoires : 150 (septembre 2025)"]
    ditp = get_page(client, "/doc/institution/ditp.html")
    assert any("/doc/figure/ditp-reseau-lab-count-2025-09.html" in h for h in ditp.hrefs())


@pytest.mark.parametrize(
    "path", ["/doc/lab/no-such-lab", "/doc/lab/no-such-lab.html", "/id/lab/no-such-lab"]
)
def test_unknown_id_gets_a_404_page(client: httpx.Client, path: str) -> None:
    page = get_page(client, path, status=404)
    assert page.h1 == ["Introuvable"]
    assert "/lab/no-such-lab" in page.text
    assert any(h.endswith("/lab/") for h in page.hrefs())


# --- browse pages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("lab", "?s a lg:Lab"),
        ("institution", "?s a cv:PublicOrganisation"),
        ("project", "?s a schema:Project"),
        ("event", "?s a schema:Event"),
    ],
)
def test_browse_pages_list_every_record_across_pages(
    client: httpx.Client, kind: str, where: str
) -> None:
    seen: list[str] = []
    url: str | None = f"/{kind}/"
    while url:
        response = client.get(url, headers=HTML)
        assert response.status_code == 200
        page = parse(response)
        seen += [h for h in page.hrefs() if f"/doc/{kind}/" in h]
        url = next_link(response)
    rows = sparql(client, PREFIXES + f"SELECT DISTINCT ?s WHERE {{ {where} }}")
    expected = {r["s"]["value"].rsplit("/", 1)[-1] for r in rows}
    names = [urlsplit(h).path.rsplit("/", 1)[-1].removesuffix(".html") for h in seen]
    assert expected <= set(names)


def test_long_list_is_paginated_with_link_next(client: httpx.Client) -> None:
    first = client.get("/lab/", headers=HTML)
    total = count(client, "?s a lg:Lab")
    assert total > pages.PAGE_SIZE
    following = next_link(first)
    assert following is not None and "page=2" in following
    assert any(link.get("rel") == "next" for link in parse(first).head_links)
    second = client.get(following, headers=HTML)
    assert second.status_code == 200
    assert 'rel="prev"' in second.headers["link"]
    rows = len(parse(first).tables[0]) + len(parse(second).tables[0])
    assert rows == total
    assert next_link(second) is None
    small = client.get("/lab/", params={"per_page": "100"}, headers=HTML)
    assert next_link(small) is None and len(parse(small).tables[0]) == total


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"region": "53"}, "?s a lg:Lab ; dct:spatial <http://id.insee.fr/geo/region/53>"),
        ({"kind": "prefecture"}, "?s a lg:Lab ; org:classification adminkind:prefecture"),
        ({"year": "2017"}, "?s a lg:Lab ; schema:foundingDate ?y FILTER(STR(?y) = '2017')"),
        (
            {"kind": "prefecture", "year": "2017"},
            "?s a lg:Lab ; org:classification adminkind:prefecture ; schema:foundingDate ?y "
            "FILTER(STR(?y) = '2017')",
        ),
    ],
)
def test_browse_filters_select_what_sparql_selects(
    client: httpx.Client, params: dict[str, str], where: str
) -> None:
    page = get_page(client, "/lab/", per_page="100", **params)
    assert len(page.tables[0]) == count(client, where) > 0
    for name, value in params.items():
        chosen = page.ids[name]
        assert chosen["tag"] == "select"
        assert (
            f'<option value="{value}" selected>'
            in client.get("/lab/", params=params, headers=HTML).text
        )


def test_event_filters_by_year_and_sorts_by_date(client: httpx.Client) -> None:
    html = client.get("/event/", params={"per_page": "100"}, headers=HTML).text
    dates = re.findall(r'<td class="date"><time datetime="([^"]+)"', html)
    assert len(dates) > 10
    assert dates == sorted(dates, reverse=True)  # newest first by default
    in_2022 = get_page(client, "/event/", year="2022", per_page="100")
    expected = count(
        client, "?s a schema:Event ; schema:startDate ?d FILTER(STRSTARTS(STR(?d), '2022'))"
    )
    assert len(in_2022.tables[0]) == expected > 0


def test_browse_sorts_by_name_both_ways(client: httpx.Client) -> None:
    up = [row[0] for row in get_page(client, "/institution/", per_page="100").tables[0]]
    down = [
        row[0] for row in get_page(client, "/institution/", per_page="100", sort="-name").tables[0]
    ]
    assert down == list(reversed(up))


@pytest.mark.parametrize("q", ["Ti Lab", "ti lab", "TiLab", "tilab"])
def test_search_by_name_finds_ti_lab(client: httpx.Client, q: str) -> None:
    page = get_page(client, "/lab/", q=q)
    assert "Ti Lab" in page.link_texts("/doc/lab/ti-lab.html")
    assert len(page.tables[0]) < count(client, "?s a lg:Lab")


def test_search_without_match_says_so(client: httpx.Client) -> None:
    page = get_page(client, "/lab/", q="zzzz-nothing")
    assert page.tables == []
    assert "Aucun résultat" in page.text


def test_browse_echoes_a_search_escaped(client: httpx.Client) -> None:
    response = client.get("/lab/", params={"q": XSS}, headers=HTML)
    assert XSS not in response.text
    assert "&lt;script&gt;" in response.text


# --- query page and example queries --------------------------------------------------------------


def test_there_are_at_least_ten_example_queries() -> None:
    assert len(QUERIES) >= 10
    examples = pages.load_examples(REPO / "queries")
    assert len({e.title for e in examples}) == len(examples)


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_example_query_answers_on_the_real_data(client: httpx.Client, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("# title: ") and len(lines[0]) > len("# title: ") + 5
    assert lines[1].startswith("# description: ") and lines[1].rstrip().endswith((".", "?"))
    assert len(sparql(client, text)) >= 1


def test_query_page_lists_examples_that_fill_the_form(client: httpx.Client) -> None:
    page = get_page(client, "/sparql")
    assert page.textarea is not None and "SELECT" in page.textarea
    examples = pages.load_examples(REPO / "queries")
    for example in examples:
        assert example.title in page.text and example.description in page.text
    load = next(h for h in page.hrefs() if f"example={examples[0].slug}" in h)
    filled = get_page(client, load)
    assert filled.textarea is not None
    assert filled.textarea.strip() == examples[0].query.strip()
    assert filled.tables == []  # loading does not run


def test_query_page_runs_a_query_into_a_table_with_downloads(client: httpx.Client) -> None:
    example = next(
        e
        for e in pages.load_examples(REPO / "queries")
        if e.slug == "labs-state-and-local-authority"
    )
    response = client.get("/sparql", params={"query": example.query}, headers=HTML)
    assert response.status_code == 200
    page = parse(response)
    assert page.textarea is not None and page.textarea.strip() == example.query.strip()
    rows = page.tables[0]
    assert any("Ti Lab" in cell for row in rows for cell in row)
    assert any(h.endswith("/doc/lab/ti-lab.html") for h in page.hrefs())
    downloads = {a.get("type"): a["href"] for a in page.links if "format=" in a.get("href", "")}
    csv = client.get(downloads["text/csv"])
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == len(rows) + 1
    json_results = client.get(downloads["application/sparql-results+json"]).json()
    assert len(json_results["results"]["bindings"]) == len(rows)
    assert parse_qs(urlsplit(downloads["text/csv"]).query)["query"] == [example.query]


def test_query_page_answers_ask(client: httpx.Client) -> None:
    response = client.get(
        "/sparql", params={"query": PREFIXES + "ASK { ?s a lg:Lab }"}, headers=HTML
    )
    assert response.status_code == 200 and "oui" in parse(response).text


@pytest.mark.parametrize("payload", [XSS, "</textarea><script>alert(1)</script>"])
def test_query_page_escapes_what_a_query_echoes(client: httpx.Client, payload: str) -> None:
    literal = payload.replace('"', '\\"')
    query = f'SELECT ?x WHERE {{ BIND("{literal}" AS ?x) }}'
    response = client.get("/sparql", params={"query": query}, headers=HTML)
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    page = parse(response)
    assert page.textarea == query  # the editor gives the query back intact
    assert page.tables[0] == [[payload]]  # and the table shows the literal as text
    assert all(s.get("src") or s.get("type") == "application/ld+json" for s in page.scripts)


def test_query_page_shows_errors_escaped(client: httpx.Client) -> None:
    response = client.get("/sparql", params={"query": f"SELECT {XSS} WHERE {{"}, headers=HTML)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert XSS not in response.text
    assert 'role="alert"' in response.text


# --- ontology, shapes, dumps ---------------------------------------------------------------------


def test_ontology_page_explains_each_term(client: httpx.Client) -> None:
    page = get_page(client, "/def/")
    for anchor in (
        "Lab",
        "Figure",
        "carriedBy",
        "partner",
        "edition",
        "administration-kind",
        "administration-kind-prefecture",
        "skill-service-design",
    ):
        assert anchor in page.ids, anchor
    assert "Laboratoire d'innovation publique" in page.text
    assert "Le lab ou l'institution qui porte un projet." in page.text  # a definition
    carried = client.get("/def/", headers=HTML).text.split('id="carriedBy"', 1)[1][:3000]
    assert "domaine" in carried and "schema:Project" in carried and "org:Organization" in carried
    for vocabulary in ("W3C ORG", "schema.org", "Dublin Core", "W3C PROV-O", "W3C SKOS"):
        assert vocabulary in page.text
    assert "org:unitOf" in page.text and "laboratoire : colonne hosts" in page.text
    term = client.get("/def/carriedBy", headers=HTML)
    assert term.status_code == 303
    assert term.headers["location"].split("#", 1)[1] in page.ids


def test_shapes_page_is_readable(client: httpx.Client) -> None:
    page = get_page(client, "/shapes")
    assert {"LabShape", "InstitutionShape", "EventShape"} <= set(page.ids)
    assert "Un lab doit être porté par au moins une institution" in page.text
    assert any(h.endswith("/def/#Lab") for h in page.hrefs())


def test_dumps_page_lists_files_with_sizes_and_digests(
    client: httpx.Client, releases_dir: Path
) -> None:
    manifest = json.loads((releases_dir / "current" / "manifest.json").read_text())
    response = client.get("/dumps/", headers=HTML)
    page = parse(response)
    listed = {row[0]: row for table in page.tables for row in table}
    dumps = [
        n
        for n in manifest["files"]
        if n.split(".")[0] in ("labgraph", "labs", "events")
        and n.split(".")[1] in ("nt", "ttl", "jsonld", "nq")
    ]
    assert len(dumps) >= 24
    for name in dumps:
        entry = manifest["files"][name]
        assert name in listed, name
        assert entry["sha256"] in listed[name]
        assert f'<data value="{entry["bytes"]}">' in response.text
    download = client.get(next(h for h in page.hrefs() if h.endswith("/dumps/labs.ttl")))
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/turtle")


# --- every page: plain, accessible, self-contained -----------------------------------------------

PAGES = [
    "/",
    "/lab/",
    "/institution/",
    "/project/",
    "/event/",
    "/doc/lab/ti-lab.html",
    "/doc/institution/ditp.html",
    "/sparql",
    "/def/",
    "/shapes",
    "/dumps/",
]


def test_every_page_is_accessible_and_self_contained(client: httpx.Client) -> None:
    for path in PAGES:
        response = client.get(path, headers=HTML)
        page = parse(response)
        assert page.html_attrs.get("lang") == "fr", path
        assert len(page.h1) == 1, path
        skip = page.links[0]
        assert skip["href"] == "#contenu" and page.ids["contenu"]["tag"] == "main", path
        for control in page.controls:
            assert control.get("id") in page.labels_for, (path, control)
        for link in page.head_links:
            if link.get("rel") == "stylesheet":
                assert urlsplit(link["href"]).netloc == urlsplit(str(response.url)).netloc
        for script in page.scripts:
            if script.get("src"):
                assert urlsplit(script["src"]).netloc == urlsplit(str(response.url)).netloc
    css = client.get("/static/style.css")
    assert css.status_code == 200
    assert ":focus-visible" in css.text and "@media" in css.text and ".skip" in css.text


def test_templates_autoescape() -> None:
    assert pages.env.autoescape is True
    rendered = pages.env.from_string("{{ x }}").render(x=XSS)
    assert rendered == "&lt;script&gt;alert(1)&lt;/script&gt;"


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_colours_meet_wcag_contrast(scheme: str) -> None:
    css = (REPO / "src" / "labgraph" / "web" / "static" / "style.css").read_text()
    blocks = re.findall(r":root\s*{([^}]*)}", css)
    palette = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", blocks[0]))
    if scheme == "dark":
        palette.update(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", blocks[1]))
    text_pairs = [
        ("fg", "bg"),
        ("muted", "bg"),
        ("accent", "bg"),
        ("accent", "accent-bg"),
        ("muted", "accent-bg"),
        ("fg", "panel"),
        ("muted", "panel"),
        ("bg", "accent"),
        ("error", "error-bg"),
        ("fg", "error-bg"),
    ]
    for fg, bg in text_pairs:  # text: at least 4.5:1 (WCAG 2.1 AA)
        assert contrast(palette[fg], palette[bg]) >= 4.5, (scheme, fg, bg)
    for around in ("bg", "accent-bg", "panel"):  # the focus ring: 3:1 (non-text contrast)
        assert contrast(palette["focus"], palette[around]) >= 3, (scheme, around)
