"""What a SPARQL text asks for, read lexically before it reaches the engine.

pyoxigraph ships an HTTP client and would follow ``SERVICE <http://…>``: a public endpoint must
never open a connection because of a query. Updates are parsed by a different grammar and must be
refused with a clear message rather than a syntax error. A small tokenizer that skips strings,
IRIs and comments finds the query form and every forbidden keyword without being fooled by
``?service`` or ``"LOAD"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<comment>\#[^\n\r]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
              |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][\w\u00b7\u0300-\u036f\u203f-\u2040]+)
  | (?P<pname>[\w.-]*:[\w.:%\\-]*)
  | (?P<word>[A-Za-z_][\w-]*)
  | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)

FORMS = {"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"}
UPDATE_WORDS = {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY"}


@dataclass(frozen=True)
class QueryInfo:
    """The query form (SELECT, ASK, CONSTRUCT, DESCRIBE) or None, and why it is refused."""

    form: str | None
    refusal: str | None = None
    is_update: bool = False


def inspect(text: str) -> QueryInfo:
    """Classify ``text``; a refusal message says what is not allowed and why."""
    form: str | None = None
    seen_update: str | None = None
    for match in _TOKEN.finditer(text):
        if match.lastgroup != "word":
            continue
        word = match.group().upper()
        if word == "SERVICE":
            return QueryInfo(
                form,
                "SERVICE (federated query) is not allowed on this public "
                "endpoint: it never opens connections to other servers.",
            )
        if form is None and word in FORMS:
            form = word
        elif form is None and word in UPDATE_WORDS and seen_update is None:
            seen_update = word
    if form is None and seen_update:
        return QueryInfo(
            None,
            f"SPARQL Update ({seen_update}) is not allowed: this endpoint is "
            "read-only. Download the dumps to work on a copy.",
            is_update=True,
        )
    return QueryInfo(form)
