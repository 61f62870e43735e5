"""Settings: declared once, with help text; read from labgraph.toml, then LABGRAPH_* env vars.

CLI flags override both (the CLI passes them as keyword arguments to :func:`load`). Declaring each
setting here with its description lets ``labgraph settings`` and the docs list them all, and a test
checks that docs/deploy.md mentions every one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE = "labgraph.toml"


class Settings(BaseSettings):
    """Every knob of labgraph, with its default for a public deployment."""

    model_config = SettingsConfigDict(
        env_prefix="LABGRAPH_", toml_file=CONFIG_FILE, extra="forbid", validate_default=True
    )

    base: str = Field(
        "https://w3id.org/labgraph",
        description="Base IRI of every URI minted ({base}/id/lab/{id}); no trailing slash.",
    )
    data_dir: Path = Field(Path("data"), description="Folder of the record files (CSV).")
    releases_dir: Path = Field(Path("releases"), description="Folder where releases are written.")
    ontology: Path = Field(Path("ontology/labgraph.ttl"), description="The ontology file.")
    shapes: Path = Field(Path("shapes/labgraph.ttl"), description="The SHACL shapes file.")
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8000, description="Port the server listens on.")
    query_timeout: float = Field(
        30.0, gt=0, description="Seconds a SPARQL query may run before it is stopped (503)."
    )
    max_concurrent_queries: int = Field(
        2,
        ge=1,
        description="Query worker processes: queries evaluated at once; past them "
        "(and queue_wait), 503 with Retry-After.",
    )
    max_query_bytes: int = Field(
        65536, ge=1024, description="Largest accepted query or request body, in bytes (413)."
    )
    max_url_bytes: int = Field(8192, ge=256, description="Longest accepted request URL (414).")
    max_result_bytes: int = Field(
        50_000_000,
        ge=1024,
        description="Largest serialised query result, in bytes; past it, an error (never a "
        "silent truncation).",
    )
    cache_bytes: int = Field(
        64_000_000,
        ge=0,
        description="Memory for the answers of the current release: serialised documents, "
        "query results and whole answers replayed to repeated requests, a third each (least "
        "recently used dropped first); 0 turns the caches off.",
    )
    queue_wait: float = Field(
        2.0, ge=0, description="Seconds a query may wait for a free query worker before 503."
    )
    store_url: str | None = Field(
        None,
        description="Base URL of a SPARQL 1.1 server to serve from instead of the embedded "
        "store (releases loaded there by labgraph publish; see docs/deploy.md).",
    )
    store_query_path: str = Field(
        "/query", description="Path of the remote store's SPARQL query endpoint."
    )
    rate_limit: float = Field(
        10.0, ge=0, description="SPARQL requests per second per client address (0: no limit)."
    )
    rate_burst: int = Field(40, ge=1, description="Requests a client may burst above the rate.")
    client_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a client may take to send a whole request (headers and body) "
        "from its first byte, or to start one on a new connection; past it, 408 and the "
        "connection is closed (slow-client protection).",
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, description="Seconds an idle keep-alive connection stays open."
    )
    max_connections: int = Field(
        1024,
        ge=1,
        description="Open connections (and requests in progress) per server process; past "
        "them, 503 (uvicorn's limit_concurrency).",
    )
    max_connections_per_client: int = Field(
        64,
        ge=0,
        description="Open connections from one client address (IPv6: one /64) per server "
        "process; past them, 503 (0: no limit). Not applied to trusted proxies.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are trusted (empty: none; the peer address is the client).",
    )
    access_log: str = Field(
        "stderr",
        description='Where JSON-lines access logs go: "stderr", "stdout", a file path, or "off".',
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    catalog_checksums: bool = Field(
        False,
        description="Build time: give each distribution of the DCAT-AP catalogue its SHA-256 "
        "spdx:checksum (xsd:hexBinary). Off by default: data.gouv.fr's harvester (udata 17.18) "
        "rejects every dataset that has one (docs/harvesters.md).",
    )
    build_memory_triples: int = Field(
        1_000_000,
        ge=0,
        description="Build time: a graph of up to this many triples is validated and counted in a "
        "pyoxigraph store in memory (about 400 bytes a triple, several times faster); a larger "
        "one in a store on disk, so that a build's memory stays flat (0: always on disk).",
    )
    reload_interval: float = Field(
        2.0,
        ge=0,
        description="Seconds between two checks of releases/current for a new release "
        "(0: only on SIGHUP).",
    )

    @field_validator("base")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base must be an absolute http(s) IRI, got {value!r}")
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: CLI flags (init) > environment > labgraph.toml > defaults.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load(**overrides: Any) -> Settings:
    """Settings with CLI flags applied; flags left to None do not override anything."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
