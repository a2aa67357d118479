"""Applies redactions to wire bytes, touching only the JSON strings that contain them.

A redaction is a pair (original text, replacement). Inside a JSON document the original
appears JSON-escaped, either as UTF-8 (most clients) or with non-ASCII characters as \\uXXXX
escapes (Python's json default); both spellings are replaced, in the same spelling, so every
byte outside the redacted spans stays as the client or provider sent it.

Every function here is linear in the size of the text and the number of redactions: all
originals are found in one Aho-Corasick pass (a prompt of 20,000 e-mail addresses carries
20,000 redactions), and JSON documents are walked without recursion (a document nested 800
levels deep is valid JSON).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ahocorasick
import orjson

__all__ = [
    "Placeholders",
    "RedactionFailed",
    "find_spans",
    "redact_json_bytes",
    "redact_json_document",
    "rewrite_segment",
    "texts_hold_any",
]

_Span = tuple[int, int, str]


class RedactionFailed(Exception):
    """Text a policy asked to redact is still in the document after rewriting it."""


class _Rewrites:
    """Many (needle, replacement) pairs found in one pass over a text.

    Where occurrences overlap, the longer needle claims its text first, then the earlier one
    (the rule a sequence of `str.replace` calls, longest needle first, would follow); the
    result never rewrites text a replacement produced.
    """

    __slots__ = ("_automaton",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        automaton = ahocorasick.Automaton()
        for needle, replacement in pairs:
            if needle and needle not in automaton:
                automaton.add_word(needle, (len(needle), replacement))
        if len(automaton):
            automaton.make_automaton()
        self._automaton = automaton

    def __bool__(self) -> bool:
        return bool(len(self._automaton))

    def occurs_in(self, text: str) -> bool:
        """True when any needle occurs in `text`."""
        return bool(len(self._automaton)) and next(self._automaton.iter(text), None) is not None

    def spans(self, text: str, accept: Callable[[str, int], bool] | None = None) -> list[_Span]:
        """Non-overlapping (start, end, replacement) of the needles in `text`, in order of start.

        `accept(text, start)` may refuse an occurrence (one starting inside a JSON escape)."""
        if not len(self._automaton):
            return []
        found = [
            (end + 1 - length, end + 1, replacement)
            for end, (length, replacement) in self._automaton.iter(text)
            if accept is None or accept(text, end + 1 - length)
        ]
        found.sort()
        covered = -1
        for start, end, _ in found:
            if start < covered:
                return _claim_longest_first(found, len(text))
            covered = end
        return found

    def apply(self, text: str, accept: Callable[[str, int], bool] | None = None) -> str:
        """`text` with every chosen occurrence replaced."""
        spans = self.spans(text, accept)
        if not spans:
            return text
        pieces = []
        position = 0
        for start, end, replacement in spans:
            pieces.append(text[position:start])
            pieces.append(replacement)
            position = end
        pieces.append(text[position:])
        return "".join(pieces)


def _claim_longest_first(found: list[_Span], length: int) -> list[_Span]:
    """Overlapping occurrences resolved: longest first, then earliest; a map of claimed
    characters keeps this linear in the occurrences' total length."""
    claimed = bytearray(length)
    kept = []
    for start, end, replacement in sorted(found, key=lambda span: (span[0] - span[1], span[0])):
        if claimed.find(1, start, end) == -1:
            claimed[start:end] = b"\x01" * (end - start)
            kept.append((start, end, replacement))
    kept.sort()
    return kept


def _escape(text: str, style: str) -> str:
    """`text` JSON-escaped (without quotes) in `style`, as a latin-1 view of its bytes."""
    escaped = orjson.dumps(text)[1:-1].decode("utf-8") if style == "utf8" else json.dumps(text)[1:-1]
    return escaped.encode("utf-8").decode("latin-1")


def _json_rewrites(redactions: list[tuple[str, str]]) -> _Rewrites:
    """The rewrites of every original in both its JSON spellings, over latin-1 views of bytes."""
    pairs = []
    for original, replacement in redactions:
        if not original:
            continue
        utf8 = _escape(original, "utf8")
        pairs.append((utf8, _escape(replacement, "utf8")))
        ascii_form = _escape(original, "ascii")
        if ascii_form != utf8:
            pairs.append((ascii_form, _escape(replacement, "ascii")))
    return _Rewrites(pairs)


def _outside_escape(text: str, start: int) -> bool:
    """False when `start` is inside an escape sequence (`tom` in `\\tom` is a tab followed by
    `om`, not the text `tom`): an odd number of backslashes precedes it."""
    backslashes = 0
    while start - backslashes - 1 >= 0 and text[start - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 0


def redact_json_bytes(body: bytes, redactions: list[tuple[str, str]]) -> bytes:
    """`body` (JSON text) with every original replaced by its replacement."""
    rewrites = _json_rewrites(redactions)
    if not rewrites:
        return body
    # latin-1 maps each byte to one character and back, so the text view has the bytes' offsets.
    view = body.decode("latin-1")
    rewritten = rewrites.apply(view, _outside_escape)
    return body if rewritten is view else rewritten.encode("latin-1")


def _json_strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included, without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for key, child in item.items():
                yield key
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def texts_hold_any(texts: Iterable[str], redactions: list[tuple[str, str]]) -> bool:
    """True when one of `texts` still contains an original of `redactions` outside the
    replacements (a replacement may legitimately spell its original's kind). One pass over each
    text, however many redactions there are."""
    originals = _Rewrites((original, "") for original, _ in redactions)
    if not originals:
        return False
    masks = _Rewrites((replacement, "\x00") for _, replacement in redactions)
    return any(originals.occurs_in(masks.apply(text) if masks else text) for text in texts if text)


def _strings_holding(value: Any, redactions: list[tuple[str, str]]) -> bool:
    """True when a string (key or value) anywhere in the JSON value still contains an original
    outside the replacements."""
    return texts_hold_any(_json_strings(value), redactions)


def _rewrite_strings(value: Any, rewrites: _Rewrites) -> Any:
    """A copy of the JSON value with every string (keys included) rewritten, without recursion."""
    if isinstance(value, str):
        return rewrites.apply(value)
    if not isinstance(value, dict | list):
        return value
    top: dict[str, Any] | list[Any] = {} if isinstance(value, dict) else []
    stack: list[tuple[Iterator[Any], dict[str, Any] | list[Any]]] = [(_items(value), top)]
    while stack:
        items, target = stack[-1]
        for key, child in items:
            if isinstance(child, dict | list):
                copy: dict[str, Any] | list[Any] = {} if isinstance(child, dict) else []
                _put(target, key, copy, rewrites)
                stack.append((_items(child), copy))
                break
            _put(target, key, rewrites.apply(child) if isinstance(child, str) else child, rewrites)
        else:
            stack.pop()
    return top


def _items(container: dict[str, Any] | list[Any]) -> Iterator[tuple[str | None, Any]]:
    return iter(container.items()) if isinstance(container, dict) else ((None, item) for item in container)


def _put(target: dict[str, Any] | list[Any], key: str | None, item: Any, rewrites: _Rewrites) -> None:
    if isinstance(target, dict):
        assert key is not None
        target[rewrites.apply(key)] = item
    else:
        target.append(item)


def redact_json_document(body: bytes, redactions: list[tuple[str, str]]) -> bytes:
    """`body` with every original redacted, and proof of it: the decoded document holds none.

    The byte rewrite keeps every other byte as sent; it misses an original only when the sender
    spelled it with unusual escapes (`\\/`, `\\u0041`). Then the document is decoded, rewritten
    and re-encoded (its formatting changes, its meaning does not); an original the rewrite itself
    spells again, or a document that cannot be re-encoded, raises RedactionFailed, for the caller
    to refuse the document.
    """
    redacted = redact_json_bytes(body, redactions)
    try:
        document = orjson.loads(redacted)
    except orjson.JSONDecodeError as exc:
        raise RedactionFailed("the redacted document is not valid JSON") from exc
    if not _strings_holding(document, redactions):
        return redacted
    rewritten = _rewrite_strings(document, _Rewrites(redactions))
    if _strings_holding(rewritten, redactions):
        raise RedactionFailed("redacted text is still present in the document")
    try:
        return orjson.dumps(rewritten)
    except orjson.JSONEncodeError:
        pass  # nested deeper than orjson writes (255 levels): the standard library's encoder may
    try:
        return json.dumps(rewritten, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (RecursionError, ValueError) as exc:
        raise RedactionFailed("the redacted document cannot be re-encoded") from exc


class Placeholders:
    """Reversible redaction for one request: placeholder → original, held in memory only."""

    __slots__ = ("_originals",)

    def __init__(self) -> None:
        self._originals: dict[str, str] = {}

    def add(self, placeholder: str, original: str) -> None:
        self._originals[placeholder] = original

    def __bool__(self) -> bool:
        return bool(self._originals)

    def restorations(self) -> list[tuple[str, str]]:
        """(placeholder, original) pairs to apply to the answer, longest placeholder first."""
        return sorted(self._originals.items(), key=lambda pair: len(pair[0]), reverse=True)


def find_spans(text: str, redactions: list[tuple[str, str]]) -> list[_Span]:
    """Non-overlapping (start, end, replacement) spans of every original in `text`, in order.

    Longer originals claim their text first (redactions arrive longest first).
    """
    return _Rewrites(redactions).spans(text)


def rewrite_segment(text: str, start: int, end: int, spans: list[_Span]) -> str:
    """The part text[start:end] after redaction: a span's replacement appears in the segment
    where the span starts, and every character of a span disappears wherever it falls."""
    pieces = []
    position = start
    # Spans are sorted and never overlap, so their ends are sorted too: skip those before `start`.
    first = bisect.bisect_right(spans, start, key=lambda span: span[1])
    for index in range(first, len(spans)):
        span_start, span_end, replacement = spans[index]
        if span_start >= end:
            break
        if span_start > position:
            pieces.append(text[position:span_start])
        if span_start >= start:
            pieces.append(replacement)
        position = max(position, min(span_end, end))
    if position < end:
        pieces.append(text[position:end])
    return "".join(pieces)
