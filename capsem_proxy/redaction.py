"""Applies redactions to wire bytes, touching only the JSON strings that contain them.

A redaction is a pair (original text, replacement). Inside a JSON document the original
appears JSON-escaped, either as UTF-8 (most clients) or with non-ASCII characters as \\uXXXX
escapes (Python's json default); both spellings are replaced, in the same spelling, so every
byte outside the redacted spans stays as the client or provider sent it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = [
    "Placeholders",
    "RedactionFailed",
    "find_spans",
    "redact_json_bytes",
    "redact_json_document",
    "rewrite_segment",
]


class RedactionFailed(Exception):
    """Text a policy asked to redact is still in the document after rewriting it."""


def _escaped_forms(text: str) -> list[tuple[bytes, str]]:
    utf8 = orjson.dumps(text)[1:-1]
    ascii_form = json.dumps(text)[1:-1].encode()
    forms = [(utf8, "utf8")]
    if ascii_form != utf8:
        forms.append((ascii_form, "ascii"))
    return forms


def _escape(text: str, style: str) -> bytes:
    return orjson.dumps(text)[1:-1] if style == "utf8" else json.dumps(text)[1:-1].encode()


def _replace_outside_escapes(body: bytes, escaped: bytes, replacement: bytes) -> bytes:
    """Replace `escaped` in JSON text, except where it would start inside an escape sequence
    (`tom` in `\\tom` is a tab followed by `om`, not the text `tom`)."""
    pieces = []
    position = 0
    found = body.find(escaped)
    while found != -1:
        backslashes = 0
        while found - backslashes - 1 >= 0 and body[found - backslashes - 1] == 0x5C:
            backslashes += 1
        if backslashes % 2 == 0:
            pieces.append(body[position:found])
            pieces.append(replacement)
            position = found + len(escaped)
            found = body.find(escaped, position)
        else:
            found = body.find(escaped, found + 1)
    pieces.append(body[position:])
    return b"".join(pieces)


def redact_json_bytes(body: bytes, redactions: list[tuple[str, str]]) -> bytes:
    """`body` (JSON text) with every original replaced by its replacement."""
    for original, replacement in redactions:
        for escaped, style in _escaped_forms(original):
            if escaped in body:
                body = _replace_outside_escapes(body, escaped, _escape(replacement, style))
    return body


def _strings_holding(value: Any, redactions: list[tuple[str, str]]) -> bool:
    """True when a string (key or value) anywhere in the JSON value still contains an original
    outside the replacements (a replacement may legitimately spell its original's kind)."""
    if isinstance(value, str):
        for _, replacement in redactions:
            if replacement:
                value = value.replace(replacement, "\x00")
        return any(original and original in value for original, _ in redactions)
    if isinstance(value, dict):
        return any(
            _strings_holding(key, redactions) or _strings_holding(item, redactions) for key, item in value.items()
        )
    if isinstance(value, list):
        return any(_strings_holding(item, redactions) for item in value)
    return False


def _rewrite_strings(value: Any, redactions: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for original, replacement in redactions:
            value = value.replace(original, replacement)
        return value
    if isinstance(value, dict):
        return {_rewrite_strings(key, redactions): _rewrite_strings(item, redactions) for key, item in value.items()}
    if isinstance(value, list):
        return [_rewrite_strings(item, redactions) for item in value]
    return value


def redact_json_document(body: bytes, redactions: list[tuple[str, str]]) -> bytes:
    """`body` with every original redacted, and proof of it: the decoded document holds none.

    The byte rewrite keeps every other byte as sent; it misses an original only when the sender
    spelled it with unusual escapes (`\\/`, `\\u0041`). Then the document is decoded, rewritten
    and re-encoded (its formatting changes, its meaning does not); an original the rewrite itself
    spells again raises RedactionFailed, for the caller to refuse the document.
    """
    redacted = redact_json_bytes(body, redactions)
    document = orjson.loads(redacted)
    if not _strings_holding(document, redactions):
        return redacted
    rewritten = _rewrite_strings(document, redactions)
    if _strings_holding(rewritten, redactions):
        raise RedactionFailed("redacted text is still present in the document")
    return orjson.dumps(rewritten)


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


def find_spans(text: str, redactions: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, replacement) spans of every original in `text`, in order.

    Longer originals claim their text first (redactions arrive longest first).
    """
    spans: list[tuple[int, int, str]] = []
    for original, replacement in redactions:
        position = text.find(original)
        while position != -1:
            end = position + len(original)
            if all(end <= start or position >= stop for start, stop, _ in spans):
                spans.append((position, end, replacement))
            position = text.find(original, end)
    spans.sort()
    return spans


def rewrite_segment(text: str, start: int, end: int, spans: list[tuple[int, int, str]]) -> str:
    """The part text[start:end] after redaction: a span's replacement appears in the segment
    where the span starts, and every character of a span disappears wherever it falls."""
    pieces = []
    position = start
    for span_start, span_end, replacement in spans:
        if span_end <= start or span_start >= end:
            continue
        if span_start > position:
            pieces.append(text[position:span_start])
        if span_start >= start:
            pieces.append(replacement)
        position = max(position, min(span_end, end))
    if position < end:
        pieces.append(text[position:end])
    return "".join(pieces)
