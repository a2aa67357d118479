"""SIGTERM drains the proxy: /readyz answers 503 at once, open streams finish within server.drain_seconds,
then the process exits; a stream longer than that is cut so the process still exits."""

from __future__ import annotations

import signal
import time

import httpx
import orjson
import pytest

from tests.proxy_process import start_proxy

OPENAI_KEY = "sk-drain-test-0123456789abcdefghijklmnopqrstuvwxyz"
CHAT_STREAM = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'


def _stream_headers(**scenario: object) -> dict[str, str]:
    return {"authorization": f"Bearer {OPENAI_KEY}", "x-fake-scenario": orjson.dumps(scenario).decode()}


def _exits_after_shutdown(proxy, seconds: float = 30) -> bool:
    """The process ended after a complete shutdown (uvicorn re-raises SIGTERM once it is done, so the exit
    status is that of the signal)."""
    try:
        code = proxy.process.wait(timeout=seconds)
    except Exception:
        proxy.process.kill()
        raise
    return code in (0, -signal.SIGTERM) and "Application shutdown complete" in proxy.log_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_marks_not_ready_and_lets_the_open_stream_finish(fake_provider, workers):
    proxy = start_proxy(
        fake_provider.base_url, {"server": {"drain_delay_seconds": 2.0, "drain_seconds": 30}}, log_level="info",
        workers=workers,
    )
    try:
        assert httpx.get(f"{proxy.base_url}/readyz").status_code == 200
        headers = _stream_headers(events=30, delay_ms=100, chunk_size=4)
        with httpx.stream("POST", f"{proxy.base_url}/v1/chat/completions", content=CHAT_STREAM, headers=headers,
                          timeout=30) as answer:
            chunks = answer.iter_raw()
            first = next(chunks)
            proxy.process.send_signal(signal.SIGTERM)
            # The listener stays open for drain_delay_seconds, answering 503 on /readyz (with workers, once
            # the supervisor has passed SIGTERM on to them).
            deadline = time.monotonic() + 10
            while (ready := httpx.get(f"{proxy.base_url}/readyz", timeout=5)).status_code == 200:
                assert time.monotonic() < deadline, "/readyz never answered 503 after SIGTERM"
                time.sleep(0.05)
            assert ready.status_code == 503
            assert "draining" in ready.json()["reason"]
            assert httpx.get(f"{proxy.base_url}/healthz", timeout=5).status_code == 200  # alive, just leaving
            rest = b"".join(chunks)
        body = first + rest
        assert answer.status_code == 200
        assert body.rstrip().endswith(b"data: [DONE]"), body[-200:]
        assert body.count(b"data: ") >= 30
        assert _exits_after_shutdown(proxy), proxy.log_text()[-2000:]
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{proxy.base_url}/healthz", timeout=2)
        assert "draining" in proxy.log_text()
    finally:
        proxy.stop()


def test_a_stream_longer_than_the_drain_time_is_cut_and_the_process_exits(fake_provider):
    proxy = start_proxy(fake_provider.base_url, {"server": {"drain_seconds": 0.5}}, log_level="info")
    try:
        headers = _stream_headers(events=600, delay_ms=100)  # a minute long
        started = time.monotonic()
        with httpx.stream("POST", f"{proxy.base_url}/v1/chat/completions", content=CHAT_STREAM, headers=headers,
                          timeout=60) as answer:
            chunks = answer.iter_raw()
            next(chunks)
            proxy.process.send_signal(signal.SIGTERM)
            with pytest.raises(httpx.HTTPError):
                for _ in chunks:
                    pass
        assert _exits_after_shutdown(proxy), proxy.log_text()[-2000:]
        assert time.monotonic() - started < 50  # long before the stream's natural end
    finally:
        proxy.stop()
