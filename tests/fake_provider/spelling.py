"""Odd but valid spellings of an answer, and hostile answers, for the scenarios that ask for them.

Spellings a client SDK still reads: a byte order mark, another content type, SSE lines ended by
CR or CRLF, keys spelled with `\\u` escapes, a number such as `1e999` that orjson refuses. Hostile
answers: JSON cut short, an SSE event (or JSON-array element) that never ends, a gzip bomb, a
padded body.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator, Iterable
from functools import lru_cache
from typing import Any

import orjson

from .scenarios import Scenario

__all__ = [
    "answer_content_type",
    "endless_chunks",
    "gzip_bomb",
    "has_spelling",
    "respell_body",
    "respell_events",
]

_BOM = b"\xef\xbb\xbf"
_LINE = re.compile(rb"\r\n|\r|\n")


def has_spelling(sc: Scenario) -> bool:
    """True when the scenario asks for any respelling of a successful answer."""
    return bool(
        sc.bom or sc.line_end is not None or sc.escape_keys or sc.huge_number or sc.body_bytes or sc.truncate_json
    )


def answer_content_type(sc: Scenario, default: str) -> str:
    """The Content-Type a successful answer is sent with."""
    return sc.content_type if sc.content_type is not None else default


def _escaped_key(key: str) -> bytes:
    """`key` as a JSON string whose first character is a `\\u` escape (`"\\u0074ool_calls"`)."""
    rest = orjson.dumps(key[1:])[1:-1] if len(key) > 1 else b""
    return b'"' + f"\\u{ord(key[0]):04x}".encode() + rest + b'"' if key else b'""'


def _dumps(value: Any, escape_keys: bool) -> bytes:
    if not escape_keys or not isinstance(value, dict | list):
        return orjson.dumps(value)
    if isinstance(value, list):
        return b"[" + b",".join(_dumps(item, True) for item in value) + b"]"
    members = (_escaped_key(key) + b":" + _dumps(item, True) for key, item in value.items())
    return b"{" + b",".join(members) + b"}"


def _respell_json(document: bytes, sc: Scenario) -> bytes:
    """One JSON object re-serialised as the scenario asks (escaped keys, a `1e999` member), or
    cut short of its closing brace (`truncate_json`: JSON nobody can read, content still visible)."""
    if sc.truncate_json:
        return document.rstrip()[:-1]
    if not (sc.escape_keys or sc.huge_number):
        return document
    value = orjson.loads(document)
    out = _dumps(value, sc.escape_keys)
    if sc.huge_number and out.startswith(b"{"):
        # orjson cannot write such a number; Python's json (the SDKs') reads it as infinity.
        out = b'{"x_score":1e999' + (b"," if out != b"{}" else b"") + out[1:]
    return out


def respell_body(body: bytes, sc: Scenario) -> bytes:
    """A whole JSON answer as the scenario spells it."""
    body = _respell_json(body, sc)
    if sc.bom:
        body = _BOM + body
    if sc.body_bytes and len(body) < sc.body_bytes:
        body += b" " * (sc.body_bytes - len(body))  # trailing whitespace: still valid JSON
    return body


def _respell_sse_event(event: bytes, sc: Scenario) -> bytes:
    line_end = (sc.line_end or "\n").encode()
    lines = [line for line in _LINE.split(event) if line]
    out = []
    for line in lines:
        if line.startswith(b"data: {"):
            line = b"data: " + _respell_json(line[6:], sc)
        out.append(line)
    return line_end.join(out) + line_end + line_end


def _respell_array_piece(piece: bytes, sc: Scenario) -> bytes:
    start, end = piece.find(b"{"), piece.rfind(b"}")
    if start == -1 or end == -1:
        return piece
    return piece[:start] + _respell_json(piece[start : end + 1], sc) + piece[end + 1 :]


def respell_events(events: Iterable[bytes], sc: Scenario, *, sse: bool) -> list[bytes]:
    """The events of a stream (SSE events, or pieces of Gemini's JSON array) as the scenario spells them."""
    spelled = [_respell_sse_event(event, sc) if sse else _respell_array_piece(event, sc) for event in events]
    if sc.bom and spelled:
        spelled[0] = _BOM + spelled[0]
    return spelled


async def endless_chunks(sse: bool) -> AsyncIterator[bytes]:
    """An event that never ends: a `data:` line (or an array element's string) growing forever."""
    yield b'data: {"choices":[{"delta":{"content":"' if sse else b'[{"candidates":[{"content":{"parts":[{"text":"'
    chunk = b"a" * 65536
    while True:
        yield chunk


@lru_cache(maxsize=4)
def gzip_bomb(prefix: bytes, size: int) -> bytes:
    """`prefix` followed by whitespace up to `size` bytes, gzipped (about a thousandth the size)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    parts = [compressor.compress(prefix)]
    block = b" " * (1 << 20)
    remaining = size - len(prefix)
    while remaining > 0:
        parts.append(compressor.compress(block[: min(remaining, len(block))]))
        remaining -= len(block)
    parts.append(compressor.flush())
    return b"".join(parts)
