"""Graceful drain on SIGTERM.

uvicorn already stops accepting connections on SIGTERM, closes idle keep-alive connections and waits
for requests in flight (for at most `server.drain_seconds`, its graceful shutdown time-out). What it
lacks is a signal to the load balancer: from the moment SIGTERM arrives, `/readyz` answers 503, and
with `server.drain_delay_seconds` the listener stays open that long first, so a balancer that polls
`/readyz` (or a Kubernetes endpoint update) moves new connections elsewhere before any is refused.

The hook chains onto the handler uvicorn installed, from inside the serving process (each worker of
`--workers N` runs its own), so it works the same for one process and for several.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

__all__ = ["DrainState", "drain_state", "install_drain_hook"]

logger = logging.getLogger("capsem_proxy.server")


class DrainState:
    """Whether this process is draining (SIGTERM received)."""

    def __init__(self) -> None:
        self.draining = False

    def begin(self) -> bool:
        """Mark the process draining; True the first time."""
        first = not self.draining
        self.draining = True
        return first


drain_state = DrainState()


def install_drain_hook(delay_seconds: float, state: DrainState = drain_state) -> bool:
    """Chain onto the running server's SIGTERM handler (call from inside its event loop, at start-up).
    Returns False where signals cannot be hooked (not the main thread, no Python-level handler)."""
    try:
        previous: Any = signal.getsignal(signal.SIGTERM)
    except ValueError:  # pragma: no cover - not the main interpreter
        return False
    if not callable(previous):
        return False
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if state.begin():
            logger.info("SIGTERM: draining (/readyz answers 503); the listener closes in %gs", delay_seconds)
            if delay_seconds > 0:
                loop.call_soon_threadsafe(loop.call_later, delay_seconds, previous, signum, None)
                return
        previous(signum, frame)

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # signal.signal only works in the main thread (a server run in a test thread)
        return False
    return True
