"""Sending one request along its plan: each upstream tried up to `retries.attempts` times, then the
next, until one answers with something other than a retryable failure.

Everything here happens before the first byte of the answer reaches the client: an answer handed
back is the client's, and a stream broken later is never retried. The last retryable answer, when
nothing better came, goes to the client as the provider sent it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from time import perf_counter

from capsem_proxy.errors import ErrorKind, ProxyError, UpstreamTimeout, UpstreamUnavailable
from capsem_proxy.scanning import large_body_turn
from capsem_proxy.translation import TranslationError
from capsem_proxy.translation.response import translated
from capsem_proxy.upstream import UpstreamResponse
from capsem_proxy.upstreams.backoff import backoff_s, retry_after_s
from capsem_proxy.upstreams.http1 import ConnectError
from capsem_proxy.upstreams.outgoing import Outgoing, prepare
from capsem_proxy.upstreams.registry import Target
from capsem_proxy.upstreams.settings import RetrySettings

__all__ = ["Attempt", "CircuitOpen", "Dispatch", "retryable"]

ANSWERED, BREAKER_OPEN, TIMEOUT, CONNECT, RESET = "answered", "breaker_open", "timeout", "connect", "reset"
UNTRANSLATABLE = "untranslatable"  # the request cannot be said in this upstream's API


def retryable(retry: RetrySettings) -> frozenset[int | str]:
    """The statuses and failures worth another try: `connect` covers a connection lost before any
    answer (`reset`) too."""
    kinds: set[int | str] = set(retry.retry_on)
    if CONNECT in kinds:
        kinds.add(RESET)
    return frozenset(kinds)


class CircuitOpen(ProxyError):
    """Every upstream that could serve the request has its circuit breaker open."""

    status = 503
    kind = ErrorKind.UNAVAILABLE

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class Attempt:
    """One try of one upstream: who, how it ended (`answered`, a retryable HTTP status as text,
    `timeout`, `connect`, `reset`, `breaker_open`, `untranslatable`) and how long it took."""

    target: str
    outcome: str
    status: int | None = None
    elapsed_ms: float = 0.0
    fell_over: bool = False  # the next attempt went to another upstream


@dataclass(slots=True)
class Dispatch:
    """One request's way through its plan; `attempts` and `served` tell how it went."""

    targets: list[Target]
    outgoing: Outgoing
    retry: RetrySettings
    retry_on: frozenset[int | str]
    attempts: list[Attempt] = field(default_factory=list)
    served: Target | None = None

    async def send(self) -> UpstreamResponse:
        """The answer the client gets (headers in, body unread); ProxyError when none came."""
        retry = self.retry
        retry_on = self.retry_on
        failure: ProxyError | None = None
        untranslatable: TranslationError | None = None
        open_retry_after: float | None = None
        last = len(self.targets) - 1
        for index, target in enumerate(self.targets):
            upstream = target.upstream
            breaker = upstream.breaker
            if breaker is not None and not breaker.allow():
                wait = breaker.retry_after_s()
                open_retry_after = wait if open_retry_after is None else min(open_retry_after, wait)
                self._note(target, BREAKER_OPEN, None, 0.0)
                continue
            try:
                if upstream.wire != self.outgoing.route.provider:
                    # A translation parses and re-encodes the body: a large one takes its turn.
                    async with large_body_turn(len(self.outgoing.body)):
                        prepared = prepare(target, self.outgoing)
                else:
                    prepared = prepare(target, self.outgoing)
            except TranslationError as exc:
                # The request says something this upstream's API cannot: the next entry may take it.
                if breaker is not None:
                    breaker.released()
                self._note(target, UNTRANSLATABLE, None, 0.0)
                untranslatable = untranslatable or exc
                continue
            for attempt in range(1, retry.attempts + 1):
                more_here = attempt < retry.attempts
                more = more_here or index < last
                started = perf_counter()
                try:
                    response = await upstream.client.send(
                        self.outgoing.method, prepared.path_and_query, prepared.headers, prepared.body,
                        stream=self.outgoing.stream,
                    )
                except (UpstreamTimeout, UpstreamUnavailable) as exc:
                    outcome = _failure_kind(exc)
                    self._note(target, outcome, None, started)
                    if breaker is not None:
                        breaker.failed()
                    failure = exc
                    if outcome not in retry_on:
                        raise
                    if more_here:
                        await asyncio.sleep(backoff_s(attempt, retry))
                        if breaker is None or breaker.allow():
                            continue
                    break
                except BaseException:
                    if breaker is not None:
                        breaker.released()
                    raise
                status = response.status
                if status in retry_on and more:
                    self._note(target, str(status), status, started)
                    failure = _answered_failure(target, status)
                    if breaker is not None:
                        breaker.failed()
                    asked = retry_after_s(response.headers)
                    response.close()
                    if more_here and (asked is None or asked <= retry.max_retry_after_s):
                        await asyncio.sleep(max(backoff_s(attempt, retry), asked or 0.0))
                        if breaker is None or breaker.allow():
                            continue
                    break
                if breaker is not None:
                    if status in retry_on or status >= 500:
                        breaker.failed()
                    else:
                        breaker.succeeded()
                self._note(target, ANSWERED, status, started)
                self.served = target
                if prepared.translation is not None:
                    return translated(response, prepared.translation)
                return response
            if self.attempts:
                self.attempts[-1].fell_over = index < last
        if failure is not None:
            raise failure
        if untranslatable is not None:
            raise ProxyError(str(untranslatable), status=400, kind=ErrorKind.INVALID_REQUEST) from untranslatable
        names = ", ".join(target.label for target in self.targets)
        raise CircuitOpen(
            f"no upstream can take the request now (circuit open: {names})", open_retry_after or 0.0
        )

    def _note(self, target: Target, outcome: str, status: int | None, started: float) -> None:
        elapsed = (perf_counter() - started) * 1000.0 if started else 0.0
        self.attempts.append(Attempt(target.label, outcome, status, elapsed))


def _answered_failure(target: Target, status: int) -> ProxyError:
    """What the client is told when the last upstream tried answered a retryable status that was
    dropped for an upstream that then could not be tried."""
    kind = ErrorKind.RATE_LIMIT if status == 429 else ErrorKind.UNAVAILABLE
    return ProxyError(
        f"the {target.label} upstream answered HTTP {status} and no other upstream could take the request",
        status=status if status == 429 or status >= 500 else 502, kind=kind,
    )


def _failure_kind(exc: ProxyError) -> str:
    if isinstance(exc, UpstreamTimeout):
        return TIMEOUT
    cause = exc.__cause__
    if isinstance(cause, ConnectError):
        return CONNECT
    return RESET
