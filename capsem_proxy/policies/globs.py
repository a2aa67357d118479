"""Name globs (`shell*`, `gpt-4o-*`) as the rule policies use them: checked at load, matched
case-insensitively, and allow/deny lists of them."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

__all__ = ["GlobLists", "check_glob", "check_globs", "compile_globs"]


def check_glob(glob: str) -> str:
    """`glob` when it is usable as a name glob; ValueError naming the problem otherwise."""
    if not glob or not glob.strip():
        raise ValueError("empty glob")
    if re.search(r"\[(?![^\]]+\])", glob):
        raise ValueError(f"glob '{glob}' has an unclosed '['")
    return glob


def check_globs(globs: list[str] | None) -> list[str] | None:
    """`globs` (None kept) when each is usable; ValueError naming the first bad one."""
    return [check_glob(glob) for glob in globs] if globs is not None else None


def compile_globs(globs: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of `globs`; None for no globs."""
    if not globs:
        return None
    return re.compile("|".join(fnmatch.translate(glob) for glob in globs), re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class GlobLists:
    """An allow list and a deny list of globs, compiled. `allow: None` puts no restriction."""

    allow: re.Pattern[str] | None
    restricts: bool  # an allow list is set (an empty one allows nothing)
    deny: re.Pattern[str] | None

    @classmethod
    def of(cls, allow: list[str] | None, deny: list[str]) -> GlobLists:
        return cls(compile_globs(allow or []), allow is not None, compile_globs(deny))

    def denies(self, name: str) -> bool:
        """True when `name` matches a deny glob."""
        return self.deny is not None and self.deny.match(name) is not None

    def allows(self, name: str) -> bool:
        """True when no allow list is set or `name` matches one of its globs."""
        return not self.restricts or (self.allow is not None and self.allow.match(name) is not None)
