"""The dumps of a release, streamed from the mapped graph on disk into the staging folder.

Every dump (the whole graph and each record type's part, in N-Triples, N-Quads, Turtle and
JSON-LD, each with its .gz copy) is written as a stream: N-Triples and N-Quads are the mapped
files copied through (the data is the default graph, so their lines are equal and they share one
compression), Turtle is pyoxigraph's serialiser fed one triple at a time, and JSON-LD nodes are
compacted subject by subject, spilled to a file in N-Triples order, then written in the order of
their subject ids. Memory stays bounded by one subject's triples plus an index of the subjects.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from . import formats, jsonld
from .mapping import Mapped, read_triples
from .release import DUMP_NAMES, Staging

WHOLE = "labgraph"
CHUNK = 1 << 20


def write_dumps(
    stage: Staging,
    mapped: Mapped,
    prefixes: Mapping[str, str],
    *,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Write the 7 dumps × 4 formats (+ .gz) of ``mapped`` into ``stage``.

    ``stop`` is asked before each dump: when it answers True (the graph being validated
    meanwhile turned out invalid), the rest is not written.
    """
    parts: list[tuple[str, Path, str | None]] = [(WHOLE, mapped.nt, None)]
    parts += [(DUMP_NAMES[t], mapped.part(t), t) for t in mapped.types]
    nodes = _Nodes(mapped)
    for name, path, type_ in parts:
        if stop():
            return
        with (
            stage.open(
                [
                    (f"{name}.nt", formats.NTRIPLES.media_type),
                    (f"{name}.nq", formats.NQUADS.media_type),
                ],
                gzip_copy=True,
            ) as sink,
            open(path, "rb") as src,
        ):
            while chunk := src.read(CHUNK):
                sink.write(chunk)
        with stage.open([(f"{name}.ttl", formats.TURTLE.media_type)], gzip_copy=True) as sink:
            formats.write_graph(read_triples(path), formats.TURTLE, sink, prefixes)
        with stage.open([(f"{name}.jsonld", formats.JSONLD.media_type)], gzip_copy=True) as sink:
            jsonld.write_nodes(nodes.lines(type_), sink)


class _Nodes:
    """Every subject's compacted JSON-LD node, one line each in a file beside the graph.

    Nodes are computed in N-Triples order (a subject's triples are adjacent there) and served
    sorted by subject id, the order of the JSON-LD dumps (``<a-1>`` sorts before ``<a>`` in
    N-Triples, ``a`` before ``a-1`` as ids).
    """

    def __init__(self, mapped: Mapped) -> None:
        self.mapped = mapped
        self.path = mapped.folder / "nodes.jsonl"
        entries: list[tuple[str, int, int]] = []
        offset = 0
        with open(self.path, "wb") as out:
            for sid, line in jsonld.node_lines(read_triples(mapped.nt)):
                out.write(line)
                entries.append((sid, offset, len(line)))
                offset += len(line)
        entries.sort()
        self.entries = entries
        self.size = offset

    def lines(self, type_: str | None) -> Iterator[bytes]:
        """The node lines of every subject (``type_`` None) or of one record type's subjects."""
        if not self.size:
            return
        subjects = self.mapped.subjects
        with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for sid, offset, length in self.entries:
                if type_ is not None:
                    origin = subjects.get(sid)
                    if origin is None or origin.type != type_:
                        continue
                yield mm[offset : offset + length]
