"""The HTTP/1.1 server side: uvicorn's httptools protocol with the limits a gateway needs.

uvicorn's httptools protocol sets no limit on the size or the number of request headers (llhttp
has none, and httptools buffers each header whole before handing it over), no time-out for
reading a request head (a connection that sends nothing, or dribbles its headers a byte at a
time, stays open forever), none between the bytes of a request body, and `limit_concurrency`
only answers 503 once a request has arrived, keeping every surplus socket open. uvicorn offers no
hook for any of these, hence a subclass, passed to uvicorn as its `http` protocol.

Refusals are answered on the connection itself, before any route is known, with a small JSON
body carrying `detail` and an `error` object, then the connection is closed:
431 (head too large, too many headers), 408 (head not complete in time), 503 (too many connections).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from capsem_proxy.config import ServerSettings

__all__ = ["BoundedHttpToolsProtocol", "ServerLimits", "uvicorn_options"]

logger = logging.getLogger("capsem_proxy.server")

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one client connection may cost (see ServerSettings for each field's meaning)."""

    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, server: ServerSettings) -> ServerLimits:
        return cls(
            max_header_bytes=server.max_header_bytes,
            max_headers=server.max_headers,
            header_timeout=server.header_timeout,
            body_timeout=server.body_timeout,
            max_connections=server.max_connections,
        )


def uvicorn_options(server: ServerSettings) -> dict[str, Any]:
    """The uvicorn options that apply the server limits (merged into the others by the CLI)."""
    return {
        # A partial of a module-level class with a frozen dataclass: picklable for --workers > 1.
        "http": functools.partial(BoundedHttpToolsProtocol, limits=ServerLimits.from_settings(server)),
        "timeout_keep_alive": server.keep_alive_timeout,
        "backlog": server.backlog,
        # After SIGTERM, open requests and streams get this long before they are cancelled (capsem_proxy.drain).
        "timeout_graceful_shutdown": server.drain_seconds,
    }


class _TooManyHeaders(Exception):
    """Raised from a parser callback to stop parsing a request with too many headers."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with bounded request heads, head and body time-outs, and a
    cap on open connections."""

    def __init__(self, *args: Any, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._reading_head = True  # from the connection's start, or a message's end, to a head's end
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of the head seen: its end may straddle two reads
        self._refusal: tuple[int, str] | None = None
        # When the head or body being read must be complete (loop time), or None between requests.
        # One timer per connection checks it lazily: moving a deadline is an attribute write, where
        # re-arming a timer at every head, body and read costs a call_later and a cancel each.
        self._deadline: float | None = None
        self._watch: asyncio.TimerHandle | None = None

    # -------------------------------------------------------------------- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self._refuse(503, f"the proxy already holds {self._limits.max_connections} open connections")
            return
        # A connection that never sends a request head is closed when this runs out.
        self._expect_within(self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    # The methods below run for every request: the parent's are called by class (no `super()` object
    # built each time), and a head read whole in one piece is counted without a join.

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None or self.transport.is_closing():
            return
        if self._reading_head:
            if not self._head_fits(data):
                self._refuse(431, f"the request head exceeds the limit of {self._limits.max_header_bytes} bytes")
                return
        elif self._deadline is not None:
            # Reading a body: any data from the client restarts its silence allowance.
            self._deadline = self.loop.time() + self._limits.body_timeout
        HttpToolsProtocol.data_received(self, data)

    def _head_fits(self, data: bytes) -> bool:
        """Count the head bytes in `data` (up to the empty line ending the head, if it is there),
        after the last bytes of the head seen before (its end may straddle two reads)."""
        tail = self._head_tail
        joined = tail + data if tail else data  # the head's first bytes: nothing to join
        # The head ends at the first empty line, written CRLF CRLF or (leniently) LF LF: a bare LF LF
        # before a CRLF CRLF lies wholly before it, so it is looked for only there.
        end = joined.find(b"\r\n\r\n")
        bare = joined.find(b"\n\n", 0, end) if end != -1 else joined.find(b"\n\n")
        if bare != -1:
            end = bare
        counted = end - len(tail) if end != -1 else len(data)
        if counted > 0:
            self._head_bytes += counted
        self._head_tail = joined[-3:]
        return self._head_bytes <= self._limits.max_header_bytes

    # -------------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        self._reading_head = True
        if self._deadline is None:  # else the connection's first head keeps its deadline
            self._expect_within(self._limits.header_timeout)

    # The headers are counted once the head is read (uvicorn's on_header collects them): the head's
    # byte limit already bounds how many there can be, and no Python override runs per header.
    def on_headers_complete(self) -> None:
        if len(self.headers) > self._limits.max_headers:
            self._refusal = (431, f"the request has more than {self._limits.max_headers} headers")
            raise _TooManyHeaders
        self._reading_head = False
        self._head_bytes = 0
        self._head_tail = b""
        # Until the body is complete, a silence longer than body_timeout closes the connection.
        self._expect_within(self._limits.body_timeout)
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._deadline = None
        self._reading_head = True
        HttpToolsProtocol.on_message_complete(self)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers 400 to any parser error, the one a callback raises included.
        if self._refusal is not None:
            status, message = self._refusal
            self._refusal = None
            self._refuse(status, message)
            return
        super().send_400_response(msg)

    # -------------------------------------------------------------------- refusals

    def _expect_within(self, seconds: float) -> None:
        """Set the deadline of what is read now to `seconds` from now."""
        self._deadline = self.loop.time() + seconds
        if self._watch is None:
            self._watch = self.loop.call_later(seconds, self._deadline_reached)

    def _deadline_reached(self) -> None:
        """The timer fired: act if the deadline has passed, else wait for the deadline as moved."""
        self._watch = None
        if self._deadline is None:
            return
        remaining = self._deadline - self.loop.time()
        if remaining > 0:
            self._watch = self.loop.call_later(remaining, self._deadline_reached)
            return
        self._deadline = None
        if self._reading_head:
            self._head_timed_out()
        else:
            self._body_timed_out()

    def _head_timed_out(self) -> None:
        if self.transport.is_closing():
            return
        if self._head_bytes:
            # Part of a head came (a header dribbled byte by byte): say why before closing.
            self._refuse(408, f"the request head was not complete within {self._limits.header_timeout:g} s")
        else:
            self.transport.close()  # nothing was ever sent: nobody to answer

    def _body_timed_out(self) -> None:
        if self.flow is not None and self.flow.read_paused:
            # Reading is paused because the app has not taken the body yet: not the client's silence.
            self._expect_within(self._limits.body_timeout)
            return
        if not self.transport.is_closing():
            logger.info("closing a connection whose request body stalled for %g s", self._limits.body_timeout)
            # The app sees the client leave (http.disconnect) and stops waiting for the body.
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` on the connection itself and close it."""
        self._cancel_timers()
        logger.info("refused a connection with %d: %s", status, message)
        kind = "server_error" if status >= 500 else "invalid_request_error"
        body = orjson.dumps({"detail": message, "error": {"message": message, "type": kind, "code": status}})
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, _REASONS.get(status, b""), len(body))
        )
        if not self.transport.is_closing():
            self.transport.write(head + body)
            self.transport.close()
        self._refusal = (status, message)  # nothing more is parsed on this connection

    def _cancel_timers(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch = None
        self._deadline = None
