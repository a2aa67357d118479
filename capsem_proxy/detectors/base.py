"""What every detector returns and the interface it offers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Detector", "Finding"]


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


class Detector(Protocol):
    """Finds things in text. Pure and thread-safe: no I/O, no state kept between calls."""

    name: str

    def scan(self, text: str) -> list[Finding]:
        """Every finding in `text`, in order of `start`."""
        ...
