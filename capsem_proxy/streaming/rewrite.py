"""Rewrites the text carried by one stream event, re-encoding only that event.

Used for redaction inside streams: the event's JSON is parsed, the one string that carries
the event's text is replaced, and the event is re-serialised with its original framing (the
`event:` line, the line endings, a JSON-array element's separators). Every other event keeps
its exact bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from capsem_proxy.streaming.sse import split_data

__all__ = ["rewrite_event_text"]

_TEXT_KEYS = frozenset({"content", "text", "delta", "thinking", "partial_json", "refusal"})


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


def _rewrite_json(document: bytes, old: str, new: str) -> bytes | None:
    # Keys spelled with escapes read as plain keys here. A document only the lenient reading
    # understands (a BOM, 1e999) is not re-encoded: orjson would change what it says.
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        return None
    found: list[int] = []
    _replace_leaf(parsed, old, new, found)
    if len(found) != 1:
        return None  # ambiguous or absent: the caller fails closed
    return orjson.dumps(parsed)


def rewrite_event_text(raw: bytes, old: str, new: str, *, sse: bool) -> bytes | None:
    """`raw` with its text `old` replaced by `new`, or None when that cannot be done exactly."""
    if not sse:
        start = raw.find(b"{")
        if start == -1:
            return None
        rewritten = _rewrite_json(raw[start:], old, new)
        return None if rewritten is None else raw[:start] + rewritten
    cut = split_data(raw)
    if cut is None:
        return None  # text spread over several data lines (or an odd field) is not rewritten
    before, payload, after = cut
    rewritten = _rewrite_json(payload.strip(), old, new)
    return None if rewritten is None else before + rewritten + after
