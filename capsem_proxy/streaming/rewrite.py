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


def _split_sites(
    value: Any, old: str, sites: list[tuple[Any, str]], roles: list[tuple[dict[str, Any], str]],
    closing: list[dict[str, Any]],
) -> None:
    """Where a split changes one parse of an event: each place `_replace_leaf` would replace `old`
    (dict and key, inside what the first half then drops too), each delta holding a role (its
    parent and key), and each dict holding keys of what closes the answer. orjson parses into
    exact dicts, lists and strings: their types are compared, not looked up as instances."""
    if type(value) is dict:
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                if key in _TEXT_KEYS and item == old:
                    sites.append((value, key))
            elif kind is dict:
                _split_sites(item, old, sites, roles, closing)
                if key == "delta" and not _DROPPED_IN_REST.isdisjoint(item):
                    roles.append((value, key))
            elif kind is list:
                _split_sites(item, old, sites, roles, closing)
        if not _CLOSING_KEYS.isdisjoint(value):
            closing.append(value)
    else:
        for item in value:
            kind = type(item)
            if kind is dict or kind is list:  # numbers, booleans and nulls hold no text
                _split_sites(item, old, sites, roles, closing)


def _split_document(document: Any, old: str, head: str, rest: str) -> tuple[bytes, bytes] | None:
    """The two halves of one parsed event (see `split_event_text`), serialised from that one parse:
    the second first, with `rest` in the text and each delta's role left out (a copy of that delta
    stands in while it is serialised), then the first, with `head` and what closes the answer
    dropped or nulled. None unless `old` is found exactly once."""
    sites: list[tuple[Any, str]] = []
    roles: list[tuple[dict[str, Any], str]] = []
    closing: list[dict[str, Any]] = []
    if type(document) is dict or type(document) is list:
        _split_sites(document, old, sites, roles, closing)
    if len(sites) != 1:
        return None  # ambiguous or absent: the caller fails closed
    holder, key = sites[0]
    holder[key] = rest
    if roles:
        deltas = [parent[name] for parent, name in roles]
        for parent, name in roles:
            parent[name] = {field: item for field, item in parent[name].items() if field not in _DROPPED_IN_REST}
        second = orjson.dumps(document)
        for (parent, name), delta in zip(roles, deltas, strict=True):
            parent[name] = delta
    else:
        second = orjson.dumps(document)
    holder[key] = head
    for value in closing:
        for field in [field for field in value if field in _DROPPED_IN_HEAD]:
            del value[field]
        for field in _NULLED_IN_HEAD:
            if field in value:
                value[field] = None
    return orjson.dumps(document), second


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
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        return None
    halves = _split_document(parsed, old, head, rest)
    if halves is None:
        return None
    first, second = halves
    # A JSON-array element after the first needs its separator (the first one's may open the array).
    rest_before = before if sse else _ARRAY_SEPARATOR
    return before + first + after, rest_before + second + after
