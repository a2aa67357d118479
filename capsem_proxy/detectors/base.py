"""What every detector returns and the interface it offers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = ["DEFAULT_REACH", "Detector", "Finding", "Reach", "best_without_overlaps"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a detector found in a text.

    `kind` names what it is (`aws_access_key`, `email`, `injection`…) and becomes the
    `<type>` of `[REDACTED:<type>]`; `start`/`end` index the scanned text, so `text` is
    `scanned[start:end]`. `score` is the detector's confidence in [0, 1].
    """

    kind: str
    start: int
    end: int
    text: str
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class Reach:
    """How much text around a finding a detector reads, so a long text can be scanned in slices
    (see `capsem_proxy.detectors.slices`) and find what a scan of the whole text finds.

    `before`: characters read before a finding (look-behinds, cue words, a markdown label).
    `after`: a finding this long, plus the context read after it, is seen whole in one slice.
    `longest`: a finding still running at the end of a slice is read again up to this length;
    a longer one is reported as far as it was read.
    """

    before: int = 256
    after: int = 2048
    longest: int = 16384

    def __post_init__(self) -> None:
        if min(self.before, self.after) < 0 or self.longest < self.after:
            raise ValueError("a reach needs before, after >= 0 and longest >= after")


# For detectors that do not declare their reach (`reach` attribute).
DEFAULT_REACH = Reach()


class Detector(Protocol):
    """Finds things in text. Pure and thread-safe: no I/O, no state kept between calls.

    A detector may declare a `reach` (class attribute, a Reach) telling how far around a
    finding it reads; DEFAULT_REACH is assumed otherwise.
    """

    name: str

    def scan(self, text: str) -> list[Finding]:
        """Every finding in `text`, in order of `start`."""
        ...


def best_without_overlaps(items: list[T], span: Callable[[T], tuple[int, int]], rank: Callable[[T], Any]) -> list[T]:
    """`items` in order of start, keeping only the best (lowest `rank`) wherever spans overlap:
    items are taken best first, each kept when it overlaps none already kept.

    Linear in the items' total length (a map of the characters already claimed), where
    comparing each item with every kept one took quadratic time on texts of many findings.
    """
    by_start = sorted(items, key=span)
    reach = -1
    for item in by_start:
        start, end = span(item)
        if start < reach:
            break
        reach = end
    else:
        return by_start  # nothing overlaps: the common case
    low = span(by_start[0])[0]
    claimed = bytearray(max(span(item)[1] for item in items) - low)
    kept = []
    for item in sorted(items, key=rank):
        start, end = span(item)
        if claimed.find(1, start - low, end - low) == -1:
            claimed[start - low : end - low] = b"\x01" * (end - start)
            kept.append(item)
    kept.sort(key=span)
    return kept
