"""The HTTP server bounds what one client connection can cost: the size and number of request
headers (431), the time to send a request head (408, or a silent close for a connection that sends
nothing), the silence within a request body, idle keep-alive connections, and the number of open
connections (503). Driven over raw sockets against the real proxy; time bounds are generous
(limits of 1 s, checked within 5 s) so a busy machine cannot break them."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.fake_provider.process import FakeProviderProcess
from tests.proxy_process import ProxyProcess, start_proxy

LIMITS = {"max_header_bytes": 16384, "max_headers": 50, "header_timeout": 1, "body_timeout": 1,
          "keep_alive_timeout": 1}
# Far above the 1 s limits, so a busy machine cannot decide; far below what each test tells them from.
GENEROUS_S = 15.0


@pytest.fixture(scope="module")
def limited_proxy(fake_provider: FakeProviderProcess) -> Iterator[ProxyProcess]:
    process = start_proxy(fake_provider.base_url, {"server": LIMITS})
    yield process
    process.stop()


def _connect(proxy: ProxyProcess) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", proxy.port), timeout=GENEROUS_S + 5)
    return connection


def _read_all(connection: socket.socket) -> bytes:
    """Everything the proxy sends until it closes the connection (raises on a time-out)."""
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def _read_response(connection: socket.socket) -> bytes:
    """One whole response with a content length, leaving the connection open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def _status_and_body(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def _assert_healthy(proxy: ProxyProcess) -> None:
    assert httpx.get(f"{proxy.base_url}/healthz", timeout=10).status_code == 200


def test_requests_within_the_limits_are_served_on_one_kept_alive_connection(limited_proxy):
    headers = "".join(f"x-extra-{index}: {'v' * 100}\r\n" for index in range(40))
    with _connect(limited_proxy) as connection:
        for _ in range(3):
            connection.sendall(f"GET /healthz HTTP/1.1\r\nhost: proxy\r\n{headers}\r\n".encode())
            assert _status_and_body(_read_response(connection)) == (200, {"status": "ok"})


def test_a_huge_header_is_refused_with_431_without_reading_it_all(limited_proxy):
    with _connect(limited_proxy) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\nx-huge: ")
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:  # what used to be accepted whole, 600 MB and more
                connection.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 8 * 1024 * 1024  # the proxy closed the connection long before
        try:
            reply = _read_all(connection)
        except (ConnectionResetError, TimeoutError):
            reply = b""
    if reply:  # the refusal may be lost to the reset of a connection with unread bytes
        status, body = _status_and_body(reply)
        assert status == 431 and "exceeds the limit of 16384 bytes" in body["detail"]
    _assert_healthy(limited_proxy)


def test_a_head_over_the_size_limit_gets_431(limited_proxy):
    with _connect(limited_proxy) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\nx-big: " + b"a" * 20000 + b"\r\n\r\n")
        status, body = _status_and_body(_read_all(connection))
    assert status == 431 and body["error"]["code"] == 431


def test_too_many_headers_get_431(limited_proxy):
    headers = "".join(f"x-h{index}: 1\r\n" for index in range(60))
    with _connect(limited_proxy) as connection:
        connection.sendall(f"GET /healthz HTTP/1.1\r\nhost: proxy\r\n{headers}\r\n".encode())
        status, body = _status_and_body(_read_all(connection))
    assert status == 431 and "more than 50 headers" in body["detail"]
    _assert_healthy(limited_proxy)


def test_a_head_dribbled_byte_by_byte_is_cut_with_408(limited_proxy):
    with _connect(limited_proxy) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\n")
        started = time.monotonic()
        closed_by_proxy = False
        try:
            for _ in range(150):  # a header byte every 0.2 s would last 30 s
                connection.sendall(b"x")
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            closed_by_proxy = True
        try:
            reply = _read_all(connection)
        except ConnectionResetError:
            reply = b""
        assert closed_by_proxy or reply
        assert time.monotonic() - started < GENEROUS_S
    if reply:
        assert _status_and_body(reply)[0] == 408


def test_a_connection_that_sends_nothing_is_closed(limited_proxy):
    with _connect(limited_proxy) as connection:
        started = time.monotonic()
        assert _read_all(connection) == b""  # closed without a word: nobody asked anything
        assert time.monotonic() - started < GENEROUS_S


def test_an_idle_kept_alive_connection_is_closed(limited_proxy):
    with _connect(limited_proxy) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\n\r\n")
        assert _status_and_body(_read_response(connection))[0] == 200
        started = time.monotonic()
        assert _read_all(connection) == b""
        assert time.monotonic() - started < GENEROUS_S


def test_a_request_body_that_stalls_closes_the_connection(limited_proxy):
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer sk-t\r\n"
            b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n")
    with _connect(limited_proxy) as connection:
        connection.sendall(head + b'{"model": "m", ')
        started = time.monotonic()
        _read_all(connection)
        assert time.monotonic() - started < GENEROUS_S
    _assert_healthy(limited_proxy)


def test_connections_over_the_cap_get_503_and_are_closed_at_once(fake_provider):
    proxy = start_proxy(fake_provider.base_url, {"server": {"max_connections": 4, "header_timeout": 30}})
    held: list[socket.socket] = []
    try:
        # Readiness polling may leave a keep-alive connection open for a moment.
        time.sleep(0.5)
        for _ in range(4):
            held.append(_connect(proxy))
        time.sleep(0.3)
        with _connect(proxy) as surplus:
            started = time.monotonic()
            status, body = _status_and_body(_read_all(surplus))
            assert time.monotonic() - started < GENEROUS_S
        assert status == 503 and "4 open connections" in body["detail"]
        for connection in held:
            connection.close()
        held.clear()
        deadline = time.monotonic() + GENEROUS_S
        while True:  # the freed slots serve again once the proxy has seen the closes
            try:
                if httpx.get(f"{proxy.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        for connection in held:
            connection.close()
        proxy.stop()
