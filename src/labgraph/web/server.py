"""``labgraph serve``: build a release if there is none, then run uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import uvicorn

from ..release import ReleaseError, current
from ..settings import Settings
from .app import create_app


def serve(settings: Settings, *, dataset: Path | None = None) -> int:
    """Serve until interrupted; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if dataset is not None:
        if not dataset.is_file():
            print(f"labgraph: {dataset}: no such file", file=sys.stderr)
            return 2
    else:
        try:
            release = current(settings.releases_dir)
        except ReleaseError as err:
            print(f"labgraph: {err}", file=sys.stderr)
            release = None
        if release is None:
            from ..build import build

            print("labgraph: no release yet; building one first", file=sys.stderr)
            outcome = build(settings)
            if not outcome.ok:
                for problem in outcome.problems:
                    print(problem, file=sys.stderr)
                return 1
    app = create_app(settings, dataset=dataset)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info",
                proxy_headers=False, timeout_graceful_shutdown=10, limit_concurrency=1024,
                h11_max_incomplete_event_size=16 * 1024)
    return 0
