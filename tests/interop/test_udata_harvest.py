"""data.gouv.fr's harvester (udata, its DCAT backend) harvests labgraph's /catalog.ttl.

A real ``labgraph serve`` (``start_server`` of tests/conftest.py, free loopback port) serves the
session's release of the real data (``releases_dir``); udata then harvests ``{server}/catalog.ttl``
as data.gouv.fr does: a ``HarvestSource`` with backend ``dcat`` run by
``udata.harvest.actions.run`` (= ``DcatBackend(source).harvest()``: fetch, rdflib parse,
``dataset_from_rdf`` per dcat:Dataset, ``dataservice_from_rdf`` per dcat:DataService, mongoengine
validation, save). Only the database is not MongoDB: mongoengine gets
``mongo_client_class=mongomock.MongoClient``, so no mongod is needed.

udata's dependencies are not labgraph's, so this file has two roles:

- under pytest, in labgraph's venv: the tests below;
- as a script, in udata's own venv (``.venv-udata``, ``make udata-venv``, pinned in
  ``udata-requirements.txt``), which the tests run as a subprocess:
  ``.venv-udata/bin/python tests/interop/test_udata_harvest.py URL LICENSES.json`` prints what
  udata stored, as JSON.

The licences udata knows are data.gouv.fr's own records (tests/fixtures/udata/, with their
provenance).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def udata_harvest(catalog_url: str, licenses_file: str) -> dict:
    """Harvest ``catalog_url`` with udata's DCAT backend; return the job and what udata stored."""
    import mongoengine
    import mongomock
    from udata import settings as udata_settings
    from udata.app import create_app, standalone

    class Settings(udata_settings.Testing):
        MONGODB_HOST = MONGODB_HOST_TEST = "mongodb://localhost:27017/udata"  # see connect below
        HARVESTER_BACKENDS = ("dcat",)
        URLS_ALLOW_LOCAL = True  # the catalogue is on 127.0.0.1: udata's SSRF guard needs this
        LOGGER_HANDLER_POLICY = "never"

    app = create_app(override=Settings)
    standalone(app)
    mongoengine.disconnect_all()
    mongoengine.connect(
        "udata", host="mongodb://localhost", mongo_client_class=mongomock.MongoClient
    )

    with app.app_context(), app.test_request_context():
        from udata.core.dataservices.models import Dataservice
        from udata.core.dataset.models import Dataset, License
        from udata.core.organization.models import Organization
        from udata.harvest import actions
        from udata.harvest.models import HarvestSource

        # data.gouv.fr's records, as its API lists them (what `udata licenses` loads there)
        for lic in json.loads(Path(licenses_file).read_text(encoding="utf-8")):
            License.objects.create(active=True, **lic)
        org = Organization.objects.create(name="DITP", description="Publisher of labgraph")
        source = HarvestSource.objects.create(
            name="labgraph", url=catalog_url, backend="dcat", organization=org
        )
        actions.run(source)  # DcatBackend(source).harvest(), as the scheduled Celery task does
        source.reload()
        job = source.get_last_job()

        return {
            "status": job.status,
            "errors": [e.message for e in job.errors],
            "items": [
                {
                    "remote_id": i.remote_id,
                    "status": i.status,
                    "errors": [e.message for e in i.errors],
                }
                for i in job.items
            ],
            "datasets": {
                ds.harvest.remote_id: {
                    "title": ds.title,
                    "license": ds.license.id if ds.license else None,
                    "resources": [
                        {
                            "title": r.title,
                            "url": r.url,
                            "format": r.format,
                            "mime": r.mime,
                            "filesize": r.filesize,
                            "checksum": [r.checksum.type, r.checksum.value] if r.checksum else None,
                            "type": r.type,
                        }
                        for r in ds.resources
                    ],
                }
                for ds in Dataset.objects(organization=org)
            },
            "dataservices": {
                svc.harvest.remote_id: {
                    "title": svc.title,
                    "base_api_url": svc.base_api_url,
                    "license": svc.license.id if svc.license else None,
                    "datasets": [d.harvest.remote_id for d in svc.datasets],
                }
                for svc in Dataservice.objects(organization=org)
            },
        }


if __name__ == "__main__":
    print(
        json.dumps(
            udata_harvest(sys.argv[1], sys.argv[2]), indent=1, ensure_ascii=False, default=str
        )
    )
    sys.exit(0)


# --------------------------------------------------------------------------------------------
# The tests: run in labgraph's venv.
# --------------------------------------------------------------------------------------------

import subprocess  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
from rdflib import Graph, Namespace, URIRef  # noqa: E402

from labgraph.build import build  # noqa: E402

from conftest import REPO, repo_settings, start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.interop

UDATA_PYTHON = REPO / ".venv-udata" / "bin" / "python"
LICENSES = REPO / "tests" / "fixtures" / "udata" / "licenses.json"
# Plain Namespaces: pytest probes module globals, and rdflib's closed DCAT namespace warns then.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
LOV2 = URIRef("https://www.etalab.gouv.fr/licence-ouverte-open-licence")


@pytest.fixture(scope="module")
def udata_python() -> Path:
    """udata's interpreter; ``make udata-venv`` creates the venv on first use (about a minute)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "udata-venv"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert UDATA_PYTHON.exists(), UDATA_PYTHON
    return UDATA_PYTHON


@pytest.fixture(scope="module")
def server_url(releases_dir: Path) -> Iterator[str]:
    """A real ``labgraph serve`` (own process, free loopback port) over the session's release."""
    proc, url = start_server(["--releases", str(releases_dir), "--data", str(REPO / "data")])
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def catalog(server_url: str) -> Graph:
    """The catalogue as served, parsed as udata parses it (rdflib, no base)."""
    response = httpx.get(server_url + "/catalog.ttl", timeout=30)
    response.raise_for_status()
    return Graph().parse(data=response.text, format="turtle")


def run_harvest(udata_python: Path, catalog_url: str) -> dict:
    done = subprocess.run(
        [str(udata_python), __file__, catalog_url, str(LICENSES)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def harvest(udata_python: Path, server_url: str) -> dict:
    return run_harvest(udata_python, server_url + "/catalog.ttl")


def item_errors(harvest: dict) -> str:
    return "\n".join(
        f"{i['remote_id']}: {i['status']}: {'; '.join(i['errors'])[:300]}"
        for i in harvest["items"]
        if i["status"] != "done"
    )


def test_every_dataset_becomes_a_udata_dataset(catalog: Graph, harvest: dict) -> None:
    expected = {
        str(catalog.value(d, DCTERMS.identifier)) for d in catalog.subjects(RDF.type, DCAT.Dataset)
    }
    assert len(expected) == 7  # the whole graph and six record types
    assert set(harvest["datasets"]) == expected, item_errors(harvest)


def test_every_distribution_becomes_a_resource(catalog: Graph, harvest: dict) -> None:
    seen = 0
    for node in catalog.subjects(RDF.type, DCAT.Dataset):
        dataset = harvest["datasets"].get(str(catalog.value(node, DCTERMS.identifier)))
        assert dataset is not None, item_errors(harvest)
        expected = {}
        for dist in catalog.objects(node, DCAT.distribution):
            checksum = catalog.value(dist, SPDX.checksum)
            expected[str(catalog.value(dist, DCAT.downloadURL))] = {
                "filesize": int(catalog.value(dist, DCAT.byteSize)),
                "checksum": None
                if checksum is None
                else ["sha256", str(catalog.value(checksum, SPDX.checksumValue))],
            }
        got = {
            r["url"]: {"filesize": r["filesize"], "checksum": r["checksum"]}
            for r in dataset["resources"]
        }
        assert got == expected, node
        assert len(dataset["resources"]) == len(expected), node  # no duplicate resource
        assert all(r["type"] == "main" and r["mime"] for r in dataset["resources"])
        seen += len(expected)
    assert seen == len(set(catalog.subjects(RDF.type, DCAT.Distribution))) > 0


def test_licence_is_recognised_as_licence_ouverte_2(catalog: Graph, harvest: dict) -> None:
    assert set(catalog.objects(None, DCTERMS.license)) == {LOV2}
    licences = {key: d["license"] for key, d in harvest["datasets"].items()}
    assert licences and set(licences.values()) == {"lov2"}, licences


def test_the_sparql_endpoint_becomes_a_udata_dataservice(catalog: Graph, harvest: dict) -> None:
    [service] = catalog.subjects(RDF.type, DCAT.DataService)
    assert list(harvest["dataservices"]) == [str(catalog.value(service, DCTERMS.identifier))], (
        item_errors(harvest)
    )
    [got] = harvest["dataservices"].values()
    assert got["base_api_url"] == str(catalog.value(service, DCAT.endpointURL))
    assert got["license"] == "lov2"
    assert got["datasets"] == [
        str(catalog.value(d, DCTERMS.identifier))
        for d in catalog.objects(service, DCAT.servesDataset)
    ]


def test_udata_accepts_every_item(catalog: Graph, harvest: dict) -> None:
    assert harvest["errors"] == []
    assert harvest["status"] == "done", item_errors(harvest)
    assert [i for i in harvest["items"] if i["status"] != "done"] == [], item_errors(harvest)
    described = set(catalog.subjects(RDF.type, DCAT.Dataset)) | set(
        catalog.subjects(RDF.type, DCAT.DataService)
    )
    assert len(harvest["items"]) == len(described)  # none skipped, none extra


def test_known_udata_bug_rejects_hexbinary_checksums(
    udata_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """KNOWN UPSTREAM BUG of udata 17.18.0, recorded here, not a behaviour we want.

    With ``catalog_checksums`` on, each distribution has the ``spdx:checksumValue
    "…"^^xsd:hexBinary`` the DCAT-AP 3.0.1 shapes require; udata reads it with rdflib's
    ``toPython()`` (bytes) into a string field (udata/core/dataset/rdf.py, ``rdf_value(checksum,
    SPDX.checksumValue)``) and refuses every dataset. That is why the setting is off by default
    (docs/harvesters.md). If this test fails after udata-requirements.txt moves to a newer udata,
    the bug is fixed there: drop this test and reconsider the default.
    """
    releases = tmp_path_factory.mktemp("udata-checksums")
    assert build(repo_settings(releases_dir=releases, catalog_checksums=True)).ok
    proc, url = start_server(["--releases", str(releases), "--data", str(REPO / "data")])
    try:
        harvest = run_harvest(udata_python, url + "/catalog.ttl")
    finally:
        stop_server(proc)
    failed = [i for i in harvest["items"] if i["status"] == "failed"]
    assert len(failed) == 7 and harvest["datasets"] == {}, harvest["items"]
    for item in failed:
        assert "checksum.value.StringField only accepts string values" in item["errors"][0]
    assert len(harvest["dataservices"]) == 1  # the data service has no distribution: accepted
