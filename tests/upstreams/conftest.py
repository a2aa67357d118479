"""Fixtures of the routing tests: fake upstreams of their own, and a server that resets every connection."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.fake_provider.process import FakeProviderProcess, start_fake_provider


@pytest.fixture(scope="module")
def primary() -> Iterator[FakeProviderProcess]:
    provider = start_fake_provider()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def backup() -> Iterator[FakeProviderProcess]:
    provider = start_fake_provider()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def _fresh_upstreams(request: pytest.FixtureRequest) -> None:
    for name in ("primary", "backup"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture(scope="module")
def resetting_server() -> Iterator[str]:
    """The base URL of a server that reads each request, then resets the connection (TCP RST)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(1.0)
            with contextlib.suppress(OSError):
                connection.recv(65536)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stopping.set()
    thread.join(timeout=2)
    listener.close()
