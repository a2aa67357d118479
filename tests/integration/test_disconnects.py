"""A client that leaves while the proxy waits on a slow, non-streamed answer: the proxy drops the
upstream request at once (the provider sees its connection close) and records a 499."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.proxy_process import start_proxy

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


class SilentProvider:
    """Accepts one request at a time and never answers; notes when each connection is closed."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.closed_at: list[float] = []
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with connection:
            if connection.recv(65536):
                self.requests += 1
            while connection.recv(65536):
                pass
            self.closed_at.append(time.monotonic())

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def silent_provider():
    provider = SilentProvider()
    yield provider
    provider.close()


def test_a_client_leaving_a_slow_whole_answer_cancels_the_upstream_request(silent_provider):
    proxy = start_proxy(f"http://127.0.0.1:{silent_provider.port}", {"audit": {"url": "memory://"}})
    try:
        client = socket.create_connection(("127.0.0.1", proxy.port))
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(BODY)}\r\n"
                "authorization: Bearer sk-test-leaving\r\n\r\n")
        client.sendall(head.encode() + BODY)
        deadline = time.monotonic() + 5
        while silent_provider.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert silent_provider.requests == 1
        time.sleep(0.4)  # past the moment the proxy starts watching for its client
        left_at = time.monotonic()
        client.close()
        # The provider never answers: left alone, the upstream request would stay open until its
        # read timeout, minutes away. Closed meanwhile, it was cancelled with its client.
        while not silent_provider.closed_at and time.monotonic() < left_at + 60:
            time.sleep(0.02)
        assert silent_provider.closed_at, "the upstream request outlived its client"
        deadline = time.monotonic() + 5
        while " 499 " not in proxy.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "POST '/v1/chat/completions' 499" in proxy.log_text()
        assert httpx.get(f"{proxy.base_url}/healthz").status_code == 200
    finally:
        proxy.stop()
