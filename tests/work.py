"""Work measured in steps rather than seconds: the function calls (Python functions and built-ins)
a piece of code makes. The count is the same on any machine, however busy: a test bounding it
holds on a loaded 2-core machine and on a fast one alike."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["calls", "calls_awaiting"]


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            self.count += 1


def calls(action: Callable[[], object]) -> int:
    """The function calls `action()` makes."""
    counter = _Counter()
    previous = sys.getprofile()
    sys.setprofile(counter)
    try:
        action()
    finally:
        sys.setprofile(previous)
    return counter.count


async def calls_awaiting(action: Callable[[], Awaitable[object]]) -> int:
    """The function calls awaiting `action()` makes in this thread (the event loop's own turns
    included, should it suspend)."""
    counter = _Counter()
    previous = sys.getprofile()
    sys.setprofile(counter)
    try:
        await action()
    finally:
        sys.setprofile(previous)
    return counter.count
