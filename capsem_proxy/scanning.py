"""Bounded detector work: how much text one request may have screened, how long texts are
screened without holding the event loop, and how many such scans run at once.

- A text up to `slice_chars` long is screened inline, in one step, as before: the common case
  costs no task, no timer and no extra turn of the event loop. So is a run of small texts, up
  to `slice_chars` characters between two turns.
- A longer text is screened in slices (`capsem_proxy.detectors.slices`) that give the event loop
  back between them. At most `max_concurrent_large_scans` such scans run at once per process;
  the others wait their turn, and that wait counts against their policy's time budget
  (`timeout_ms`), which the pipeline enforces between slices.
- Each detector screens at most `max_chars_per_request` characters of one request (and as many
  of its answer); past that the request is refused as too large to screen (HTTP 413), never
  forwarded unscreened.

The pipeline opens a `ScanLedger` for each request (and one for its answer) and makes it the
current one while it runs the policies; detectors find it with `current_ledger()`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from capsem_proxy.decisions import Decision, Verdict

if TYPE_CHECKING:
    from capsem_proxy.hooks import RequestContext

__all__ = [
    "LARGE_BODY_BYTES",
    "TOO_LARGE_TO_SCREEN",
    "ScanLedger",
    "ScanLimits",
    "current_ledger",
    "in_slices",
    "large_body_turn",
    "ledger_for",
    "reset_current",
    "screen",
    "set_current",
    "too_large_decision",
    "using_ledger",
]

# The reason of a refusal for want of scan budget (answered with 413 on the request side).
TOO_LARGE_TO_SCREEN = "too_large_to_screen"

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """The process-wide limits of detector work (the `scanning` settings)."""

    max_chars_per_request: int = 1024 * 1024
    slice_chars: int = 8192
    max_concurrent_large_scans: int = 2

    def gate(self) -> asyncio.Semaphore:
        """The semaphore admitting large scans, one per event loop."""
        loop = asyncio.get_running_loop()
        gates = _GATES.setdefault(self, weakref.WeakKeyDictionary())
        gate = gates.get(loop)
        if gate is None:
            gate = gates[loop] = asyncio.Semaphore(self.max_concurrent_large_scans)
        return gate


_GATES: dict[ScanLimits, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]] = {}
DEFAULT_LIMITS = ScanLimits()


class ScanLedger:
    """The detector work done for one request (or one answer): characters each detector
    screened, and characters screened inline since the event loop last had a turn."""

    __slots__ = ("_grown", "_screened", "_since_turn", "answer", "limits")

    def __init__(self, limits: ScanLimits = DEFAULT_LIMITS, *, answer: bool = False) -> None:
        self.limits = limits
        self.answer = answer
        self._screened: dict[int, int] = {}
        self._grown: dict[int, int] = {}
        self._since_turn = 0

    def charge(self, owner: object, chars: int, *, growing: bool = False, inline: bool = False) -> bool:
        """Count a text of `chars` characters screened by `owner`; False when that takes it past
        the budget (the text must then not be screened, and the request not go on).

        `growing`: the text is the answer seen so far, checked again as a stream grows; only what
        it grew by since the last check counts (the budget bounds the text, not re-readings).
        `inline`: when within the budget, `inline(chars)` too, in the same call (for a text the
        caller knows fits: `fits_inline`).
        """
        key = id(owner)
        counted = chars
        if growing:
            grown = self._grown.get(key, 0)
            if chars > grown:
                self._grown[key] = chars
                counted = chars - grown
            else:
                counted = 0
        total = self._screened.get(key, 0) + counted
        self._screened[key] = total
        if total > self.limits.max_chars_per_request:
            return False
        if inline:
            self.inline(chars)
        return True

    def screened(self, owner: object) -> int:
        """Characters `owner` screened so far."""
        return self._screened.get(id(owner), 0)

    def fits_inline(self, chars: int) -> bool:
        """Whether `inline(chars)` would be True, asked without counting them."""
        return self._since_turn + chars <= self.limits.slice_chars

    def inline(self, chars: int) -> bool:
        """True when `chars` more characters may be screened before the event loop has a turn."""
        if self._since_turn + chars <= self.limits.slice_chars:
            self._since_turn += chars
            return True
        return False

    def turn_given(self) -> None:
        self._since_turn = 0

    @asynccontextmanager
    async def large_scan(self) -> AsyncIterator[None]:
        """Hold one of the process's large-scan places (waiting for it counts as the policy's time)."""
        async with self.limits.gate():
            yield


_CURRENT: ContextVar[ScanLedger | None] = ContextVar("capsem_scan_ledger", default=None)


def current_ledger() -> ScanLedger:
    """The ledger of the request whose policies are running (a fresh one outside the pipeline)."""
    ledger = _CURRENT.get()
    return ledger if ledger is not None else ScanLedger()


@contextmanager
def using_ledger(ledger: ScanLedger) -> Iterator[ScanLedger]:
    """Makes `ledger` the current one for the block (tests, and callers outside the pipeline)."""
    token = _CURRENT.set(ledger)
    try:
        yield ledger
    finally:
        _CURRENT.reset(token)


# The pipeline's cheap form of `using_ledger`, run for every request: `set_current(ledger)` makes
# `ledger` the current one until `reset_current(token)` undoes it (the context variable's own
# methods, called with no Python frame of their own).
set_current: Callable[[ScanLedger], Token[ScanLedger | None]] = _CURRENT.set
reset_current: Callable[[Token[ScanLedger | None]], None] = _CURRENT.reset


async def screen(chars: int, whole: Callable[[], R], sliced: Callable[[int], Generator[None, None, R]]) -> R:
    """The result of a scan of a `chars`-long text: `whole()` inline when the text is small,
    else `sliced(slice_chars)` read in slices (see `in_slices`)."""
    ledger = current_ledger()
    if ledger.inline(chars):
        return whole()
    return await in_slices(ledger, sliced(ledger.limits.slice_chars))


async def in_slices(ledger: ScanLedger, steps: Generator[None, None, R]) -> R:
    """Drive a sliced scan to its result, giving the event loop a turn before each slice, in one
    of the process's large-scan places."""
    async with ledger.large_scan():
        while True:
            ledger.turn_given()
            await asyncio.sleep(0)
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


# Request and answer bodies larger than this are parsed one at a time (`large_body_turn`).
LARGE_BODY_BYTES = 256 * 1024
_BODY_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


class _NoTurn:
    """The turn of a body small enough to go straight on: nothing to wait for."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_TURN = _NoTurn()


def large_body_turn(size: int) -> AbstractAsyncContextManager[None]:
    """Parse a body of `size` bytes in its turn: parsing and decoding a megabyte holds the event
    loop for milliseconds, and fifty arriving at once held it for a quarter of a second. Bodies
    over LARGE_BODY_BYTES take turns, one at a time per process, so every other request (and
    /health) is served between two of them; smaller ones go straight on (a shared no-op, no
    context manager built per request)."""
    if size <= LARGE_BODY_BYTES:
        return _NO_TURN
    loop = asyncio.get_running_loop()
    gate = _BODY_GATES.get(loop)
    if gate is None:
        gate = _BODY_GATES[loop] = asyncio.Semaphore(1)
    return gate


def too_large_decision(policy: str, hook: str, ledger: ScanLedger) -> Decision:
    """The BLOCK for a text that would take `policy` past the request's scan budget."""
    limit = ledger.limits.max_chars_per_request
    what = "the answer" if ledger.answer else "the request"
    return Decision(
        Verdict.BLOCK, policy, hook, reason=TOO_LARGE_TO_SCREEN,
        details=f"too large to screen: {what} holds more than {limit} characters of text for the '{policy}' detector",
        extra={"limit_chars": limit},
    )


def ledger_for(context: RequestContext, limits: ScanLimits, *, answer: bool) -> ScanLedger:
    """The request's ledger (or its answer's), made when first needed."""
    if answer:
        if context.answer_ledger is None:
            context.answer_ledger = ScanLedger(limits, answer=True)
        return context.answer_ledger
    if context.request_ledger is None:
        context.request_ledger = ScanLedger(limits, answer=False)
    return context.request_ledger
