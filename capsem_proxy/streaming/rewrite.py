"""Rewrites the text carried by one stream event, re-encoding only that event.

Used for redaction inside streams and to release the approved start of an event's text before
its end: the event's JSON is parsed, the one string that carries the event's text is replaced,
and the event is re-serialised with its original framing (the `event:` line, the line endings, a
JSON-array element's separators). Every other event keeps its exact bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from capsem_proxy.streaming.sse import split_data

__all__ = ["rewrite_event_text", "split_event_text"]

_TEXT_KEYS = frozenset({"content", "text", "delta", "thinking", "partial_json", "refusal"})
# What only the last part of a split event may carry: how the answer ended and what it cost
# (OpenAI `finish_reason` and `usage`; Gemini `finishReason`, `usageMetadata` and the
# metadata about the whole candidate). The first part goes out with these cleared.
_NULLED_IN_HEAD = frozenset({"finish_reason", "usage"})
_DROPPED_IN_HEAD = frozenset(
    {"finishReason", "usageMetadata", "citationMetadata", "groundingMetadata", "finishMessage"}
)
_CLOSING_KEYS = _NULLED_IN_HEAD | _DROPPED_IN_HEAD
# A delta's role opens a message; the SDKs concatenate repeated fields, so only the first part keeps it.
_DROPPED_IN_REST = frozenset({"role"})
# Between two elements of a JSON-array stream.
_ARRAY_SEPARATOR = b",\r\n"


def _replace_leaf(value: Any, old: str, new: str, found: list[int]) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if key in _TEXT_KEYS and item == old:
                    found.append(1)
                    value[key] = new
            else:
                _replace_leaf(item, old, new, found)
    elif isinstance(value, list):
        for item in value:
            _replace_leaf(item, old, new, found)
    return value


def _split_leaves(
    first: Any, second: Any, texts: tuple[str, str, str], found: list[int], in_delta: bool = False
) -> None:
    """One walk over two parses of one event for both halves of a split (`texts`: old, head,
    rest): the text `old` becomes `head` in the first and `rest` in the second wherever
    `_replace_leaf` would replace it (every occurrence counted in `found`, inside what the first
    half then drops too). Each dict is then stripped: in the first half the keys of what closes the
    answer are dropped or nulled, in the second a delta's role is dropped."""
    if isinstance(first, dict):
        old = texts[0]
        for key, item in first.items():
            if isinstance(item, str):
                if key in _TEXT_KEYS and item == old:
                    found.append(1)
                    first[key] = texts[1]
                    second[key] = texts[2]
            elif isinstance(item, (dict, list)):  # numbers, booleans and nulls hold no text
                _split_leaves(item, second[key], texts, found, key == "delta")
        if not _CLOSING_KEYS.isdisjoint(first):
            for key in [key for key in first if key in _DROPPED_IN_HEAD]:
                del first[key]
            for key in _NULLED_IN_HEAD:
                if key in first:
                    first[key] = None
        if in_delta and not _DROPPED_IN_REST.isdisjoint(second):
            for key in [key for key in second if key in _DROPPED_IN_REST]:
                del second[key]
    elif isinstance(first, list):
        for item, other in zip(first, second, strict=True):
            if isinstance(item, (dict, list)):
                _split_leaves(item, other, texts, found)


def _parsed_with(document: bytes, old: str, new: str) -> Any:
    """The document with its one text `old` replaced by `new`, or None when that cannot be done
    exactly. Keys spelled with escapes read as plain keys here. A document only the lenient
    reading understands (a BOM, 1e999) is not re-encoded: orjson would change what it says."""
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        return None
    found: list[int] = []
    _replace_leaf(parsed, old, new, found)
    if len(found) != 1:
        return None  # ambiguous or absent: the caller fails closed
    return parsed


def _rewrite_json(document: bytes, old: str, new: str) -> bytes | None:
    parsed = _parsed_with(document, old, new)
    return None if parsed is None else orjson.dumps(parsed)


def _frame(raw: bytes, sse: bool) -> tuple[bytes, bytes, bytes] | None:
    """(the event's bytes before its JSON document, the document, the bytes after it), or None
    when the event holds no single JSON document to rewrite."""
    if not sse:
        start = raw.find(b"{")
        return None if start == -1 else (raw[:start], raw[start:], b"")
    cut = split_data(raw)
    if cut is None:
        return None  # text spread over several data lines (or an odd field) is not rewritten
    before, payload, after = cut
    return before, payload.strip(), after


def rewrite_event_text(raw: bytes, old: str, new: str, *, sse: bool) -> bytes | None:
    """`raw` with its text `old` replaced by `new`, or None when that cannot be done exactly."""
    frame = _frame(raw, sse)
    if frame is None:
        return None
    before, document, after = frame
    rewritten = _rewrite_json(document, old, new)
    return None if rewritten is None else before + rewritten + after


def split_event_text(raw: bytes, old: str, head: str, rest: str, *, sse: bool) -> tuple[bytes, bytes] | None:
    """`raw`, whose text `old` is `head + rest`, as two events of the same format: the first carries
    `head` (and nothing that closes the answer: finish reason, usage), the second `rest` with
    everything else the event said. None when that cannot be done exactly."""
    frame = _frame(raw, sse)
    if frame is None:
        return None
    before, document, after = frame
    try:
        first = orjson.loads(document)
    except orjson.JSONDecodeError:
        return None
    second = orjson.loads(document)
    found: list[int] = []
    _split_leaves(first, second, (old, head, rest), found)
    if len(found) != 1:
        return None  # ambiguous or absent: the caller fails closed
    # A JSON-array element after the first needs its separator (the first one's may open the array).
    rest_before = before if sse else _ARRAY_SEPARATOR
    return before + orjson.dumps(first) + after, rest_before + orjson.dumps(second) + after
