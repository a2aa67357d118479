"""Regular expressions a configuration supplies (tool argument rules, redaction patterns,
injection signatures), run by RE2: matching takes time linear in the text, whatever the pattern.

Python's `re` backtracks: the documented argument rule `\\brm\\s+-\\w*r\\w*f` took 6.5 s on a
40 kB argument, holding every other request for as long. RE2 guarantees linear time by leaving
out what needs backtracking (look-around, back-references, possessive quantifiers); a pattern
using them is refused at start-up with the key that holds it and the reason, never on a request.
Its syntax is otherwise Python's (`(?P<name>…)`, `(?i)`, `\\d`, `\\w`, `\\b`), with `\\d`, `\\w`
and `\\b` meaning ASCII digits and word characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import re2

__all__ = ["LinearPattern", "LinearPatternSet", "check_linear", "compile_linear"]

_HINTS = (
    ("invalid perl operator: (?=", "look-ahead (?=…) is not supported"),
    ("invalid perl operator: (?!", "negative look-ahead (?!…) is not supported"),
    ("invalid perl operator: (?<", "look-behind (?<=…) / (?<!…) is not supported"),
    ("invalid escape sequence: \\Z", "use \\z for the end of the text"),
    ("invalid escape sequence: \\", "back-references and this escape are not supported"),
    ("invalid repetition size", "repetition counts above 1000 are not supported"),
    ("bad repetition operator", "possessive quantifiers (a++, a*+) are not supported"),
    ("pattern too large", "the pattern compiles to a program larger than RE2 allows"),
)


class LinearPattern:
    """A pattern compiled by RE2.

    `finditer` gives matches with character offsets (group(), start(), end(), span()). The yes/no
    questions match the UTF-8 bytes instead: they need no offsets, and RE2's binding spends far
    longer converting offsets of a match deep in a long str than finding it (17 ms against 2 ms
    for a match at the end of a megabyte).
    """

    __slots__ = ("_regexp", "pattern")

    def __init__(self, pattern: str, regexp: Any) -> None:
        self.pattern = pattern
        self._regexp = regexp

    def finditer(self, text: str) -> Iterator[Any]:
        """The non-overlapping matches in `text`, left to right."""
        return self._regexp.finditer(text)  # type: ignore[no-any-return]

    def found_in(self, text: str) -> bool:
        """True when the pattern matches somewhere in `text`."""
        return self._regexp.search(text.encode("utf-8", "surrogatepass")) is not None

    def matches_whole(self, text: str) -> bool:
        """True when the pattern matches all of `text`."""
        return self._regexp.fullmatch(text.encode("utf-8", "surrogatepass")) is not None


class LinearPatternSet:
    """Several patterns searched in one pass (RE2's `Set`): which of them match somewhere in a
    text, so that only those are run for their matches. Patterns are added as `compile_linear`
    compiled them (case-sensitive)."""

    __slots__ = ("_set",)

    def __init__(self, patterns: list[LinearPattern]) -> None:
        options = re2.Options()
        options.log_errors = False
        self._set: Any = None
        if patterns:
            matcher = re2.Set.SearchSet(options)
            for pattern in patterns:
                matcher.Add(pattern.pattern)
            matcher.Compile()
            self._set = matcher

    def matching(self, text: str) -> list[int]:
        """The indexes (in the order given) of the patterns that match somewhere in `text`."""
        if self._set is None:
            return []
        found = self._set.Match(text.encode("utf-8", "surrogatepass"))
        return sorted(found) if found else []


def compile_linear(pattern: str, *, ignore_case: bool = False) -> LinearPattern:
    """`pattern` compiled for linear-time matching; ValueError with a readable reason when RE2
    cannot run it."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    try:
        return LinearPattern(pattern, re2.compile(pattern, options))
    except re2.error as exc:
        message = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = next((hint for prefix, hint in _HINTS if message.startswith(prefix)), "")
        reason = f"{message}; {hint}" if hint else message
        raise ValueError(
            f"bad regular expression '{pattern}': {reason} (patterns run on RE2, which matches in linear time)"
        ) from exc


def check_linear(pattern: str, what: str, *, ignore_case: bool = False) -> str:
    """`pattern` when RE2 can run it; ValueError naming `what` and the reason otherwise."""
    try:
        compile_linear(pattern, ignore_case=ignore_case)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from exc
    return pattern
