"""Text that grows by appends, read by its end: the answer text of a guarded stream.

Joining a stream's pieces at every check costs the whole answer each time, so a long answer
costs the square of its length. Here a read of the last characters costs what it returns, and
the whole text is only built when asked for (for policies that read all of it).
"""

from __future__ import annotations

from bisect import bisect_right

__all__ = ["GrowingText"]

# Small pieces are merged into one in runs of this many, so the pieces stay few on long answers.
_MERGE_EVERY = 64


class GrowingText:
    """Appended pieces of text, with the offsets where each starts."""

    __slots__ = ("_joined", "_joined_length", "_pieces", "_starts", "_unmerged", "length")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._starts: list[int] = []
        # Characters so far (also `len()`; read as an attribute on hot paths, with no call).
        self.length = 0
        self._unmerged = 0  # pieces at the end not merged yet
        self._joined = ""  # the whole text as last built, and its length
        self._joined_length = 0

    def __len__(self) -> int:
        return self.length

    def append(self, piece: str) -> None:
        """Add `piece` at the end."""
        if not piece:
            return
        self._pieces.append(piece)
        self._starts.append(self.length)
        self.length += len(piece)
        self._unmerged += 1
        if self._unmerged >= _MERGE_EVERY:
            first = len(self._pieces) - self._unmerged
            merged = "".join(self._pieces[first:])
            start = self._starts[first]
            del self._pieces[first:], self._starts[first:]
            self._pieces.append(merged)
            self._starts.append(start)
            self._unmerged = 0

    def since(self, start: int) -> str:
        """The text from offset `start` to the end; costs the length returned (plus a search)."""
        return self.slice(start, self.length)

    def slice(self, start: int, end: int) -> str:
        """The text between offsets `start` and `end` (clamped to the text)."""
        if start < 0:
            start = 0
        if end > self.length:
            end = self.length
        if start >= end:
            return ""
        if self._joined_length >= end:
            return self._joined[start:end]
        if end == self.length and 2 * start <= end:
            # Most of the text, to its end (what each policy reads of a short answer): built
            # once with `value` and read from there by the next reader, for about what one join costs.
            return self.value()[start:]
        return self._join(start, end)

    def _join(self, start: int, end: int) -> str:
        first = bisect_right(self._starts, start) - 1
        last = bisect_right(self._starts, end - 1)
        offset = self._starts[first]
        return "".join(self._pieces[first:last])[start - offset : end - offset]

    def value(self) -> str:
        """The whole text (built once per growth, so whole reads cost the text's length)."""
        if self._joined_length != self.length:
            self._joined = self._joined + self._join(self._joined_length, self.length)
            self._joined_length = self.length
        return self._joined
