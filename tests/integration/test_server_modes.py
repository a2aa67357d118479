"""Server set-ups: several worker processes, and CORS opened for listed origins only."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.proxy_process import start_proxy

CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


@pytest.fixture(scope="module")
def cors_proxy(fake_provider):
    process = start_proxy(fake_provider.base_url, {"cors": {"allow_origins": ["https://app.example"]}})
    yield process
    process.stop()


def test_two_workers_serve_requests(fake_provider):
    process = start_proxy(fake_provider.base_url, workers=2)
    try:
        for _ in range(20):
            response = httpx.post(
                f"{process.base_url}/v1/chat/completions", content=CHAT, headers={"authorization": "Bearer sk-w"}
            )
            assert response.status_code == 200
        # One line per worker process. The proxy answers once its first worker is up; the second
        # may still be starting on a busy machine, so it is waited for (the wait only stops a hung test).
        deadline = time.monotonic() + 60
        while process.log_text().count("Started server process") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.log_text().count("Started server process") == 2
    finally:
        process.stop()


def test_listed_origin_gets_cors_headers(cors_proxy):
    preflight = httpx.options(
        f"{cors_proxy.base_url}/v1/chat/completions",
        headers={"origin": "https://app.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization, content-type"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers
    response = httpx.post(
        f"{cors_proxy.base_url}/v1/chat/completions", content=CHAT,
        headers={"origin": "https://app.example", "authorization": "Bearer sk-c"},
    )
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-capsem-request-id" in response.headers["access-control-expose-headers"]


def test_unlisted_origin_gets_no_cors_headers(cors_proxy):
    response = httpx.post(
        f"{cors_proxy.base_url}/v1/chat/completions", content=CHAT,
        headers={"origin": "https://other.example", "authorization": "Bearer sk-c"},
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
