"""The providers' HTTP/1.1 client (capsem_proxy/upstreams/http1.py, through upstream.PooledClient)
against real sockets: servers on 127.0.0.1 that answer with scripted bytes, framings and faults."""

from __future__ import annotations

import asyncio
import gc
import gzip
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme

from capsem_proxy.errors import UpstreamBroken, UpstreamMalformed, UpstreamTimeout, UpstreamUnavailable
from capsem_proxy.upstream import PooledClient
from capsem_proxy.upstreams.http1 import MAX_HEAD_BYTES, Answer, ConnectError, Pool, request_head

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ScriptedServer:
    """A TCP server whose handler answers each connection; it counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body


def answering(*answers: bytes, keep_open: bool = True) -> Callable[[ScriptedServer], Handler]:
    """A handler that answers the requests of a connection with `answers` in turn."""

    def make(server: ScriptedServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for answer in answers:
                await server.read_request(reader)
                writer.write(answer)
                await writer.drain()
            if keep_open:
                await reader.read()  # until the client closes

        return handler

    return make


async def serving(make: Callable[[ScriptedServer], Handler]) -> ScriptedServer:
    server = ScriptedServer(lambda r, w: asyncio.sleep(0))
    server.handler = make(server)
    return server


def client_for(server: ScriptedServer, **options: int) -> PooledClient:
    return PooledClient(
        server.url, label="the test provider", max_connections=options.get("max_connections", 8),
        connect_timeout=2.0, max_answer_bytes=options.get("max_answer_bytes", 1 << 20),
    )


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"ok\": true}"


async def _read(client: PooledClient, silence: float | None = 2.0, body: bytes = b"{}") -> tuple[int, bytes]:
    response = await client.send("POST", "/v1/chat", [("content-type", "application/json")], body, silence)
    return response.status, await response.read()


async def test_sequential_requests_share_one_keep_alive_connection() -> None:
    async with await serving(answering(OK, OK, OK)) as server:
        client = client_for(server)
        for _ in range(3):
            assert await _read(client) == (200, b'{"ok": true}')
        await client.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"content-length: 2\r\n" in first and first.endswith(b"\r\n\r\n{}")


async def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    async with await serving(answering(chunked, OK)) as server:
        client = client_for(server)
        assert await _read(client) == (200, b"hello world")
        assert await _read(client) == (200, b'{"ok": true}')  # the chunked answer left the connection reusable
        await client.close()
    assert server.connections == 1
    until_close = b"HTTP/1.1 200 OK\r\n\r\nall of it, until the end"
    async with await serving(answering(until_close, keep_open=False)) as server:
        client = client_for(server)
        assert await _read(client) == (200, b"all of it, until the end")
        await client.close()


async def test_an_informational_answer_is_skipped() -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + OK
    async with await serving(answering(early)) as server:
        client = client_for(server)
        response = await client.send("POST", "/v1/chat", [], b"{}", 2.0)
        assert response.status == 200
        assert (b"link", b"</style.css>; rel=preload") not in response.headers
        assert await response.read() == b'{"ok": true}'
        await client.close()


async def test_hop_by_hop_headers_are_dropped_and_names_lowercased() -> None:
    answer = (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nConnection: keep-alive\r\n"
              b"Keep-Alive: timeout=5\r\nX-Request-Id: abc\r\nContent-Length: 2\r\n\r\n{}")
    async with await serving(answering(answer)) as server:
        client = client_for(server)
        response = await client.send("POST", "/v1/chat", [], b"{}", 2.0)
        assert response.status == 429
        assert response.headers == [(b"retry-after", b"3"), (b"x-request-id", b"abc")]
        await response.read()
        await client.close()


async def test_an_idle_connection_the_provider_closed_is_not_reused() -> None:
    async with await serving(answering(OK, keep_open=False)) as server:
        client = client_for(server)
        assert await _read(client) == (200, b'{"ok": true}')
        await asyncio.sleep(0.1)  # the server has closed the connection since
        assert await _read(client) == (200, b'{"ok": true}')
        await client.close()
    assert server.connections == 2


async def test_the_connection_limit_makes_requests_wait_their_turn() -> None:
    async with await serving(answering(OK, OK, OK, OK)) as server:
        client = client_for(server, max_connections=1)
        results = await asyncio.gather(*(_read(client) for _ in range(4)))
        assert results == [(200, b'{"ok": true}')] * 4
        await client.close()
    assert server.connections == 1


async def test_gzip_and_both_deflate_forms_are_decompressed() -> None:
    text = b'{"text": "' + b"compressible " * 200 + b'"}'
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = deflater.compress(text) + deflater.flush()
    bodies = [(b"gzip", gzip.compress(text)), (b"deflate", zlib.compress(text)), (b"deflate", raw_deflate)]
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Encoding: " + encoding + b"\r\nContent-Length: " + str(len(body)).encode()
        + b"\r\n\r\n" + body
        for encoding, body in bodies
    ]
    async with await serving(answering(*answers)) as server:
        client = client_for(server)
        for _ in bodies:
            assert await _read(client) == (200, text)
        await client.close()
    assert all(b"accept-encoding: gzip, deflate\r\n" in request for request in server.requests)


async def test_a_compression_bomb_stops_at_the_limit_or_streams_in_bounded_pieces() -> None:
    bomb = gzip.compress(b"\0" * (8 << 20))
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(bomb), bomb)
    async with await serving(answering(answer, answer)) as server:
        client = client_for(server, max_answer_bytes=1 << 20)
        response = await client.send("POST", "/v1/chat", [], b"{}", 2.0)
        with pytest.raises(UpstreamMalformed, match="larger than the limit"):
            await response.read()
        streamed = await client.send("POST", "/v1/chat", [], b"{}", 2.0)
        sizes = [len(piece) async for piece in streamed.chunks()]
        assert sum(sizes) == 8 << 20 and max(sizes) <= 256 * 1024
        await client.close()


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n"
    async with await serving(answering(answer)) as server:
        client = client_for(server, max_answer_bytes=1000)
        response = await client.send("POST", "/v1/chat", [], b"{}", 2.0)
        with pytest.raises(UpstreamMalformed, match="declares 99999999 bytes"):
            await response.read()
        await client.close()


async def test_endless_headers_are_refused() -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for number in range(10_000):
            writer.write(b"X-Filler-%d: %s\r\n" % (number, b"a" * 100))
            await writer.drain()

    async with ScriptedServer(flood) as server:
        client = client_for(server)
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.send("POST", "/v1/chat", [], b"{}", 2.0)
        assert f"larger than {MAX_HEAD_BYTES} bytes" in str(caught.value.__cause__)
        await client.close()


async def test_garbage_instead_of_an_answer_is_unavailable() -> None:
    async with await serving(answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as server:
        client = client_for(server)
        with pytest.raises(UpstreamUnavailable):
            await client.send("POST", "/v1/chat", [], b"{}", 2.0)
        await client.close()


async def test_silence_before_the_headers_and_inside_the_body_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with ScriptedServer(silent) as server:
        client = client_for(server)
        with pytest.raises(UpstreamTimeout):
            await client.send("POST", "/v1/chat", [], b"{}", 0.2)
        await client.close()
    half = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"
    async with await serving(answering(half)) as server:
        client = client_for(server)
        response = await client.send("POST", "/v1/chat", [], b"{}", 0.2)
        with pytest.raises(UpstreamTimeout):
            await response.read()
        await client.close()


async def test_no_silence_limit_waits_as_long_as_it_takes() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.3)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await reader.read()

    async with ScriptedServer(slow) as server:
        client = client_for(server)
        response = await client.send("GET", "/events", [], None, None)
        assert await response.read() == b"{}"
        await client.close()


async def test_a_connection_cut_inside_the_body_is_broken() -> None:
    cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    async with await serving(answering(cut, keep_open=False)) as server:
        client = client_for(server)
        response = await client.send("POST", "/v1/chat", [], b"{}", 2.0)
        received = []
        with pytest.raises(UpstreamBroken):
            async for chunk in response.chunks():
                received.append(chunk)
        assert received == [b"hello"]
        await client.close()


async def test_answers_read_to_their_end_are_freed_without_the_garbage_collector() -> None:
    """An answer read to its end leaves no reference cycle behind: it goes when the request lets go
    of it, not at the collector's next pass (which walks every request still open)."""
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        async with await serving(answering(OK, chunked)) as server:
            client = client_for(server)
            assert await _read(client) == (200, b'{"ok": true}')
            assert await _read(client) == (200, b"hello")
            await client.close()
        gc.collect()
        assert not [item for item in gc.garbage if isinstance(item, Answer)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_a_refused_connection_is_a_connect_failure() -> None:
    async with ScriptedServer(lambda r, w: asyncio.sleep(0)) as server:
        url = server.url
    client = PooledClient(url, label="the test provider", max_connections=2, connect_timeout=2.0,
                          max_answer_bytes=1000)
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.send("POST", "/v1/chat", [], b"{}", 2.0)
    assert isinstance(caught.value.__cause__, ConnectError)
    await client.close()


async def test_a_slow_consumer_pauses_reading_instead_of_buffering_everything() -> None:
    size = 8 << 20

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()
        await reader.read()

    async with ScriptedServer(big) as server:
        client = client_for(server)
        response = await client.send("GET", "/big", [], None, 2.0)
        chunks = response.chunks()
        first = await chunks.__anext__()
        await asyncio.sleep(0.3)  # the server keeps writing; the client stops reading
        buffered = response._answer._buffered
        assert buffered < 2 << 20, buffered
        total = len(first)
        async for chunk in chunks:
            total += len(chunk)
        assert total == size
        await client.close()


def test_a_header_that_could_split_the_request_is_refused() -> None:
    with pytest.raises(ValueError):
        request_head("POST", "/v1/chat", "example.com", [("authorization", "Bearer a\r\nx-evil: 1")], 0)
    with pytest.raises(ValueError):
        request_head("POST", "/v1/chat", "example.com", {"x-a\nb": "1"}, 0)


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


async def _tls_server(ca: trustme.CA, host: str) -> AsyncIterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(context)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(OK)
            await writer.drain()
            await reader.read()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_tls_checks_the_certificate_and_the_host_name(certificate_authority: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    certificate_authority.configure_trust(trusting)
    servers = _tls_server(certificate_authority, "127.0.0.1")
    port = await servers.__anext__()
    try:
        pool = Pool("127.0.0.1", port, tls=True, tls_context=trusting, limit=2, connect_timeout=2.0)
        answer = await pool.request(request_head("GET", "/", "127.0.0.1", [], None), None, 2.0)
        assert answer.status == 200 and await answer.next_chunk() == b'{"ok": true}'
        await pool.close()
        untrusting = Pool("127.0.0.1", port, tls=True, limit=2, connect_timeout=2.0)  # the system's CAs
        with pytest.raises(ConnectError):
            await untrusting.request(request_head("GET", "/", "127.0.0.1", [], None), None, 2.0)
        await untrusting.close()
    finally:
        await servers.aclose()
    wrong_name = _tls_server(certificate_authority, "other.example")
    port = await wrong_name.__anext__()
    try:
        pool = Pool("127.0.0.1", port, tls=True, tls_context=trusting, limit=2, connect_timeout=2.0)
        with pytest.raises(ConnectError):
            await pool.request(request_head("GET", "/", "127.0.0.1", [], None), None, 2.0)
        await pool.close()
    finally:
        await wrong_name.aclose()


async def test_a_request_cancelled_while_waiting_for_a_connection_passes_its_turn_on() -> None:
    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for delay in (0.2, 0.0, 0.0):
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            await asyncio.sleep(delay)
            writer.write(OK)
            await writer.drain()
        await reader.read()

    async with ScriptedServer(slow_first) as server:
        client = client_for(server, max_connections=1)
        first = asyncio.create_task(_read(client))
        await asyncio.sleep(0.05)
        cancelled = asyncio.create_task(_read(client))
        third = asyncio.create_task(_read(client))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        assert await asyncio.wait_for(first, 2) == (200, b'{"ok": true}')
        assert await asyncio.wait_for(third, 2) == (200, b'{"ok": true}')
        await client.close()
