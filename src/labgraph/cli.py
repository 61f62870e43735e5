"""Command line: ``labgraph build | validate | serve | releases``. Thin: it calls the stages.

Exit codes: 0 success, 1 invalid data (nothing published), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from . import __version__
from .settings import Settings, load

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", help="base IRI of minted URIs (setting: base)")
    parser.add_argument("--data", dest="data_dir", type=Path, help="folder of record files")
    parser.add_argument("--releases", dest="releases_dir", type=Path, help="releases folder")
    parser.add_argument("--ontology", type=Path, help="ontology file")
    parser.add_argument("--shapes", type=Path, help="SHACL shapes file")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labgraph",
        description="Publish France's network of public innovation labs as linked open data.",
    )
    parser.add_argument("--version", action="version", version=f"labgraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="check the records and publish a new release")
    _common(p)
    p.add_argument("--jobs", type=int, help="validation processes (default: by size)")
    p.add_argument("--no-switch", action="store_true", help="write the release, keep current")
    p.add_argument(
        "--engine",
        choices=("sparql", "pyshacl"),
        default="sparql",
        help="SHACL engine: sparql (shapes compiled to SPARQL, default) or pyshacl (reference)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="validate every record, not only those changed since the current release",
    )

    p = sub.add_parser("validate", help="check the records; write nothing")
    _common(p)
    p.add_argument(
        "--engine",
        choices=("pyshacl", "sparql"),
        default="pyshacl",
        help="SHACL engine: pyshacl (reference, default) or sparql (shapes compiled to SPARQL)",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "ttl"),
        default="text",
        help="report format (default: text)",
    )

    p = sub.add_parser("releases", help="list the releases, the current one marked")
    _common(p)

    p = sub.add_parser("publish", help="load a release into a SPARQL 1.1 server and switch to it")
    _common(p)
    p.add_argument(
        "--store",
        required=True,
        help="base URL of the SPARQL server (e.g. http://127.0.0.1:7878 for Oxigraph)",
    )
    p.add_argument("--release", dest="release_id", help="release id (default: current)")
    p.add_argument("--query-path", default="/query", help="SPARQL query path (default /query)")
    p.add_argument(
        "--gsp-path", default="/store", help="Graph Store Protocol path (default /store)"
    )
    p.add_argument("--update-path", help="SPARQL Update path, to switch by update instead of GSP")

    p = sub.add_parser("serve", help="serve the current release (SPARQL, URIs, pages)")
    _common(p)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument(
        "--store",
        dest="store_url",
        help="serve from this SPARQL 1.1 server (loaded by labgraph publish) instead of the "
        "embedded store",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing one read-only store (default 1)",
    )
    p.add_argument(
        "--dataset",
        type=Path,
        help="serve this RDF dataset file instead of a release (nq, trig, ttl, nt)",
    )
    p.add_argument(
        "--query-timeout",
        dest="query_timeout",
        type=float,
        help="seconds before a query is stopped (default 30)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {
        k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None
    }
    try:
        settings = load(**overrides)
    except ValidationError as err:
        for e in err.errors():
            where = ".".join(str(x) for x in e["loc"])
            print(f"labgraph: setting {where}: {e['msg']}", file=sys.stderr)
        return EXIT_USAGE
    handler = {
        "build": _build,
        "validate": _validate,
        "releases": _releases,
        "publish": _publish,
        "serve": _serve,
    }[args.command]
    return handler(settings, args)


def _print_problems(problems: Sequence[object]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


def _build(settings: Settings, args: argparse.Namespace) -> int:
    from .build import build, stderr_progress

    outcome = build(
        settings,
        progress=stderr_progress(),
        switch=not args.no_switch,
        jobs=args.jobs,
        full=args.full,
        engine=args.engine,
    )
    if not outcome.ok:
        _print_problems(outcome.problems)
        print(
            f"labgraph: {len(outcome.problems)} problem(s); nothing was published", file=sys.stderr
        )
        return EXIT_INVALID
    release = outcome.release
    assert release is not None
    counts = release.manifest["counts"]
    print(
        f"release {release.id}: {counts['triples']} triples, {counts.get('lab', 0)} labs"
        f" -> {release.path}"
    )
    return EXIT_OK


def _validate(settings: Settings, args: argparse.Namespace) -> int:
    from .build import check, stderr_progress

    outcome = check(settings, progress=stderr_progress(), engine=args.engine)
    report = outcome.report
    if report is None:  # the records themselves are broken: no graph to validate
        if args.format == "json":
            import json

            print(
                json.dumps(
                    {
                        "conforms": False,
                        "problems": [
                            {
                                "file": p.file,
                                "line": p.line,
                                "column": p.column,
                                "message": p.message,
                            }
                            for p in outcome.problems
                        ],
                    },
                    ensure_ascii=False,
                    indent=2,
                )
            )
        else:
            _print_problems(outcome.problems)
        return EXIT_INVALID
    text = {"text": report.to_text, "json": report.to_json, "ttl": report.to_turtle}[args.format]()
    sys.stdout.write(text)
    return EXIT_OK if report.conforms else EXIT_INVALID


def _releases(settings: Settings, args: argparse.Namespace) -> int:
    from .release import current, list_releases

    now = current(settings.releases_dir)
    for rel in list_releases(settings.releases_dir):
        mark = "*" if now and now.id == rel.id else " "
        print(f"{mark} {rel.id}  {rel.manifest['counts']['triples']} triples")
    return EXIT_OK


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    from .release import ReleaseError, current, open_release
    from .remote import PublishError, publish

    try:
        release = (
            open_release(settings.releases_dir / args.release_id)
            if args.release_id
            else current(settings.releases_dir)
        )
    except ReleaseError as err:
        print(f"labgraph: {err}", file=sys.stderr)
        return EXIT_INVALID
    if release is None:
        print(
            f"labgraph: no release in {settings.releases_dir}; run labgraph build first",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        graph = publish(
            release,
            args.store,
            query_path=args.query_path,
            gsp_path=args.gsp_path,
            update_path=args.update_path,
        )
    except PublishError as err:
        print(f"labgraph: publish failed: {err}", file=sys.stderr)
        return EXIT_INVALID
    print(f"published {release.id} as <{graph}>")
    return EXIT_OK


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from .web.server import serve

    return serve(settings, dataset=args.dataset, workers=args.workers)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
