"""The HTTP/1.1 connections to a provider: a keep-alive pool, requests written as bytes, answers
parsed by httptools (llhttp, the parser the proxy's own server reads requests with).

Written here rather than taken from aiohttp or httpx, because a provider connection needs little
and the client is on every request's path: aiohttp's client spends more than twice the CPU of this
one on a small request, 76 against 34 µs (request and response objects, multidict headers, URL
objects, tracing and cookie hooks, a stream reader per answer; `python -m bench.upstream_client`
measures both), httpx far more (bench/README.md). What it does: HTTP/1.1 over TCP or TLS; Content-Length,
chunked and close-delimited bodies; keep-alive reuse with a connection limit; bounded headers and
buffered body (reading pauses while the consumer is behind); a limit on silence while waiting for
an answer's bytes; informational (1xx) answers skipped. Decompression is the caller's
(capsem_proxy/upstream.py), which knows the size limits.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from itertools import islice
from typing import Any, cast

import httptools

__all__ = ["Answer", "ConnectError", "Pool", "ProtocolError", "SilenceError"]

# An answer's status line and headers may not exceed this many bytes (aiohttp's limits are 8 KiB a
# line and about as much in all; providers send 1-3 KiB).
MAX_HEAD_BYTES = 64 * 1024
# Reading from the provider pauses while this much body is waiting for the consumer, and resumes
# under the low mark: a slow client cannot make the proxy buffer a fast provider's answer.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})
# The answer headers `Answer` reads itself (all others are only passed on).
_READ_HERE = frozenset({b"content-length", b"content-type", b"content-encoding", b"transfer-encoding"})


class ConnectError(OSError):
    """The provider's address could not be reached (refused, unresolvable, TLS handshake failed)."""


class ProtocolError(Exception):
    """The provider's bytes are not an HTTP/1.1 answer, or one larger than the limits."""


class SilenceError(TimeoutError):
    """The provider sent nothing for longer than the limit."""


class _Disconnected(ConnectionError):
    """The provider closed the connection before the answer was complete."""


class Answer:
    """One request's answer as it arrives: the status and headers, then the body, chunk by chunk."""

    __slots__ = (
        "_buffered", "_chunks", "_connection", "_error", "_head_bytes", "_headers_in", "_limit", "_parser",
        "_paused", "_raw_headers", "_waiter", "close_delimited", "complete", "content_encoding", "content_length",
        "content_type", "headers", "keep_alive", "last_read", "on_body", "status", "without_body",
    )

    def __init__(self, connection: _Connection, silence_limit: float | None, now: float, without_body: bool) -> None:
        self._connection = connection
        self.without_body = without_body  # the answer to a HEAD request: headers only
        self.keep_alive = False
        self._chunks: deque[bytes] = deque()
        # llhttp hands each piece of body straight to the deque: a C call instead of a Python one per
        # chunk of a chunked stream (an event each); `fed` accounts for them once per read.
        self.on_body = self._chunks.append
        self._parser = httptools.HttpResponseParser(self)
        self._limit = silence_limit
        self.last_read = now
        self.status = 0
        self._raw_headers: list[tuple[bytes, bytes]] = []
        # Once the status and headers are in: the headers with lowercased names, and those read here.
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.content_type = b""
        self.content_encoding = b""
        self._head_bytes = 0
        self._headers_in: asyncio.Future[None] = connection.loop.create_future()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.complete = False
        self.close_delimited = False

    # -- llhttp callbacks (called from feed_data)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Lowercased as they arrive: the list becomes `headers` as it stands, not rebuilt.
        self._raw_headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        raw, self._raw_headers = self._raw_headers, []
        if 100 <= status < 200:
            return  # an informational answer (103 Early Hints…): the real one follows on the same bytes
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.headers = raw
        framed = False
        for name, value in raw:
            if name not in _READ_HERE:
                continue
            if name == b"content-length":
                framed = True
                try:
                    self.content_length = int(value)
                except ValueError:
                    self.content_length = None
            elif name == b"content-type":
                self.content_type = value
            elif name == b"content-encoding":
                self.content_encoding = value
            else:  # transfer-encoding
                framed = True
        if self.without_body:
            self.keep_alive = False  # llhttp cannot be told a HEAD answer has no body: not reused
            self.complete = True
        elif status not in _NO_BODY_STATUSES:
            self.close_delimited = not framed
        if not self._headers_in.done():
            self._headers_in.set_result(None)

    def on_message_complete(self) -> None:
        if self.status == 0:
            return  # the end of an informational answer
        self.keep_alive = self.keep_alive and self._parser.should_keep_alive()
        self.complete = True
        self._wake()

    # -- what the connection tells it

    def fed(self, data: bytes, now: float) -> None:
        self.last_read = now
        chunks = self._chunks
        before = len(chunks)
        try:
            self._parser.feed_data(data)
            if self.status == 0 and self._error is None:
                # Still in the status line and headers (the reads that complete them are bounded by
                # the read size): they may not grow past the limit.
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self.fail(ProtocolError(f"the answer's headers are larger than {MAX_HEAD_BYTES} bytes"))
        except httptools.HttpParserUpgrade:
            self.fail(ProtocolError("the provider switched protocols"))
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self.fail(cause if isinstance(cause, ProtocolError) else ProtocolError(f"unreadable answer: {exc}"))
        added = len(chunks) - before
        if added:
            self._buffered += len(chunks[-1]) if added == 1 else sum(map(len, islice(chunks, before, None)))
            if self._buffered > _HIGH_WATER and not self._paused:
                self._paused = True
                self._connection.pause_reading()
            self._wake()

    def disconnected(self, exc: BaseException | None) -> None:
        if self.complete:
            return
        if self.close_delimited and self._headers_in.done():
            self.complete = True  # a body without a length ends when the connection does
            self._wake()
            return
        self.fail(_Disconnected("the provider closed the connection") if exc is None else exc)

    def fail(self, error: BaseException) -> None:
        """End the answer with `error` (raised to whoever waits for it) and drop the connection."""
        if self._error is None and not self.complete:
            self._error = error
            if not self._headers_in.done():
                self._headers_in.set_exception(error)
                self._headers_in.exception()  # retrieved: nobody may be waiting any more
            self._wake()
        self._connection.abort()

    def silent_for_too_long(self, now: float) -> bool:
        """True when the provider owes bytes and has sent none for longer than the limit (time the
        proxy itself paused reading does not count)."""
        limit = self._limit
        return limit is not None and not self.complete and not self._paused and now - self.last_read > limit

    # -- what the caller asks

    def head(self) -> asyncio.Future[None]:
        """Done once the status and headers are in (awaited directly: no coroutine of its own)."""
        return self._headers_in

    async def next_chunk(self) -> bytes:
        """All of the body that has arrived since the last call (the pieces of one read, a chunked
        body's chunks among them, come out together); b"" once it is complete."""
        while True:
            chunks = self._chunks
            if chunks:
                if len(chunks) == 1:
                    chunk = chunks.popleft()
                else:
                    chunk = b"".join(chunks)
                    chunks.clear()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _LOW_WATER:
                    self._paused = False
                    self.last_read = self._connection.loop.time()
                    self._connection.resume_reading()
                return chunk
            if self._error is not None:
                raise self._error
            if self.complete:
                self._connection.answer_done(self)
                return b""
            waiter = self._waiter = self._connection.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Stop reading: the connection is dropped unless the answer was already complete."""
        if self.complete and self._error is None:
            self._connection.answer_done(self)
        else:
            self._connection.abort()

    def spent(self) -> None:
        """The answer is read to its end or abandoned, and is never fed again: its parser goes. The
        parser holds the answer's callbacks, a reference cycle (answer, parser, bound methods) that
        would otherwise outlive every request until the garbage collector found it, with the headers
        and futures hanging off the answer (about two dozen objects a request)."""
        del self._parser

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection to the provider, carrying one answer at a time."""

    __slots__ = ("_pool", "answer", "closed", "idle_since", "loop", "transport")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.answer: Answer | None = None
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None:
            self.abort()  # bytes nobody asked for: the connection can no longer be trusted
            return
        answer.fed(data, self.loop.time())

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self.answer
        if answer is not None:
            answer.disconnected(exc)
        self._pool.discard(self)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def answer_done(self, answer: Answer) -> None:
        """`answer` was read to its end: the connection goes back to the pool if it may be reused."""
        if self.answer is not answer:
            return
        self.answer = None
        self._pool.finished(self, answer)
        if answer.close_delimited or not answer.keep_alive:
            self.abort()
        else:
            self._pool.release(self)

    def abort(self) -> None:
        if self.answer is not None:
            self._pool.finished(self, self.answer)
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        self._pool.discard(self)


class Pool:
    """The keep-alive connections to one origin (scheme, host, port), at most `limit` at a time.
    TLS checks the certificate against the system's trust store (or `tls_context`) and the host name."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool,
        tls_context: ssl.SSLContext | None = None,
        limit: int,
        connect_timeout: float,
        keepalive_timeout: float = 30.0,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._host = host
        self._port = port
        self._ssl: ssl.SSLContext | None = (tls_context or _tls_context()) if tls else None
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive_timeout
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._reading: set[Answer] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_every = 0.0
        self._closed = False

    async def request(
        self, head: bytes, body: bytes | None, silence_limit: float | None, *, without_body: bool = False
    ) -> Answer:
        """Send a request (`head` ends with the blank line) and return its answer once the status
        and headers are in. ConnectError when no connection could be made; SilenceError when the
        provider sent nothing for `silence_limit` seconds (None: no limit); ProtocolError or ConnectionError when
        it answered something unreadable or closed the connection."""
        connection = await self._acquire()
        answer = Answer(connection, silence_limit, self.loop.time(), without_body)
        connection.answer = answer
        if silence_limit is not None:
            self._reading.add(answer)
            self._watch(silence_limit)
        transport = connection.transport
        assert transport is not None
        if body and len(body) > _HIGH_WATER:
            transport.writelines((head, body))
        else:
            transport.write(head + body if body else head)
        try:
            await answer.head()
        except BaseException:
            answer.close()
            raise
        return answer

    def finished(self, connection: _Connection, answer: Answer) -> None:
        self._reading.discard(answer)
        answer.spent()
        if connection.answer is answer:
            connection.answer = None

    def release(self, connection: _Connection) -> None:
        if self._closed or connection.closed:
            connection.abort()
            return
        connection.idle_since = self.loop.time()
        self._idle.append(connection)
        self._wake_one()

    def discard(self, connection: _Connection) -> None:
        if connection in self._open:
            self._open.discard(connection)
            if connection in self._idle:
                self._idle.remove(connection)
            self._wake_one()

    async def close(self) -> None:
        """Close every connection (at shutdown)."""
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    async def _acquire(self) -> _Connection:
        while True:
            idle = self._idle
            now = self.loop.time()
            while idle:
                connection = idle.pop()
                if not connection.closed and now - connection.idle_since < self._keepalive:
                    return connection
                connection.abort()
            if len(self._open) < self._limit:
                return await self._connect()
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # the turn it was given passes to the next in line
                raise

    async def _connect(self) -> _Connection:
        connection = _Connection(self)
        self._open.add(connection)
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                ),
                self._connect_timeout,
            )
        except TimeoutError:
            self.discard(connection)
            raise
        except (OSError, ssl.SSLError) as exc:
            self.discard(connection)
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self.discard(connection)
            raise
        return connection

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _watch(self, silence_limit: float) -> None:
        """Keep one periodic check of the silence limits running while answers are being read: a
        read costs a clock read instead of moving a timer."""
        every = max(silence_limit / 4, 0.01)
        if self._sweep is None or every < self._sweep_every:
            if self._sweep is not None:
                self._sweep.cancel()
            self._sweep_every = every
            self._sweep = self.loop.call_later(every, self._check_silences)

    def _check_silences(self) -> None:
        self._sweep = None
        if not self._reading:
            return
        now = self.loop.time()
        for answer in list(self._reading):
            if answer.silent_for_too_long(now):
                self._reading.discard(answer)
                answer.fail(SilenceError("the provider sent nothing in time"))
        if self._reading:
            self._sweep = self.loop.call_later(self._sweep_every, self._check_silences)


_TLS_CONTEXT: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """The system's trust store with hostname checks, built once (building one costs milliseconds)."""
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        _TLS_CONTEXT = ssl.create_default_context()
    return _TLS_CONTEXT


def request_head(method: str, target: str, host: str, headers: Any, body_length: int | None) -> bytes:
    """The request line and headers as bytes, ending with the blank line. ValueError when a header
    name or value could split the message (a CR or LF in it)."""
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n"]
    for name, value in headers.items() if hasattr(headers, "items") else headers:
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise ValueError(f"the header {name!r} cannot be sent")
        lines.append(f"{name}: {value}\r\n")
    if body_length is not None:
        lines.append(f"content-length: {body_length}\r\n")
    lines.append("accept-encoding: gzip, deflate\r\n\r\n")
    text = "".join(lines)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")
