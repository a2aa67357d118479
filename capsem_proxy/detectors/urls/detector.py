"""The URL detector: judges each URL found in a text against the allow-list and names what makes it
risky (see the package docstring)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal, get_args

from capsem_proxy.detectors.base import Finding, Reach
from capsem_proxy.detectors.holds import last_line_hold, word_hold
from capsem_proxy.detectors.urls.allow_list import HostAllowList
from capsem_proxy.detectors.urls.blobs import BlobLimits, carries_data
from capsem_proxy.detectors.urls.domains import registrable_domain
from capsem_proxy.detectors.urls.find import FoundUrl, UrlContext, find_urls
from capsem_proxy.detectors.urls.homographs import is_homograph
from capsem_proxy.detectors.urls.parse import parse_url

__all__ = ["URL_KINDS", "UrlDetector", "UrlKind"]

UrlKind = Literal["markdown_image", "link", "data_url", "script_url", "encoded_query", "ip_host", "homograph"]
URL_KINDS: tuple[str, ...] = get_args(UrlKind)

# What opens a script URL, whose markdown target runs on to the end of its line.
_SCRIPT_SCHEME = re.compile(r"(?i)(?:javascript|vbscript):")


class UrlDetector:
    """Reports URLs that could carry data out.

    Kinds: `markdown_image` (an image to a host not allow-listed), `link` (any other URL to such
    a host, when no more specific kind applies), `encoded_query` (an encoded blob or a long query
    in the URL), `ip_host`, `homograph`, `data_url`, `script_url`. URLs to allow-listed hosts
    are never reported. One URL may give several findings, all with the URL as their span.
    """

    name = "urls"
    # A URL's context is read up to 2000 characters back (the markdown label of an image); URLs
    # longer than `after` are read again up to `longest`.
    reach = Reach(before=2048, after=2048, longest=16384)

    def __init__(self, allowed: HostAllowList, limits: BlobLimits | None = None) -> None:
        self.allowed = allowed
        self.limits = limits or BlobLimits()
        # A guarded stream rescans its growing answer at every checkpoint: each URL is judged once.
        self._judged = lru_cache(maxsize=2048)(self._judge)
        registrable_domain("warm.example.com")  # loads the public suffix list now, not on a request

    def scan(
        self, text: str, *, complete: bool = True, image_references: frozenset[str] | None = None
    ) -> list[Finding]:
        """Findings for the URLs of `text`; with `complete=False` (a growing stream), a URL at the
        end is judged only once its host is complete. `image_references`: see `find_urls`."""
        findings: list[Finding] = []
        for found in find_urls(text, complete=complete, image_references=image_references):
            for kind in self.kinds_of(found):
                findings.append(Finding(kind, found.start, found.end, found.text))
        return findings

    def hold_from(self, text: str) -> int:
        """Where a URL may still be in progress at the end of `text` (see `detectors.holds`): the
        last word, or a script URL in the last line (a markdown target runs to the line's end)."""
        word, script = word_hold(text), last_line_hold(text, _SCRIPT_SCHEME, ":")
        return word if word <= script else script

    def kinds_of(self, found: FoundUrl) -> tuple[str, ...]:
        """The finding kinds of one URL (none when it is harmless)."""
        return self._judged(found.text, found.context, found.complete)

    def _judge(self, text: str, context: UrlContext, complete: bool) -> tuple[str, ...]:
        lowered = text[:11].lower()
        if lowered.startswith("data:"):
            return ("data_url",)
        if lowered.startswith(("javascript:", "vbscript:")):
            return ("script_url",)
        url = parse_url(text)
        if url is None or (not complete and not url.host_complete) or self.allowed.allows(url):
            return ()
        kinds = []
        if url.ip is not None:
            kinds.append("ip_host")
        elif url.bad_punycode or is_homograph(url.host, self.allowed):
            kinds.append("homograph")
        if carries_data(url, self.limits):
            kinds.append("encoded_query")
        if context == "image":
            kinds.insert(0, "markdown_image")
        elif not kinds:
            kinds.append("link")
        return tuple(kinds)
