"""Server-sent events: split a byte stream into whole events, keeping each event's exact bytes;
parse an event, cut out its one data value to replace it, and encode a new event.

Written by hand because the proxy must forward events byte for byte, cut only at event
boundaries; SSE client libraries decode events and lose the original framing.

Lines end as the spec says (WHATWG HTML, "event stream interpretation"): CRLF, a lone LF or a
lone CR, mixed freely; an event ends at an empty line. The SDKs' own decoders follow that rule,
so the proxy must too: a stream of CR-only lines is still a stream of events for the client.
An event that never ends would grow without limit: past `max_event_bytes` the stream fails.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from capsem_proxy.errors import UpstreamMalformed
from capsem_proxy.streaming.events import StreamEvent

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSESplitter", "encode_event", "event_data", "parse_event", "split_data"]

DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024

# Two line ends in a row. A CR followed by LF is one line end, never two.
_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINE_END = re.compile(rb"\r\n|\r|\n")
# The same, kept by `split` so an event can be put back together byte for byte.
_LINE_ENDS_KEPT = re.compile(rb"(\r\n|\r|\n)")
# The fields the spec defines; any other line is ignored by the spec's clients, but not by every
# SDK (google-genai parses unprefixed lines as JSON), so the proxy cannot pass it as harmless.
_KNOWN_FIELDS = frozenset({"data", "event", "id", "retry"})
_BOM = b"\xef\xbb\xbf"


def _split(data: bytes | bytearray, search_from: int, final: bool) -> tuple[list[bytes], int]:
    """The complete events in `data` and how many bytes they span.

    Searching starts at `search_from` (earlier bytes are known to hold no boundary). A boundary
    whose last byte is a CR at the very end of `data` waits for the next byte unless `final`: it
    may be the first half of a CRLF, and where an event ends must not depend on how the bytes
    were cut into reads.
    """
    events: list[bytes] = []
    position = 0
    search = search_from
    size = len(data)
    if data.find(b"\r", search) == -1:
        # Usual case: LF line ends only, found with a plain substring search.
        if not search and type(data) is bytes:
            return _events(data.split(b"\n\n"), b"\n\n", size)
        while True:
            end = data.find(b"\n\n", search)
            if end == -1:
                return events, position
            end += 2
            events.append(bytes(data[position:end]))
            position = search = end
    pieces = None
    if not search and type(data) is bytes:
        # Gemini's events: one line each, ended by CRLF CRLF. When the bytes between those hold no
        # other CR or LF, each of them ends an event (the line ends are CRLF only, below); two
        # searches of one byte each (memchr) tell, where counting the line ends reads every byte.
        pieces = data.split(b"\r\n\r\n")
        inner = b"".join(pieces)
        if inner.find(b"\r") == -1 and inner.find(b"\n") == -1:
            return _events(pieces, b"\r\n\r\n", size)
    crlf = data.count(b"\r\n", search)
    if crlf == data.count(b"\r", search) == data.count(b"\n", search):
        # CRLF line ends only: an event ends at the first CRLF CRLF, found as plainly.
        if pieces is not None:
            return _events(pieces, b"\r\n\r\n", size)
        while True:
            end = data.find(b"\r\n\r\n", search)
            if end == -1:
                return events, position
            end += 4
            events.append(bytes(data[position:end]))
            position = search = end
    while True:
        match = _BOUNDARY.search(data, search)
        if match is None:
            return events, position
        end = match.end()
        if end == size and data[end - 1] == 0x0D and not final:
            return events, position
        events.append(bytes(data[position:end]))
        position = search = end


def _events(pieces: list[bytes], boundary: bytes, size: int) -> tuple[list[bytes], int]:
    """`_split` of a read of `size` bytes that starts an event and where every boundary is spelled
    `boundary`, from the read split at it (`pieces`): each occurrence, left to right, ends an event,
    as the search for the next one from the end of the last finds them. One C-level split for the
    whole read, rather than a search, a slice and a copy for each event."""
    rest = pieces.pop()
    return [piece + boundary for piece in pieces], size - len(rest)


class SSESplitter:
    """Accumulates chunks and hands out the complete events they contain, as raw bytes."""

    __slots__ = ("_buffer", "_max_event_bytes", "_searched")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._max_event_bytes = max_event_bytes
        self._searched = 0  # bytes of the buffer known to hold no boundary

    def feed(self, chunk: bytes) -> bytes:
        """Add `chunk`; return the bytes of every event completed so far (possibly b"")."""
        return b"".join(self.feed_events(chunk))

    def feed_events(self, chunk: bytes) -> list[bytes]:
        """Add `chunk`; return each completed event's bytes separately.

        Raises UpstreamMalformed when an unfinished event grows past the cap.
        """
        buffer = self._buffer
        if not buffer:
            # Usual case: the chunk starts at an event boundary; no copy into the buffer.
            events, consumed = _split(chunk, 0, False)
            if consumed < len(chunk):
                buffer += memoryview(chunk)[consumed:]
                self._searched = max(len(buffer) - 3, 0)
                self._check_size()
            return events
        buffer += chunk
        events, consumed = _split(buffer, self._searched, False)
        if consumed:
            del buffer[:consumed]
        self._searched = max(len(buffer) - 3, 0)
        self._check_size()
        return events

    def finish(self) -> list[bytes]:
        """The stream ended: the events still pending (a last boundary ending in CR completes
        now), then whatever is left without a terminating empty line, as a last event."""
        buffer = self._buffer
        if not buffer:
            return []
        events, consumed = _split(buffer, self._searched, True)
        rest = bytes(buffer[consumed:])
        buffer.clear()
        self._searched = 0
        return [*events, rest] if rest else events

    def whole_events(self, chunk: bytes) -> bool:
        """True when nothing is pending and `chunk` ends at an event boundary: it can be
        forwarded as it is, without splitting."""
        return not self._buffer and (chunk.endswith(b"\n\n") or chunk.endswith(b"\r\n\r\n"))

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet complete."""
        return bytes(self._buffer)

    def _check_size(self) -> None:
        if len(self._buffer) > self._max_event_bytes:
            size = len(self._buffer)
            self._buffer.clear()
            raise UpstreamMalformed(
                f"the provider sent a stream event larger than {self._max_event_bytes} bytes "
                f"({size} bytes without an end)"
            )


def parse_event(raw: bytes) -> StreamEvent:
    """Parse one complete event's bytes into its `event` name and joined `data`.

    Lines that are no field of the spec (nor a comment) mark the event `unknown_lines`: a client
    might read them, and the proxy cannot.
    """
    if raw[:6] == b"data: ":
        # Usual case: one data line and nothing else.
        if raw.find(b"\n", 6) == len(raw) - 2 and raw[-1:] == b"\n" and raw.find(b"\r") == -1:
            return StreamEvent(raw, raw[6:-2].decode("utf-8", "replace"))  # no copy to strip the line ends
        body = raw[6:].rstrip(b"\r\n")
        if body.find(b"\n") == -1 and body.find(b"\r") == -1:  # find: `bytes in bytes` raises and clears a TypeError
            return StreamEvent(raw, body.decode("utf-8", "replace"))
    elif raw[:7] == b"event: " and raw[-2:] == b"\n\n" and raw.find(b"\r") == -1:
        # Anthropic's usual case: one `event:` line, one data line, LF line ends.
        newline = raw.find(b"\n")
        if raw[newline + 1 : newline + 7] == b"data: ":
            body = raw[newline + 7 : -2]
            if body.find(b"\n") == -1:
                return StreamEvent(raw, body.decode("utf-8", "replace"), raw[7:newline].decode("utf-8", "replace"))
    # A byte order mark may open the stream (the spec strips it); it is read past wherever it is.
    lines = _LINE_END.split(raw[3:] if raw.startswith(_BOM) else raw)
    event_name = None
    data_lines = []
    unknown = False
    for raw_line in lines:
        if not raw_line or raw_line[:1] == b":":
            continue
        line = raw_line.decode("utf-8", "replace")
        field, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if field == "data":
            data_lines.append(value)
        elif field == "event":
            event_name = value
        elif field not in _KNOWN_FIELDS:
            unknown = True
    return StreamEvent(raw=raw, data="\n".join(data_lines), event=event_name, unknown_lines=unknown)


def event_data(raw: bytes) -> bytes:
    """The joined `data` of one complete event, as bytes (what `parse_event(raw).data` says).

    Usual cases read without decoding: one `data:` line, alone or after one `event:` line, LF line
    ends (Anthropic's and Gemini's streams); anything else goes through `parse_event`.
    """
    body = raw
    if body[:7] == b"event: ":
        newline = body.find(b"\n")
        body = body[newline + 1 :] if newline != -1 else b""
    if body[:6] == b"data: " and body[-2:] == b"\n\n":
        value = body[6:-2]
        if value.find(b"\n") == -1 and raw.find(b"\r") == -1:
            return value
    return parse_event(raw).data.encode()


def split_data(raw: bytes) -> tuple[bytes, bytes, bytes] | None:
    """An event with exactly one `data:` line, cut around that line's value: (what comes before
    it, the value, what comes after it), so the value can be replaced while every other byte (the
    `event:` line, the line ends) stays as it was. None for any other event."""
    # Usual case: one line starts with `data` (after the event's start or a CR or LF), a `data:`
    # line whose value runs to the first line end after it.
    opens = raw.startswith(b"data")
    after_lf, after_cr = raw.count(b"\ndata"), raw.count(b"\rdata")
    if opens + after_lf + after_cr == 1:
        at = 0 if opens else (raw.find(b"\ndata") if after_lf else raw.find(b"\rdata")) + 1
        if raw.startswith(b"data:", at):
            start = at + (6 if raw.startswith(b" ", at + 5) else 5)
            end = raw.find(b"\n", start)
            carriage = raw.find(b"\r", start)
            if carriage != -1 and (end == -1 or carriage < end):
                end = carriage
            if end == -1:
                end = len(raw)
            return raw[:start], raw[start:end], raw[end:]
    parts = _LINE_ENDS_KEPT.split(raw)  # lines at even indexes, their line ends at odd ones
    data_lines = [index for index in range(0, len(parts), 2) if parts[index].startswith(b"data")]
    if len(data_lines) != 1 or not parts[data_lines[0]].startswith(b"data:"):
        return None  # data spread over several lines (or an odd field named data…)
    index = data_lines[0]
    line = parts[index]
    start = 6 if line.startswith(b"data: ") else 5
    return b"".join(parts[:index]) + line[:start], line[start:], b"".join(parts[index + 1 :])


def encode_event(event: str | None, payload: Any, newline: bytes = b"\n") -> bytes:
    """One SSE event: optional `event:` line, one `data:` line, blank line."""
    head = b"event: " + event.encode() + newline if event else b""
    return head + b"data: " + orjson.dumps(payload) + newline + newline
