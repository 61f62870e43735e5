"""What a SPARQL text asks for, read lexically before it reaches the engine.

pyoxigraph ships an HTTP client and follows ``SERVICE <http://…>``: a public endpoint must never
open a connection because of a query. Updates are parsed by a different grammar and must be
refused with a clear message rather than a syntax error. A small tokenizer that skips strings,
IRIs and comments finds the operation (the first keyword after the prologue) and every ``SERVICE``
without being fooled by ``?service``, ``ex:service``, ``<…/SERVICE>`` or ``"LOAD"``.

SPARQL decodes ``\\uXXXX`` / ``\\UXXXXXXXX`` escapes anywhere in the text before parsing (spec
§19.2): to an engine that follows it, ``\\u0053ERVICE`` is ``SERVICE``. Oxigraph 0.5 accepts
them only inside strings and IRIs, but the guard must not depend on that, so it reads the decoded
text. At worst it then refuses a query the engine would have rejected anyway.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

#: SPARQL tokens, enough to tell keywords from strings, IRIs, names and numbers (also used by
#: :mod:`labgraph.remote` to rewrite trusted queries).
TOKEN = re.compile(
    r"""
    (?P<comment>\#[^\n\r]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
              |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][\w\u00b7\u0300-\u036f\u203f-\u2040]+)
  | (?P<pname>[\w.-]*:[\w.:%\\-]*)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<word>[A-Za-z_][\w-]*)
  | (?P<brace>[{}])
  | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")

FORMS = {"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"}
PROLOGUE = {"BASE", "PREFIX"}
UPDATE_WORDS = {
    "INSERT",
    "DELETE",
    "LOAD",
    "CLEAR",
    "DROP",
    "CREATE",
    "ADD",
    "MOVE",
    "COPY",
    "WITH",
}

#: Functions whose value changes from one evaluation to the next: such a query's answer is not a
#: function of the release, so it must be neither cached nor revalidated with an ETag.
VOLATILE_FUNCTIONS = {"NOW", "RAND", "UUID", "STRUUID"}

SERVICE_REFUSAL = (
    "SERVICE (federated query) is not allowed on this public endpoint: it never "
    "opens connections to other servers."
)


@dataclass(frozen=True)
class QueryInfo:
    """The query form (SELECT, ASK, CONSTRUCT, DESCRIBE) or None, and why it is refused."""

    form: str | None
    refusal: str | None = None
    is_update: bool = False
    volatile: bool = False  # calls NOW(), RAND(), UUID() or STRUUID()
    names_graphs: bool = False  # has a dataset clause (FROM or FROM NAMED)


def _unescape(match: re.Match[str]) -> str:
    code = int(match.group(1) or match.group(2), 16)
    return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


#: Queries up to this length are remembered (clients repeat theirs); longer ones are rare.
MEMO_CHARS = 4096


def inspect(text: str) -> QueryInfo:
    """Classify ``text``; a refusal message says what is not allowed and why."""
    if len(text) <= MEMO_CHARS:
        return _inspect_memo(text)
    return _inspect(text)


def _inspect(text: str) -> QueryInfo:
    if "\\u" in text or "\\U" in text:
        text = _ESCAPE.sub(_unescape, text)
    operation: str | None = None
    volatile = names_graphs = False
    for match in TOKEN.finditer(text):
        if match.lastgroup != "word":
            continue
        word = match.group().upper()
        # "SERVICE" glued to anything a parser may split off (1e3SERVICE, E3SERVICE) counts too:
        # a false refusal costs a rephrasing, a missed one an outbound connection.
        if "SERVICE" in word:
            return QueryInfo(operation if operation in FORMS else None, SERVICE_REFUSAL)
        if operation is None and word not in PROLOGUE:
            operation = word
        volatile = volatile or word in VOLATILE_FUNCTIONS
        names_graphs = names_graphs or word == "FROM"
    if operation in UPDATE_WORDS:
        return QueryInfo(
            None,
            f"SPARQL Update ({operation}) is not allowed: this endpoint is read-only. "
            "Download the dumps to work on a copy.",
            is_update=True,
        )
    return QueryInfo(
        operation if operation in FORMS else None, volatile=volatile, names_graphs=names_graphs
    )


_inspect_memo = functools.lru_cache(maxsize=1024)(_inspect)
