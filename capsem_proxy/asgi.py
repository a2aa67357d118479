"""Small ASGI helpers: read a bounded body, send a whole response.

The proxy is a raw ASGI app (no framework): every microsecond on the request path counts,
and a proxy needs little beyond exact control of bytes and headers.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from capsem_proxy.errors import BodyTooLarge, ProxyError

__all__ = ["ClientDisconnected", "DisconnectWatch", "Receive", "Scope", "Send", "read_body", "send_response"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ClientDisconnected(ProxyError):
    """The client went away before the request body was complete."""

    status = 499


async def read_body(receive: Receive, limit: int, declared_length: int | None) -> bytes:
    """The request body, refusing more than `limit` bytes (checked before reading when declared)."""
    if declared_length is not None and declared_length > limit:
        raise BodyTooLarge(f"request body of {declared_length} bytes exceeds the limit of {limit} bytes")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected("client disconnected")
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        return body
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """Send a complete response with its content length."""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _DelayedStarts:
    """Starts the watchers of the DisconnectWatches of one event loop and one delay once they have
    lasted it, with one timer for all of them: a timer per request (armed, then cancelled by
    nearly every request) costs more than the rest of the watch. Watches wait in arrival order,
    which with one delay is the order of their deadlines."""

    __slots__ = ("_after_s", "_loop", "_timer", "_waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop, after_s: float) -> None:
        self._loop = loop
        self._after_s = after_s
        self._waiting: dict[DisconnectWatch, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watch: DisconnectWatch) -> None:
        deadline = self._loop.time() + self._after_s
        self._waiting[watch] = deadline
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._due)

    def discard(self, watch: DisconnectWatch) -> None:
        self._waiting.pop(watch, None)

    def _due(self) -> None:
        waiting = self._waiting
        now = self._loop.time()
        while waiting:
            watch, deadline = next(iter(waiting.items()))
            if deadline > now:
                self._timer = self._loop.call_at(deadline, self._due)
                return
            del waiting[watch]
            watch._start()
        self._timer = None


_STARTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _DelayedStarts]] = (
    weakref.WeakKeyDictionary()
)
# The loop asked for last and its entry of _STARTS: a process serves from one loop, and a weak-keyed
# lookup builds a weak reference every time.
_last_loop: asyncio.AbstractEventLoop | None = None
_last_starts: dict[float, _DelayedStarts] = {}


def _delayed_starts(after_s: float) -> _DelayedStarts:
    global _last_loop, _last_starts
    loop = asyncio.get_running_loop()
    if loop is not _last_loop:
        by_delay = _STARTS.get(loop)
        if by_delay is None:
            by_delay = _STARTS[loop] = {}
        _last_loop, _last_starts = loop, by_delay
    starts = _last_starts.get(after_s)
    if starts is None:
        starts = _last_starts[after_s] = _DelayedStarts(loop, after_s)
    return starts


class DisconnectWatch:
    """Cancels the request's task if its client leaves while the proxy waits on the provider.

    A watcher task is only started once the request has lasted `after_s` seconds: a request
    answered sooner costs a place in a queue (one timer serves all of them), while a slow model
    call stops (and stops costing the caller tokens) as soon as nobody is waiting for it. Start
    it only once the body is read: the watcher consumes the ASGI receive channel.

    Used as a context manager (`with DisconnectWatch(receive, after_s) as watch:`), it also ends
    the cancellation it caused: the block is left quietly and `watch.client_left` is True, the
    one sign the caller needs to answer 499. Any other cancellation goes on.
    """

    __slots__ = ("_receive", "_soon", "_starts", "_task", "_watcher", "client_left")

    def __init__(self, receive: Receive, after_s: float) -> None:
        self._receive = receive
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task[None] | None = None
        self.client_left = False
        self._starts: _DelayedStarts | None = None
        self._soon: asyncio.Handle | None = None
        if after_s > 0:
            self._starts = _delayed_starts(after_s)
            self._starts.add(self)
        else:
            self._soon = asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._starts = self._soon = None
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.client_left = True
                if self._task is not None:
                    self._task.cancel()
                return

    def __enter__(self) -> DisconnectWatch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: Any) -> bool:
        self.close()
        if exc_type is None or not self.client_left or not issubclass(exc_type, asyncio.CancelledError):
            return False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True

    def close(self) -> None:
        """Stop watching (the answer is out, or another watcher takes over)."""
        if self._starts is not None:
            self._starts.discard(self)
            self._starts = None
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
