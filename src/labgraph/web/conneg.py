"""Content negotiation: one generic function over the formats table.

Like Oxigraph's server: an explicit default when the client states no preference (or ``*/*``), a
406 that lists what is offered, and ``?format=ttl`` as an alias of the Accept header (as Trifid
does). Parsing and q-values are python-mimeparse's.
"""

from __future__ import annotations

from collections.abc import Sequence

import mimeparse

from .. import formats
from ..formats import Format


class NegotiationError(Exception):
    """The request asks for nothing we offer (406) or its Accept header is malformed (400)."""

    def __init__(self, status: int, message: str, offers: Sequence[Format] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.offers = tuple(offers)


def negotiate(
    accept: str | None,
    offers: Sequence[Format],
    *,
    format_param: str | None = None,
    default: Format | None = None,
) -> Format:
    """The format to answer in. ``offers`` are in order of preference; the first is the default.

    Raises :class:`NegotiationError` (406 with the offers, or 400 for a malformed header).
    """
    if not offers:
        raise ValueError("nothing to offer")
    fallback = default or offers[0]
    if format_param:
        found = formats.by_extension(format_param, tuple(offers)) or formats.by_media_type(
            format_param, tuple(offers)
        )
        if found is None:
            raise NegotiationError(406, f"format {format_param!r} is not offered here", offers)
        return found
    header = (accept or "").strip()
    if not header:
        return fallback
    by_type: dict[str, Format] = {}
    for fmt in offers:  # least preferred first: mimeparse breaks ties in favour of the last
        for media_type in (fmt.media_type, *fmt.aliases):
            if media_type not in by_type:
                by_type[media_type] = fmt
    supported = sorted(
        by_type, key=lambda mt: _rank(by_type[mt], mt, offers, fallback), reverse=True
    )
    try:
        best = mimeparse.best_match(supported, header)
    except (mimeparse.MimeTypeParseException, ValueError, IndexError):
        raise NegotiationError(400, f"malformed Accept header: {header[:200]!r}") from None
    if not best:
        raise NegotiationError(406, "none of the accepted media types is offered", offers)
    return by_type[best]


def _rank(fmt: Format, media_type: str, offers: Sequence[Format], fallback: Format) -> tuple:
    # The default first, then the offers' order; a format's own media type before its aliases.
    return (fmt is not fallback, offers.index(fmt), media_type != fmt.media_type)


def offered_list(offers: Sequence[Format]) -> str:
    """Human list of offered media types, for 406 bodies."""
    return ", ".join(f.media_type for f in offers)
