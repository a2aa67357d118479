"""The circuit breaker: closed, open after N failures in a row, one probe when half-open."""

from __future__ import annotations

from capsem_proxy.upstreams.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_its_failures_in_a_row_only():
    clock = Clock()
    breaker = CircuitBreaker(3, 30, clock=clock)
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # a success in between starts the count again
    breaker.failed()
    breaker.failed()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.failed()
    assert breaker.state == OPEN
    assert not breaker.allow()
    assert breaker.retry_after_s() == 30


def test_half_open_lets_one_probe_through_and_its_outcome_decides():
    clock = Clock()
    changes: list[str] = []
    breaker = CircuitBreaker(1, 10, clock=clock, on_change=changes.append)
    breaker.failed()
    clock.now += 10
    assert breaker.allow()  # the probe
    assert breaker.state == HALF_OPEN
    assert not breaker.allow()  # only one at a time
    breaker.failed()  # the probe failed: open again, for a full period
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == CLOSED and breaker.allow() and breaker.allow()
    assert changes == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


def test_a_probe_that_tells_nothing_lets_another_through():
    clock = Clock()
    breaker = CircuitBreaker(1, 1, clock=clock)
    breaker.failed()
    clock.now += 1
    assert breaker.allow()
    breaker.released()
    assert breaker.allow()
