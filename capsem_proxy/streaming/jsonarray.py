"""Gemini's default stream: one JSON array whose elements arrive over time.

Written by hand because no JSON library splits a still-growing array into its complete
elements while keeping their exact bytes. Only structural characters are visited (a C-level
regex finds them), so long text inside strings costs little. An element that never ends would
grow without limit: past `max_element_bytes` the stream fails.
"""

from __future__ import annotations

import re

from capsem_proxy.errors import UpstreamMalformed

__all__ = ["DEFAULT_MAX_ELEMENT_BYTES", "JSONArraySplitter", "is_separator"]

DEFAULT_MAX_ELEMENT_BYTES = 8 * 1024 * 1024

_STRUCTURAL = re.compile(rb'[\\"{}\[\]]')
# What may stand between two elements (or open the array): whitespace, the comma, the opening
# bracket and a byte order mark. Anything else is content outside any element, which the proxy
# would forward without reading it.
_SEPARATOR = re.compile(rb"(?:\xef\xbb\xbf)?[\s,\[]*")


def is_separator(gap: bytes) -> bool:
    """True when `gap` (the bytes before an element) holds only separators."""
    return _SEPARATOR.fullmatch(gap) is not None


class JSONArraySplitter:
    """Finds where each top-level element of a streamed JSON array ends."""

    __slots__ = (
        "_buffer", "_depth", "_element_start", "_escape_at", "_in_string", "_max_element_bytes", "_scanned",
        "elements_seen",
    )

    def __init__(self, max_element_bytes: int = DEFAULT_MAX_ELEMENT_BYTES) -> None:
        self._buffer = bytearray()
        self._max_element_bytes = max_element_bytes
        self._depth = 0  # 1 inside the array, 2+ inside an element
        self._in_string = False
        self._escape_at = -1
        self._scanned = 0
        self._element_start = -1
        self.elements_seen = 0

    def feed(self, chunk: bytes) -> tuple[bytes, list[bytes]]:
        """Add `chunk`. Returns (bytes safe to forward: everything up to the end of the last
        complete element, the elements completed by this chunk, each as its JSON bytes)."""
        segments = self.feed_segments(chunk)
        return b"".join(segment for segment, _ in segments), [element for _, element in segments]

    def feed_segments(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """Add `chunk`. Returns, for each element it completes, (the bytes to forward for it: the
        separators before it and the element, the element's own JSON bytes).

        Raises UpstreamMalformed when an unfinished element grows past the cap."""
        buffer = self._buffer
        buffer += chunk
        segments: list[tuple[bytes, bytes]] = []
        segment_start = 0
        for match in _STRUCTURAL.finditer(buffer, self._scanned):
            position = match.start()
            if position == self._escape_at:
                continue
            char = buffer[position]
            if self._in_string:
                if char == 0x5C:  # backslash: the next byte is escaped
                    self._escape_at = position + 1
                elif char == 0x22:
                    self._in_string = False
                continue
            if char == 0x22:
                self._in_string = True
            elif char in (0x7B, 0x5B):  # { [
                self._depth += 1
                if self._depth == 2:
                    self._element_start = position
            elif char in (0x7D, 0x5D):  # } ]
                self._depth -= 1
                if self._depth == 1 and self._element_start >= 0:
                    end = position + 1
                    segments.append((bytes(buffer[segment_start:end]), bytes(buffer[self._element_start : end])))
                    self.elements_seen += 1
                    segment_start = end
                    self._element_start = -1
        self._scanned = len(buffer)
        if segment_start:
            del buffer[:segment_start]
            self._scanned -= segment_start
            if self._escape_at >= 0:
                self._escape_at -= segment_start
            if self._element_start >= 0:
                self._element_start -= segment_start
        if len(buffer) > self._max_element_bytes:
            size = len(buffer)
            buffer.clear()
            raise UpstreamMalformed(
                f"the provider sent a stream element larger than {self._max_element_bytes} bytes "
                f"({size} bytes without an end)"
            )
        return segments

    def rest(self) -> bytes:
        """Whatever is left after the last element (normally the closing bracket)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return rest
