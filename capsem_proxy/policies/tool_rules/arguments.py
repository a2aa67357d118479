"""Argument rules, compiled: for the values a rule selects, deny regexes (searched), allow regexes
(one must match the whole value), allowed path roots (`..` resolved, relative paths taken from the
first root) and allowed hosts for URLs (the whole value or URLs inside it)."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterator
from typing import Any

from capsem_proxy.detectors.urls import HostAllowList, find_urls, parse_url
from capsem_proxy.linear_regex import compile_linear
from capsem_proxy.policies.tool_rules.options import ArgumentRule
from capsem_proxy.policies.tool_rules.selectors import ArgumentSelector

__all__ = ["CompiledArgumentRule"]

_SCHEME_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_BARE_HOST = re.compile(r"^[\w.\-]+\.[A-Za-z]{2,}(?::\d+)?(?:[/?#]|$)")


class CompiledArgumentRule:
    """An ArgumentRule ready to run."""

    def __init__(self, rule: ArgumentRule, index: int) -> None:
        self.name = rule.name or f"arguments[{index}]"
        self.action = rule.action
        self.tool = re.compile(fnmatch.translate(rule.tool), re.IGNORECASE)
        self.selector = ArgumentSelector(rule.argument)
        # RE2: a value of any length is matched in linear time (Python's re could backtrack for seconds).
        self.deny = [compile_linear(pattern, ignore_case=rule.ignore_case) for pattern in rule.deny]
        self.allow = [compile_linear(pattern, ignore_case=rule.ignore_case) for pattern in rule.allow]
        self.path_roots = rule.path_roots
        self.hosts = HostAllowList(rule.allowed_hosts) if rule.allowed_hosts else None
        self.schemes = frozenset(scheme.lower() for scheme in rule.allowed_schemes)

    def selected(self, args: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """(JSON pointer, value) of every scalar the rule selects."""
        return self.selector.select(args)

    def violation(self, value: Any) -> str:
        """What is wrong with one selected value ("" when nothing)."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return ""
        text = value if isinstance(value, str) else str(value)
        if any(pattern.found_in(text) for pattern in self.deny):
            return "matches a denied pattern"
        if self.allow and not any(pattern.matches_whole(text) for pattern in self.allow):
            return "matches no allowed pattern"
        if not isinstance(value, str):
            return ""
        if self.path_roots and text and not _under_roots(text, self.path_roots):
            return f"is a path outside {', '.join(self.path_roots)}"
        if self.hosts is not None:
            return _host_violation(text, self.hosts, self.schemes)
        return ""


def _under_roots(path: str, roots: list[str]) -> bool:
    """True when `path`, with `..` resolved (relative to the first root), stays under a root."""
    if "\x00" in path or path.startswith("~"):
        return False
    if path[:7].lower() == "file://":
        path = path[7:]
    path = path.replace("\\", "/")
    resolved = posixpath.normpath(path if path.startswith("/") else posixpath.join(roots[0], path))
    return any(resolved == root or resolved.startswith(root.rstrip("/") + "/") for root in roots)


def _host_violation(text: str, hosts: HostAllowList, schemes: frozenset[str]) -> str:
    """What is wrong with the URL `text` is, or with the URLs inside it ("" when nothing)."""
    value = text.strip()
    scheme = _SCHEME_PREFIX.match(value)
    if scheme is not None and value[scheme.end() : scheme.end() + 2].replace("\\", "/") == "//":
        candidates = [value]  # scheme://authority…
    elif _BARE_HOST.match(value):
        candidates = ["http://" + value]  # example.com/path: a client would add the scheme
    elif scheme is not None and " " not in value:
        # mailto:, javascript:, data:, file:/x… : a URL without a host to check.
        name = scheme.group(1).lower()
        return f"uses the scheme '{name[:16]}'" if name not in schemes else "holds a URL without a host"
    else:
        candidates = [found.text for found in find_urls(value) if "://" in found.text[:12]]
    for candidate in candidates:
        url = parse_url(candidate)
        if url is None:
            return "holds a URL without a host"
        if url.scheme not in schemes:
            return f"uses the scheme '{url.scheme[:16]}'"
        if not hosts.allows(url):
            return "leads to a host not allow-listed"
    return ""
