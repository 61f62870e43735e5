"""The only place URIs are minted.

Things are ``{base}/id/{type}/{id}``, the documents about them ``{base}/doc/{type}/{id}``. URIs
come from a record's explicit id, never from its label, so a renamed lab keeps its URI. The server
maps a request path back to an IRI with :meth:`Minter.iri_for_path`, whatever host it runs on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: Record types, as they appear in URIs.
TYPES = ("lab", "institution", "project", "event", "figure", "source")
INSEE_REGION = "http://id.insee.fr/geo/region/"


@dataclass(frozen=True)
class Minter:
    """Mints IRIs under one base (``https://w3id.org/labgraph``, no trailing slash)."""

    base: str

    @property
    def base_path(self) -> str:
        """Path of the base ("/labgraph"), stripped from IRIs to find the local path."""
        return urlsplit(self.base).path.rstrip("/")

    def thing(self, type_: str, id_: str) -> str:
        return f"{self.base}/id/{type_}/{id_}"

    def document(self, type_: str, id_: str, extension: str | None = None) -> str:
        suffix = f".{extension}" if extension else ""
        return f"{self.base}/doc/{type_}/{id_}{suffix}"

    def dataset(self, name: str = "") -> str:
        return f"{self.base}/dataset/{name}" if name else f"{self.base}/dataset"

    def path(self, *parts: str) -> str:
        """Any other IRI under the base (catalogue, dumps, endpoint)."""
        return "/".join((self.base, *parts))

    def local_path(self, iri: str) -> str | None:
        """The path a server answers ``iri`` at ("/id/lab/x"), or None if not under the base."""
        if not iri.startswith(self.base + "/"):
            return None
        return iri[len(self.base) :]

    def iri_for_path(self, path: str) -> str:
        """The IRI a server path stands for (inverse of :meth:`local_path`)."""
        return self.base + path


def region(code: str) -> str:
    """INSEE URI of a French region from its two-digit code."""
    return INSEE_REGION + code
