"""SSE events carrying JSON-RPC messages: read one event's messages, write an event anew.

Events are split by the proxy's one SSE splitter (`capsem_proxy.streaming.sse`), which keeps their
exact bytes: an event whose messages no check changed goes to the client as the server sent it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from capsem_proxy.mcp.jsonrpc import InvalidMessage, Message, check_message
from capsem_proxy.streaming.sse import parse_event

__all__ = ["EventMessages", "event_with_data", "read_event"]

_LINE_END = re.compile(rb"\r\n|\r|\n")
# The fields kept when an event is written anew (its data replaced).
_KEPT_FIELDS = (b"id:", b"event:", b"retry:")


class EventMessages:
    """The JSON-RPC messages of one SSE event (none for a priming or keep-alive event)."""

    __slots__ = ("batch", "event_id", "messages", "raw", "unreadable")

    def __init__(self, raw: bytes, messages: list[Message], batch: bool, unreadable: str, event_id: bool) -> None:
        self.raw = raw
        self.messages = messages
        self.batch = batch
        # Why the event cannot be read ("" when it can): the proxy cannot check it, so it never passes.
        self.unreadable = unreadable
        # True when the event carries an `id:` (the stream can be resumed from it).
        self.event_id = event_id


def read_event(raw: bytes) -> EventMessages:
    """The messages of one event's bytes."""
    event = parse_event(raw)
    has_id = b"id:" in raw and any(line.startswith(b"id:") for line in _LINE_END.split(raw))
    if event.unknown_lines:
        return EventMessages(raw, [], False, "the event holds lines that are no SSE field", has_id)
    data = event.data.strip()
    if not data:
        return EventMessages(raw, [], False, "", has_id)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return EventMessages(raw, [], False, "the event's data is not JSON", has_id)
    members = document if isinstance(document, list) else [document]
    messages: list[Message] = []
    try:
        messages = [check_message(member) for member in members]
    except InvalidMessage as exc:
        return EventMessages(raw, [], False, f"the event's data is not a JSON-RPC message ({exc})", has_id)
    return EventMessages(raw, messages, isinstance(document, list), "", has_id)


def event_with_data(raw: bytes, value: Any) -> bytes:
    """The event `raw` with its data replaced by `value` as JSON (its id, name and retry kept)."""
    lines = [line for line in _LINE_END.split(raw) if line.startswith(_KEPT_FIELDS)]
    lines.append(b"data: " + orjson.dumps(value))
    return b"\n".join(lines) + b"\n\n"


def data_event(value: Any) -> bytes:
    """A new event carrying `value` (a message the proxy adds to a stream)."""
    return b"event: message\ndata: " + orjson.dumps(value) + b"\n\n"
