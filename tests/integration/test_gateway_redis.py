"""Limits shared through the real Redis: two proxy processes with one key store and one Redis hold one
limit together; an unreachable Redis lets requests through (counted) or refuses them, as configured."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from tempfile import mkdtemp

import httpx
import openai
import pytest

from tests.integration.gateway_helpers import create_key, start_gateway
from tests.proxy_process import free_port
from tests.services import REDIS_URL, require_service


def _chat(client: openai.OpenAI, **options):
    return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], **options)


@pytest.fixture(scope="module")
def pair(fake_provider) -> Iterator[tuple]:
    require_service("Redis", "127.0.0.1", 6379)
    shared = Path(mkdtemp(prefix="capsem-gateway-pair-")) / "audit.db"
    config = {
        # One audit store, so one server secret: each process's own would key its chain apart, and the
        # second could never write its rows (nor flush them when stopped).
        "server": {"tenant_secret": f"gateway-pair-{uuid.uuid4().hex}"},
        "audit": {"url": f"sqlite:///{shared}"},
        "limits": {
            "store_url": REDIS_URL, "key_prefix": f"capsem-test:{uuid.uuid4().hex}:", "on_store_down": "closed",
            "tenants": {"team-shared": {"requests_per_minute": 4}, "team-streams": {"concurrent_streams": 1}},
        },
    }
    first = start_gateway(fake_provider, config)
    second = start_gateway(fake_provider, config)
    yield first, second
    first.stop()
    second.stop()


def test_requests_per_minute_hold_across_two_processes(pair, fake_provider):
    first, _second = pair
    key = create_key(first, tenant="team-shared")["key"]
    clients = [openai.OpenAI(base_url=p.base_url + "/v1", api_key=key, max_retries=0, timeout=10) for p in pair]
    if 60 - time.time() % 60 < 5:  # all of the test in one minute window (waits 5 s at most)
        time.sleep(60 - time.time() % 60 + 0.1)
    admitted = 0
    for turn in range(8):
        try:
            _chat(clients[turn % 2])
            admitted += 1
        except openai.RateLimitError as exc:
            assert exc.response.headers["x-ratelimit-limit-requests"] == "4"
            break
    # Each process alone would have let 4 through, 8 in all; together they let exactly 4 through.
    assert admitted == 4
    assert len(fake_provider.requests()) == 4


def test_one_open_stream_across_two_processes(pair, fake_provider):
    first, second = pair
    key = create_key(first, tenant="team-streams")["key"]
    slow = fake_provider.scenario_header(delay_ms=200, events=25)
    one = openai.OpenAI(base_url=first.base_url + "/v1", api_key=key, max_retries=0, timeout=10)
    other = openai.OpenAI(base_url=second.base_url + "/v1", api_key=key, max_retries=0, timeout=10)
    with _chat(one, stream=True, extra_headers=slow) as stream:
        next(iter(stream))
        with pytest.raises(openai.RateLimitError) as caught:
            _chat(other, stream=True)
        assert "streams open" in caught.value.response.json()["detail"]


def test_unreachable_store_open_or_closed(fake_provider):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    limits = {"store_url": dead, "tenants": {"team-x": {"requests_per_minute": 100}}, "timeout_ms": 200}
    opened = start_gateway(fake_provider, {"limits": {**limits, "on_store_down": "open"}, "metrics": {"enabled": True}})
    closed = start_gateway(fake_provider, {"limits": {**limits, "on_store_down": "closed"}})
    try:
        for proxy, expected in ((opened, None), (closed, openai.InternalServerError)):
            client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=create_key(proxy, tenant="team-x")["key"],
                                   max_retries=0, timeout=10)
            if expected is None:
                assert _chat(client).choices
            else:
                with pytest.raises(expected) as caught:
                    _chat(client)
                assert caught.value.status_code == 503
        metrics = httpx.get(opened.base_url + "/metrics", timeout=5).text
        assert "capsem_proxy_limit_store_errors_total 1.0" in metrics
    finally:
        opened.stop()
        closed.stop()
