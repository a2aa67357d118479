"""One pooled keep-alive HTTP/1.1 client per provider, for the life of the process.

The connections are capsem_proxy/upstreams/http1.py's (a small client on httptools, written for
this path: see its docstring for why not aiohttp or httpx). This module speaks for them to the
rest of the proxy: it builds the request, decompresses answers within their size limit, and
translates connection failures into the proxy's own exceptions, so the app maps them to
provider-shaped answers in one place.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from capsem_proxy.config import ProviderSettings
from capsem_proxy.errors import UpstreamBroken, UpstreamMalformed, UpstreamTimeout, UpstreamUnavailable
from capsem_proxy.upstreams.http1 import Answer, ConnectError, Pool, ProtocolError, SilenceError, request_head

__all__ = ["HOP_BY_HOP_HEADERS", "PooledClient", "UpstreamClient", "UpstreamResponse"]

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
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A streamed compressed answer is handed on in pieces of at most this many bytes, however much one
# compressed chunk expands to.
_INFLATED_PIECE = 256 * 1024

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class _Inflater:
    """Decompresses a gzip or deflate body (deflate with or without its zlib wrapper, as servers
    send both) in bounded pieces."""

    __slots__ = ("_decompressor", "_raw_tried")

    def __init__(self, encoding: str) -> None:
        self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        self._raw_tried = encoding == "gzip"

    def inflate(self, data: bytes, max_length: int) -> tuple[bytes, bytes]:
        """Up to `max_length` bytes of output, and the input not consumed yet."""
        try:
            out = self._decompressor.decompress(data, max_length)
        except zlib.error:
            if self._raw_tried:
                raise
            self._raw_tried = True  # deflate without the zlib wrapper
            self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._decompressor.decompress(data, max_length)
        self._raw_tried = True
        return out, self._decompressor.unconsumed_tail

    def flush(self) -> bytes:
        return self._decompressor.flush()


def _inflater(encoding: str) -> _Inflater | None:
    if not encoding or encoding == "identity":
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater("gzip" if encoding != "deflate" else "deflate")
    raise UpstreamMalformed(f"the provider's answer is encoded as {encoding!r}, which the proxy did not ask for")


@dataclass(slots=True)
class UpstreamResponse:
    """An answer whose headers have arrived; the body is read or streamed by the caller."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content_type: str
    _answer: Answer
    max_body_bytes: int = 64 * 1024 * 1024
    content_encoding: str = ""

    async def read(self) -> bytes:
        """The whole body, decompressed; UpstreamMalformed past `max_body_bytes` (before or after
        decompression), so neither a huge answer nor a compression bomb can exhaust memory."""
        limit = self.max_body_bytes
        answer = self._answer
        declared = answer.content_length
        if declared is not None and declared > limit:
            answer.close()
            raise _too_large(limit, f"it declares {declared} bytes")
        parts: list[bytes] = []
        size = 0
        complete = False
        try:
            inflater = _inflater(self.content_encoding)
            while True:
                chunk = await answer.next_chunk()
                if not chunk:
                    if inflater is not None:
                        chunk = inflater.flush()
                        size += len(chunk)
                        if size > limit:
                            raise _too_large(limit, "it grew past that once decompressed")
                        parts.append(chunk)
                    complete = True
                    return b"".join(parts)
                if inflater is not None:
                    chunk, left = inflater.inflate(chunk, limit - size + 1)
                    if left:
                        raise _too_large(limit, "it grew past that once decompressed")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit, "it grew past that")
                parts.append(chunk)
        except SilenceError as exc:
            raise UpstreamTimeout("the provider did not finish its answer in time") from exc
        except (ProtocolError, OSError) as exc:
            raise UpstreamBroken("the provider broke off its answer") from exc
        except zlib.error as exc:
            raise UpstreamMalformed("the provider's compressed answer could not be decompressed") from exc
        finally:
            # A body read to its end has returned its connection to the pool; any other is dropped.
            if not complete:
                answer.close()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk (decompressed, in pieces of bounded size)."""
        answer = self._answer
        try:
            inflater = _inflater(self.content_encoding)
            while True:
                chunk = await answer.next_chunk()
                if not chunk:
                    if inflater is not None:
                        tail = inflater.flush()
                        if tail:
                            yield tail
                    return
                if inflater is None:
                    yield chunk
                    continue
                while chunk:
                    piece, chunk = inflater.inflate(chunk, _INFLATED_PIECE)
                    if piece:
                        yield piece
        except SilenceError as exc:
            raise UpstreamTimeout("the provider went silent in the middle of a stream") from exc
        except (ProtocolError, OSError) as exc:
            raise UpstreamBroken("the provider broke off the stream") from exc
        except zlib.error as exc:
            raise UpstreamBroken("the provider's compressed stream could not be decompressed") from exc

    def close(self) -> None:
        """Drop the connection (used when the client went away or a policy cut the stream)."""
        self._answer.close()


def _too_large(limit: int, why: str) -> UpstreamMalformed:
    return UpstreamMalformed(f"the provider's answer is larger than the limit of {limit} bytes ({why})")


class PooledClient:
    """Keep-alive connections to one HTTP origin (the scheme, host and port of `url`) and the
    request and answer plumbing over them; `label` names the other side in errors ("the openai
    provider")."""

    def __init__(
        self, url: str, *, label: str, max_connections: int, connect_timeout: float, max_answer_bytes: int
    ) -> None:
        parts = urlsplit(url)
        self.label = label
        self._tls = parts.scheme == "https"
        self._hostname = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        self._host_header = parts.netloc.rpartition("@")[2]
        self.base_path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._max_answer_bytes = max_answer_bytes
        self._pool: Pool | None = None

    async def close(self) -> None:
        """Close the pool (at shutdown)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def send(
        self, method: str, target: str, headers: Headers, body: bytes | None, silence_limit: float | None
    ) -> UpstreamResponse:
        """Send a request for `target` (path and query); return once the answer's status and headers
        are in. `silence_limit`: the longest wait for the answer's next bytes (None: no limit)."""
        pool = self._pool
        if pool is None:
            pool = self._pool = Pool(
                self._hostname, self._port, tls=self._tls, limit=self._max_connections,
                connect_timeout=self._connect_timeout, keepalive_timeout=30.0,
            )
        length = len(body) if body is not None else (0 if method in _BODY_METHODS else None)
        try:
            head = request_head(method, target, self._host_header, headers, length)
        except ValueError as exc:
            raise UpstreamUnavailable(f"the request for {self.label} could not be written: {exc}") from exc
        try:
            answer = await pool.request(head, body, silence_limit, without_body=method == "HEAD")
        except TimeoutError as exc:  # the connection or the answer's headers took too long
            raise UpstreamTimeout(f"{self.label} did not answer in time") from exc
        except (ConnectError, ProtocolError, OSError) as exc:
            raise UpstreamUnavailable(f"{self.label} could not be reached") from exc
        dropped = _RESPONSE_HEADERS_DROPPED
        encoding = answer.content_encoding
        # Positional (status, headers, content type, answer, size limit, encoding): a class called
        # with keywords builds a dict of them and unpacks it again, per request.
        return UpstreamResponse(
            answer.status, [header for header in answer.headers if header[0] not in dropped],
            answer.content_type.decode("latin-1"), answer, self._max_answer_bytes,
            encoding.decode("latin-1").strip().lower() if encoding else "",
        )


class UpstreamClient:
    """The HTTP client of one provider."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.base_url = settings.base_url
        self._client = PooledClient(
            settings.base_url, label=f"the {name} provider", max_connections=settings.max_connections,
            connect_timeout=settings.connect_timeout, max_answer_bytes=settings.max_answer_bytes,
        )
        self._read_timeout = settings.read_timeout
        # Streams get a limit on the silence between two reads, never a total.
        self._idle_timeout = settings.stream_idle_timeout or settings.read_timeout

    async def close(self) -> None:
        """Close the pool (at shutdown)."""
        await self._client.close()

    def send(
        self,
        method: str,
        path_and_query: str,
        headers: Headers,
        body: bytes | None,
        *,
        stream: bool,
    ) -> Coroutine[Any, Any, UpstreamResponse]:
        """Send a request; the coroutine returns once the answer's status and headers are in (a plain
        function handing back the pooled client's coroutine: one coroutine fewer per request)."""
        client = self._client
        return client.send(
            method, client.base_path + path_and_query, headers, body,
            self._idle_timeout if stream else self._read_timeout,
        )
