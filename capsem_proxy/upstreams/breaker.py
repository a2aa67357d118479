"""A circuit breaker per upstream: closed (requests pass), open (skipped until `open_s` has passed
since it opened), half-open (one probe request passes; its outcome closes or re-opens it)."""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# Gauge values of each state (0 closed, 1 open, 2 half-open).
STATE_VALUES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}


class CircuitBreaker:
    """Counts consecutive failures of one upstream; `allow()` says whether to try it now."""

    __slots__ = ("_clock", "_failures", "_on_change", "_open_s", "_opened_at", "_probing", "_threshold", "state")

    def __init__(
        self,
        failures: int,
        open_s: float,
        *,
        clock: Callable[[], float] = monotonic,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._threshold = failures
        self._open_s = open_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.state = CLOSED

    def allow(self) -> bool:
        """True when a request may go to the upstream now (a half-open breaker lets one through)."""
        state = self.state
        if state == CLOSED:
            return True
        if state == OPEN:
            if self._clock() - self._opened_at < self._open_s:
                return False
            self._set(HALF_OPEN)
        if self._probing:
            return False
        self._probing = True
        return True

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a probe through."""
        return max(0.0, self._open_s - (self._clock() - self._opened_at)) if self.state == OPEN else 0.0

    def succeeded(self) -> None:
        self._failures = 0
        self._probing = False
        if self.state != CLOSED:
            self._set(CLOSED)

    def failed(self) -> None:
        self._probing = False
        self._failures += 1
        if self.state == HALF_OPEN or self._failures >= self._threshold:
            self._opened_at = self._clock()
            self._set(OPEN)

    def released(self) -> None:
        """The probe ended without telling anything (the client left): let another probe through."""
        self._probing = False

    def _set(self, state: str) -> None:
        self.state = state
        if self._on_change is not None:
            self._on_change(state)
