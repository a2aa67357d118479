"""The dashboard's static files, read once from the package and served from memory.

Only files shipped in `static/` and `vendor/` exist as URLs: the lookup is a dict built at start-up,
so no request path ever reaches the file system.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["Asset", "DashboardAssets"]

_CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".ico": b"image/x-icon",
}
_FOLDERS = ("static", "vendor")


@dataclass(frozen=True, slots=True)
class Asset:
    """One file: its bytes and content type."""

    body: bytes
    content_type: bytes


class DashboardAssets:
    """Every dashboard file, keyed by its URL path below /dashboard/ (e.g. `static/app.js`)."""

    def __init__(self) -> None:
        package = resources.files(__package__)
        self._assets: dict[str, Asset] = {}
        for folder in _FOLDERS:
            for entry in package.joinpath(folder).iterdir():
                suffix = "." + entry.name.rpartition(".")[2]
                if entry.is_file() and suffix in _CONTENT_TYPES:
                    self._assets[f"{folder}/{entry.name}"] = Asset(entry.read_bytes(), _CONTENT_TYPES[suffix])

    def get(self, name: str) -> Asset | None:
        """The file served at /dashboard/<name>, or None."""
        return self._assets.get(name)

    def names(self) -> list[str]:
        return sorted(self._assets)
