"""Server-sent events: split a byte stream into whole events, keeping each event's exact bytes.

Written by hand because the proxy must forward events byte for byte, cut only at event
boundaries; SSE client libraries decode events and lose the original framing.
"""

from __future__ import annotations

from capsem_proxy.streaming.events import StreamEvent

__all__ = ["SSESplitter", "parse_event"]

_LF_END = b"\n\n"
_CRLF_END = b"\r\n\r\n"


def _next_boundary(buffer: bytes | bytearray, start: int) -> tuple[int, int]:
    """(end of the next complete event, length of its terminator), or (-1, 0)."""
    lf = buffer.find(_LF_END, start)
    # A CRLF terminator only matters if it comes first, so search no further than the LF one.
    crlf = buffer.find(_CRLF_END, start, lf + 2 if lf != -1 else len(buffer))
    if crlf != -1:
        return crlf + 4, 4
    if lf != -1:
        return lf + 2, 2
    return -1, 0


def _split(data: bytes | bytearray, start: int, search_from: int) -> tuple[list[bytes], int]:
    """The complete events in `data` from `start`, and how many bytes they span.

    Both line endings are looked for at every event: the spec allows a stream to mix them.
    """
    events = []
    position = start
    search = max(search_from, start)
    while True:
        end, _ = _next_boundary(data, search)
        if end == -1:
            return events, position
        events.append(data[position:end])
        position = search = end


class SSESplitter:
    """Accumulates chunks and hands out the complete events they contain, as raw bytes."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> bytes:
        """Add `chunk`; return the bytes of every event completed so far (possibly b"")."""
        return b"".join(self.feed_events(chunk))

    def feed_events(self, chunk: bytes) -> list[bytes]:
        """Add `chunk`; return each completed event's bytes separately."""
        buffer = self._buffer
        if not buffer:
            # Usual case: the chunk starts at an event boundary; no copy into the buffer.
            events, consumed = _split(chunk, 0, 0)
            if consumed < len(chunk):
                buffer += chunk[consumed:]
            return events
        search_from = max(len(buffer) - 3, 0)
        buffer += chunk
        events, consumed = _split(buffer, 0, search_from)
        if consumed:
            events = [bytes(event) for event in events]
            del buffer[:consumed]
        return events

    def whole_events(self, chunk: bytes) -> bool:
        """True when nothing is pending and `chunk` ends at an event boundary: it can be
        forwarded as it is, without splitting."""
        return not self._buffer and (chunk.endswith(_LF_END) or chunk.endswith(_CRLF_END))

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet complete."""
        return bytes(self._buffer)


def parse_event(raw: bytes) -> StreamEvent:
    """Parse one complete event's bytes into its `event` name and joined `data`."""
    if raw[:6] == b"data: ":
        # Usual case: one data line and nothing else.
        body = raw[6:].rstrip(b"\r\n")
        if b"\n" not in body and b"\r" not in body:
            return StreamEvent(raw=raw, data=body.decode("utf-8", "replace"))
    text = raw.decode("utf-8", "replace")
    event_name = None
    data_lines = []
    for line in text.splitlines():
        if not line or line[0] == ":":
            continue
        field, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if field == "data":
            data_lines.append(value)
        elif field == "event":
            event_name = value
    return StreamEvent(raw=raw, data="\n".join(data_lines), event=event_name)
