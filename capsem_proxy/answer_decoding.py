"""Reading a provider's answer the way the caller's SDK will: whatever the spelling.

A security gate must decode at least everything the client decodes, or a secret walks past it
in a spelling only one side understands. The SDKs parse answers with Python's `json` module,
which accepts what orjson refuses: a byte order mark, UTF-16 and UTF-32 bodies, `NaN`,
`Infinity`, numbers such as `1e999` (read as infinity), integers beyond 64 bits and lone
surrogates. orjson stays the fast path; the standard library is the fallback that gives the
same reading as the SDK. What neither can read is unreadable, and the caller fails closed.

Byte-level shortcuts (a marker search such as `b'"tool_calls"'`) only hold for UTF-8 JSON that
spells its keys plainly: `may_be_disguised` says when a body might spell them otherwise
(`"tool\\u005fcalls"`, UTF-16), so that it is decoded instead.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = [
    "BLANK_EVENT", "UnreadableAnswer", "event_data_json", "is_json_media", "may_be_disguised", "media_type",
    "parse_answer_json",
]

_BOM = "\ufeff"


class UnreadableAnswer(ValueError):
    """An answer (or stream event) that is not JSON by any reading an SDK would accept."""


def media_type(content_type: str) -> str:
    """The media type of a Content-Type value, lower-cased, without parameters
    (`Text/Event-Stream; charset=utf-8` -> `text/event-stream`)."""
    return content_type.partition(";")[0].strip().lower()


def is_json_media(media: str) -> bool:
    """True for `application/json`, `text/json` and any `+json` type."""
    return media in ("application/json", "text/json") or media.endswith("+json")


def may_be_disguised(raw: bytes) -> bool:
    """True when `raw` may spell a key other than plainly in UTF-8: a `\\u` escape, or NUL bytes
    (UTF-16 / UTF-32 text). Such bytes must be decoded, never judged by a byte search.

    A backslash is looked for first: a one-byte search is a memchr, many times faster than the
    two-byte one, and most answers hold no backslash at all."""
    # `find`, not `in`: `bytes in bytes` raises and clears a TypeError inside CPython on every call.
    return (raw.find(b"\\") != -1 and raw.find(b"\\u") != -1) or raw.find(b"\x00") != -1


def parse_answer_json(data: bytes | str) -> Any:
    """The JSON value of `data`, read as leniently as the provider SDKs read it.

    Raises UnreadableAnswer when no such reading exists (including nesting too deep to read).
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    if isinstance(data, str) and data.startswith(_BOM):
        data = data[1:]  # json.loads refuses a BOM in text; in bytes it detects it itself
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UnreadableAnswer(f"not JSON ({type(exc).__name__})") from None


# What `event_data_json` gives for an event whose data is only white space (the SDKs skip it).
BLANK_EVENT: Any = object()


def event_data_json(payload: str) -> Any:
    """The JSON value of a stream event's data, read as `parse_answer_json` reads it; the usual event, a
    JSON object, is read at once (one call on the hot path of every stream). BLANK_EVENT for data that is
    only white space. Raises UnreadableAnswer."""
    if payload[:1] == "{":
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    elif not payload.strip():
        return BLANK_EVENT
    return parse_answer_json(payload)
