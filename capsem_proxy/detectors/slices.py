"""Scanning a long text in slices, so no detector holds the event loop for long, with the same
findings a scan of the whole text gives.

Each slice owns a range of the text and is read with a margin on both sides (the detector's
`Reach`): `before` for look-behinds and cue words, `after` so a finding that starts in the range
is seen whole. A finding belongs to the slice where it starts, so one that straddles a boundary
is reported once. A finding still running at the end of what a slice read (a PEM block, a long
URL) is read again from its start, up to `reach.longest` characters.

Slices are sized by time: each is made as long as reading the previous ones says will take
about `STEP_TARGET_S` (never longer than the configured slice size), so a text dense in findings
(a megabyte of e-mail addresses) is read in short slices and ordinary prose in long ones.

`scan_in_slices` is a generator: it yields between slices (the caller lets other work run
there) and returns the findings.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from time import perf_counter

from capsem_proxy.detectors.base import Finding, Reach

__all__ = ["STEP_TARGET_S", "SliceRanges", "WindowScan", "scan_in_slices"]

# Scans a window of the text; the flag says whether the window reaches the end of the text
# (a streamed answer's end may still grow: a detector can treat it differently).
WindowScan = Callable[[str, bool], list[Finding]]

# How long reading one slice should take: the event loop gets a turn at least this often.
STEP_TARGET_S = 0.004
# The first slice is this long at most (the cost per character is not known yet), no slice shorter.
_FIRST_SLICE_CHARS = 4096
_SHORTEST_SLICE_CHARS = 1024
# A finding ending this close to the end of what was read may be cut short there (trailing
# punctuation a detector strips, context read after a finding): it is read again.
_END_MARGIN = 64


class SliceRanges:
    """The ranges (start, stop) a `length`-long text is read in, at most `max_chars` each, sized
    from the time reading the previous ones took (the reader reports it with `took`)."""

    __slots__ = ("_length", "_max_chars", "size")

    def __init__(self, length: int, max_chars: int) -> None:
        self._length = length
        self._max_chars = max(max_chars, _SHORTEST_SLICE_CHARS)
        self.size = min(self._max_chars, _FIRST_SLICE_CHARS)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start = 0
        while start < self._length:
            stop = min(self._length, start + self.size)
            yield start, stop
            start = stop

    def took(self, chars: int, seconds: float) -> None:
        """Reading the last range, `chars` long, took `seconds`: size the next one."""
        wanted = chars * STEP_TARGET_S / max(seconds, 1e-6)
        # Grow at most twofold per slice: one cheap stretch says little about the next.
        self.size = int(min(self._max_chars, 2 * self.size, max(_SHORTEST_SLICE_CHARS, wanted)))


def scan_in_slices(
    scan: WindowScan, text: str, reach: Reach, slice_chars: int
) -> Generator[None, None, list[Finding]]:
    """Every finding of `scan` in `text`, read slice by slice; yields between slices."""
    length = len(text)
    found: list[Finding] = []
    # How far the findings of earlier slices reach: a finding of a later slice lying wholly
    # inside one of them was settled there (a long finding read again covers later slices).
    covered = -1
    ranges = SliceRanges(length, slice_chars)
    for index, (start, stop) in enumerate(ranges):
        if index:
            yield
        began = perf_counter()
        window_start = max(0, start - reach.before)
        window_end = min(length, stop + reach.after)
        owned: list[Finding] = []
        for finding in scan(text[window_start:window_end], window_end == length):
            if not start <= window_start + finding.start < stop:
                continue  # read for context only: another slice owns it
            shifted = _shifted(finding, window_start)
            if window_end < length and shifted.end > window_end - _END_MARGIN:
                shifted = _read_again(scan, text, shifted, reach) or shifted
            if shifted.end > covered:
                owned.append(shifted)
        found.extend(owned)
        covered = max([covered, *(finding.end for finding in owned)])
        ranges.took(stop - start, perf_counter() - began)
    return found


def _shifted(finding: Finding, offset: int) -> Finding:
    return replace(finding, start=finding.start + offset, end=finding.end + offset)


def _read_again(scan: WindowScan, text: str, cut: Finding, reach: Reach) -> Finding | None:
    """The finding starting where `cut` starts, read with up to `reach.longest` characters (and
    `reach.after` past where it was cut, at least)."""
    window_start = max(0, cut.start - reach.before)
    window_end = min(len(text), max(cut.start + reach.longest, cut.end + reach.after))
    longest: Finding | None = None
    for finding in scan(text[window_start:window_end], window_end == len(text)):
        if window_start + finding.start == cut.start and (longest is None or finding.end > longest.end):
            longest = finding
    if longest is None or longest.end + window_start < cut.end:
        return None
    return _shifted(longest, window_start)
