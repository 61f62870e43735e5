"""Content negotiation: one generic function over the formats table.

Like Oxigraph's server: an explicit default when the client states no preference (or ``*/*``), a
406 that lists what is offered, and ``?format=ttl`` as an alias of the Accept header (as Trifid
does). The Accept header is read as RFC 9110 says: each offered type takes the q-value of the most
specific range that matches it (so ``text/csv;q=0``, ``*/*`` excludes CSV), the highest q wins,
an exact range beats a wildcard at equal q, and the offers' order (default first) breaks what is
left. An alias (``application/json`` for SPARQL JSON) counts only when the client names it: a
wildcard must not pick a format through a type the answer will not be labelled with. Media types
compare case-insensitively; a header that does not parse is a 400, not a guess. Parsed headers
are cached: clients send the same few Accept headers again and again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from .. import formats
from ..formats import Format

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
# One comma-separated element of a header: commas inside quoted parameter values do not split.
_ELEMENT = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')

#: ``?format=`` values other clients send, by the result kind they mean (SPARQLWrapper sends
#: ``format=xml`` for RDF/XML graphs and SPARQL XML results alike, ``n3`` for Turtle, …).
FORMAT_ALIASES: dict[str, tuple[str, ...]] = {
    "xml": ("xml", "rdfxml"),
    "rdf": ("rdfxml",),
    "rdf+xml": ("rdfxml",),
    "rdf/xml": ("rdfxml",),
    "n3": ("turtle",),
    "json": ("json", "jsonld"),
    "json-ld": ("jsonld",),
    "n-triples": ("ntriples",),
    "n-quads": ("nquads",),
}

Range = tuple[str, str, float]  # type, subtype, q


class NegotiationError(Exception):
    """The request asks for nothing we offer (406) or its Accept header is malformed (400)."""

    def __init__(self, status: int, message: str, offers: Sequence[Format] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.offers = tuple(offers)


@lru_cache(maxsize=512)
def parse_accept(header: str) -> tuple[Range, ...]:
    """The media ranges of an Accept header; ValueError when it is malformed.

    Lenient where real clients are sloppy and harmless: a bare ``*`` (Java's URLConnection) and
    ``q=.2`` are accepted; parameters other than q are ignored for matching.
    """
    ranges: list[Range] = []
    for element in _ELEMENT.findall(header):
        media_type, *params = element.split(";")
        media_type = media_type.strip().lower()
        if not media_type and not params:
            continue  # "a, , b": empty list elements are allowed
        if media_type == "*":
            media_type = "*/*"
        main, slash, sub = media_type.partition("/")
        if not (slash and _TOKEN.fullmatch(main) and _TOKEN.fullmatch(sub)):
            raise ValueError(f"not a media range: {element.strip()!r}")
        if main == "*" and sub != "*":
            raise ValueError(f"not a media range: {element.strip()!r}")
        q = 1.0
        for param in params:
            key, eq, value = param.partition("=")
            key = key.strip().lower()
            if not eq or not _TOKEN.fullmatch(key):
                raise ValueError(f"malformed parameter {param.strip()!r}")
            if key == "q":
                q = float(value.strip())  # ValueError for anything but a number
                if math.isnan(q) or not 0 <= q <= 1:
                    raise ValueError(f"q-value out of range: {value.strip()!r}")
                break  # what follows q are accept-extensions
        ranges.append((main, sub, q))
    return tuple(ranges)


def quality(media_type: str, ranges: Sequence[Range]) -> tuple[float, int]:
    """(q, specificity) of ``media_type``: the q of the most specific range matching it."""
    main, _, sub = media_type.partition("/")
    best_specificity, best_q = -1, 0.0
    for r_main, r_sub, q in ranges:
        if r_main == main and r_sub == sub:
            specificity = 2
        elif r_main == main and r_sub == "*":
            specificity = 1
        elif r_main == "*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, best_q = specificity, q
    return best_q, best_specificity


def by_format_param(value: str, offers: Sequence[Format]) -> Format | None:
    """The offer a ``?format=`` value names: extension, name, media type, a known alias, or
    (as SPARQLWrapper sends) a whole Accept-style list of media ranges."""
    found = formats.by_extension(value, tuple(offers)) or formats.by_media_type(
        value, tuple(offers)
    )
    if found is not None:
        return found
    for name in FORMAT_ALIASES.get(value.strip().lower(), ()):
        for fmt in offers:
            if fmt.name == name:
                return fmt
    if "/" in value:
        try:
            return negotiate(value, offers)
        except NegotiationError:
            return None
    return None


def negotiate(
    accept: str | None,
    offers: Sequence[Format],
    *,
    format_param: str | Sequence[str] | None = None,
    default: Format | None = None,
) -> Format:
    """The format to answer in. ``offers`` are in order of preference; the first is the default.

    ``format_param`` (one ``?format=`` value, or all of them: the first that names an offer wins)
    overrides the Accept header; empty values are ignored. Raises :class:`NegotiationError`
    (406 with the offers, or 400 for a malformed header).
    """
    if not offers:
        raise ValueError("nothing to offer")
    fallback = default or offers[0]
    values = [format_param] if isinstance(format_param, str) else list(format_param or ())
    values = [v for v in values if v.strip()]
    if values:
        for value in values:
            found = by_format_param(value, offers)
            if found is not None:
                return found
        shown = ", ".join(repr(v) for v in values)
        raise NegotiationError(406, f"format {shown} is not offered here", offers)
    header = (accept or "").strip()
    if not header:
        return fallback
    try:
        ranges = parse_accept(header)
    except ValueError as err:
        raise NegotiationError(400, f"malformed Accept header {header[:200]!r}: {err}") from None
    if not ranges:
        return fallback
    best: Format | None = None
    best_key: tuple[float, int, int] = (0.0, -1, 0)
    for index, fmt in enumerate(offers):
        q, specificity = quality(fmt.media_type, ranges)
        for alias in fmt.aliases:  # only when named: a wildcard match would be answered with
            alias_q, alias_specificity = quality(alias, ranges)  # a type the client never listed
            if alias_specificity == 2 and alias_q > q:
                q, specificity = alias_q, alias_specificity
        key = (q, specificity, 1 if fmt is fallback else -index)
        if q > 0 and key > best_key:
            best, best_key = fmt, key
    if best is None:
        raise NegotiationError(406, "none of the accepted media types is offered", offers)
    return best


def offered_list(offers: Sequence[Format]) -> str:
    """Human list of offered media types, for 406 bodies."""
    return ", ".join(f.media_type for f in offers)
