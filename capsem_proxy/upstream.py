"""One pooled keep-alive HTTP client per provider, for the life of the process.

aiohttp is used rather than httpx: its connection pool stays cheap with hundreds of
concurrent streams (httpx's pool costs far more CPU per request under concurrency; see the
benchmark notes in bench/README.md). Client errors are translated here into the proxy's own
exceptions, so the app maps them to provider-shaped answers in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp.typedefs import LooseHeaders
from yarl import URL

from capsem_proxy.config import ProviderSettings
from capsem_proxy.errors import UpstreamBroken, UpstreamMalformed, UpstreamTimeout, UpstreamUnavailable

__all__ = ["HOP_BY_HOP_HEADERS", "UpstreamClient", "UpstreamResponse"]

# Headers that describe one hop, never the message (RFC 9110 §7.6.1), plus those the proxy
# recomputes itself.
HOP_BY_HOP_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_RESPONSE_HEADERS_DROPPED = HOP_BY_HOP_HEADERS | {b"content-length", b"content-encoding", b"date", b"server"}
# Answer header names as sent on (lower-cased), b"" for those dropped: names repeat from answer to
# answer, so each is lower-cased and checked once. Bounded, since the names are the provider's.
_RESPONSE_NAMES: dict[bytes, bytes] = {}
_MAX_RESPONSE_NAMES = 1024


def _response_name(name: bytes) -> bytes:
    """`name` as sent on to the client, or b"" when the proxy drops it."""
    lowered = name.lower()
    sent = b"" if lowered in _RESPONSE_HEADERS_DROPPED else lowered
    if len(_RESPONSE_NAMES) < _MAX_RESPONSE_NAMES:
        _RESPONSE_NAMES[name] = sent
    return sent


@dataclass(slots=True)
class UpstreamResponse:
    """An answer whose headers have arrived; the body is read or streamed by the caller."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content_type: str
    _response: aiohttp.ClientResponse
    max_body_bytes: int = 64 * 1024 * 1024
    # The longest silence between two reads of a streamed answer, kept by an _IdleWatch (aiohttp's
    # own read timeout would move a timer at every read); None when aiohttp's applies.
    idle_timeout: float | None = None

    async def read(self) -> bytes:
        """The whole body, decompressed; UpstreamMalformed past `max_body_bytes` (before or after
        decompression), so neither a huge answer nor a compression bomb can exhaust memory."""
        limit = self.max_body_bytes
        response = self._response
        declared = response.content_length
        if declared is not None and declared > limit:
            response.close()
            raise _too_large(limit, f"it declares {declared} bytes")
        parts: list[bytes] = []
        size = 0
        complete = False
        content = response.content
        watch = _IdleWatch(content, self.idle_timeout) if self.idle_timeout is not None else None
        try:
            while True:
                chunk = await content.readany()
                if watch is not None:
                    watch.reads += 1
                if not chunk:
                    complete = True
                    return b"".join(parts)
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit, "it grew past that")
                parts.append(chunk)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout("the provider did not finish its answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBroken("the provider broke off its answer") from exc
        finally:
            if watch is not None:
                watch.stop()
            # A body read to its end returns its connection to the pool; any other is dropped.
            if complete:
                response.release()
            else:
                response.close()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk."""
        content = self._response.content
        watch = _IdleWatch(content, self.idle_timeout) if self.idle_timeout is not None else None
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                if watch is not None:
                    watch.reads += 1
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout("the provider went silent in the middle of a stream") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBroken("the provider broke off the stream") from exc
        finally:
            if watch is not None:
                watch.stop()

    def close(self) -> None:
        """Drop the connection (used when the client went away or a policy cut the stream)."""
        self._response.close()


class _IdleWatch:
    """Fails the read of an answer once its provider has sent nothing for `timeout` seconds (at
    most a quarter more): a check every quarter of it counts the reads since the last one, so a
    read costs an increment instead of moving a timer."""

    __slots__ = ("_content", "_handle", "_loop", "_quiet", "_seen", "_step", "reads")

    _CHECKS = 4

    def __init__(self, content: aiohttp.StreamReader, timeout: float) -> None:
        self._content = content
        self._loop = asyncio.get_running_loop()
        self._step = timeout / self._CHECKS
        self._quiet = 0  # checks in a row that saw no read
        self._seen = 0
        self.reads = 0
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(self._step, self._check)

    def _check(self) -> None:
        if self.reads != self._seen:
            self._seen, self._quiet = self.reads, 0
        else:
            self._quiet += 1
            if self._quiet >= self._CHECKS:
                self._handle = None
                self._content.set_exception(TimeoutError("the provider went silent"))
                return
        self._handle = self._loop.call_later(self._step, self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _drop_read_timeout(response: aiohttp.ClientResponse) -> bool:
    """Stop aiohttp's read timeout on the connection of `response` (as aiohttp does itself for a
    websocket), its armed timer too; True when done, so that an _IdleWatch keeps the limit."""
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is None:
        return False  # the body is already in (the connection went back to the pool)
    protocol.read_timeout = None
    protocol.start_timeout()  # with no timeout: cancels the timer armed at the last read
    return True


def _too_large(limit: int, why: str) -> UpstreamMalformed:
    return UpstreamMalformed(f"the provider's answer is larger than the limit of {limit} bytes ({why})")


class UpstreamClient:
    """The HTTP client of one provider."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.base_url = settings.base_url
        self._settings = settings
        idle_timeout = settings.stream_idle_timeout or settings.read_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
        )
        # Streams get an idle limit between reads, never a total: aiohttp's read timeout until the
        # headers are in, then an _IdleWatch over the body (aiohttp's timer moves at every read).
        self._idle_timeout = idle_timeout
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout, sock_read=idle_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._settings.max_connections,
            limit_per_host=0,
            keepalive_timeout=30,
            enable_cleanup_closed=False,
            ttl_dns_cache=300,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=True,
            skip_auto_headers=("User-Agent", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
        )

    async def close(self) -> None:
        """Close the pool (at shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        method: str,
        path_and_query: str,
        headers: LooseHeaders,
        body: bytes | None,
        *,
        stream: bool,
    ) -> UpstreamResponse:
        """Send a request; return once the answer's status and headers are in."""
        session = self._session
        if session is None:
            session = self._session = self._open()
        url = URL(self.base_url + path_and_query, encoded=True)
        try:
            response = await session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=self._stream_timeout if stream else self._timeout,
                allow_redirects=False,
                compress=None,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(f"the {self.name} provider did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"the {self.name} provider could not be reached") from exc
        kept = []
        names = _RESPONSE_NAMES
        for name, value in response.raw_headers:
            sent = names.get(name)
            if sent is None:
                sent = _response_name(name)
            if sent:
                kept.append((sent, value))
        return UpstreamResponse(
            status=response.status,
            headers=kept,
            content_type=response.headers.get("content-type", ""),
            _response=response,
            max_body_bytes=self._settings.max_answer_bytes,
            idle_timeout=self._idle_timeout if stream and _drop_read_timeout(response) else None,
        )
