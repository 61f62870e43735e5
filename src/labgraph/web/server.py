"""``labgraph serve``: build a release if there is none, then run uvicorn."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from ..release import ReleaseError, current
from ..settings import Settings
from .app import create_app, uvicorn_options

DATASET_ENV = "_LABGRAPH_SERVE_DATASET"


def serve(settings: Settings, *, dataset: Path | None = None, workers: int = 1) -> int:
    """Serve until interrupted; returns the process exit code.

    With ``workers`` > 1, uvicorn runs that many server processes on one socket; each opens the
    release's on-disk store read-only, so throughput grows with cores and memory does not.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if dataset is not None:
        if not dataset.is_file():
            print(f"labgraph: {dataset}: no such file", file=sys.stderr)
            return 2
    elif settings.store_url is None:  # a remote store serves what labgraph publish put there
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
    options = uvicorn_options(settings)
    if workers > 1:
        # Each worker process rebuilds the settings from the environment.
        for name, value in settings.model_dump().items():
            if value is None:  # unset (str(None) would be read back as the text "None")
                os.environ.pop(f"LABGRAPH_{name.upper()}", None)
            else:
                os.environ[f"LABGRAPH_{name.upper()}"] = str(value)
        if dataset is not None:
            os.environ[DATASET_ENV] = str(dataset.resolve())
        uvicorn.run("labgraph.web.server:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(settings, dataset=dataset), **options)
    return 0


def app_from_env() -> FastAPI:
    """The app of one worker process of ``labgraph serve --workers N``."""
    dataset = os.environ.get(DATASET_ENV)
    return create_app(Settings(), dataset=Path(dataset) if dataset else None)
