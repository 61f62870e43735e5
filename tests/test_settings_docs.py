"""docs/deploy.md documents every setting, and the limits a public deployment gets by default."""

from __future__ import annotations

from labgraph.settings import Settings

from conftest import REPO

DEPLOY = REPO / "docs" / "deploy.md"


def test_every_setting_is_documented_in_deploy_md() -> None:
    text = DEPLOY.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`{name}`" not in text]
    assert not missing, f"docs/deploy.md does not mention: {', '.join(missing)}"


def test_every_setting_has_help_text() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 10, name


def test_the_limits_section_lists_each_default_limit() -> None:
    text = DEPLOY.read_text(encoding="utf-8")
    section = text.split("## Limits of a public deployment", 1)[1].split("\n## ", 1)[0]
    for name in (
        "query_timeout",
        "max_concurrent_queries",
        "queue_wait",
        "rate_limit",
        "rate_burst",
        "max_query_bytes",
        "max_url_bytes",
        "max_result_bytes",
        "client_timeout",
        "keep_alive_timeout",
        "max_connections",
        "max_connections_per_client",
    ):
        assert f"`{name}`" in section, name
