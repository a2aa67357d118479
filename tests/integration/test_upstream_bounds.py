"""A hostile or broken provider cannot grow the proxy's memory or drop a request from the audit
trail: a stream event that never ends, a compression bomb, an oversized body and an HTTP status
no client can read each end in a provider-shaped 502 (or the provider's error event in a stream),
recorded like any answer. Memory is measured on the proxy process itself (/proc/<pid>/status)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.fake_provider.process import FakeProviderProcess
from tests.proxy_process import ProxyProcess, start_proxy

ADMIN_TOKEN = "admin-token-for-upstream-bounds-01"
USER = [{"role": "user", "content": "hi"}]
OPENAI = {"authorization": "Bearer sk-t"}
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def bounded_proxy(fake_provider: FakeProviderProcess) -> Iterator[ProxyProcess]:
    config = {
        "admin": {"token": ADMIN_TOKEN},
        "audit": {"url": "sqlite:///audit.db"},
        "streaming": {"max_event_bytes": 2 * MiB},
        "providers": {name: {"max_answer_bytes": 8 * MiB} for name in ("openai", "gemini", "anthropic")},
    }
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


class PeakRss:
    """Samples a process's resident memory in the background; `growth_mib` is the peak over the start."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.start = self.peak = self._rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        with open(f"/proc/{self._pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / MiB


def _audited(proxy: ProxyProcess, request_id: str) -> dict:
    """The request's audit row, once the background writer has stored it."""
    deadline = time.monotonic() + 10
    while True:
        reply = httpx.get(f"{proxy.base_url}/admin/requests/{request_id}",
                          headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        row = reply.json().get("request") if reply.status_code == 200 else None
        if row is not None or time.monotonic() > deadline:
            assert row is not None, f"request {request_id} was never audited"
            return row
        time.sleep(0.05)


STREAMS = {
    "openai sse": ("/v1/chat/completions", {"model": "m", "messages": USER, "stream": True}, OPENAI),
    "gemini array": ("/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                     {"contents": [{"parts": [{"text": "hi"}]}]}, {"x-goog-api-key": "g-t"}),
}


@pytest.mark.parametrize("stream", list(STREAMS))
def test_an_event_that_never_ends_ends_the_stream_with_an_error_event(bounded_proxy, fake_provider, stream):
    path, body, headers = STREAMS[stream]
    headers = {**headers, **fake_provider.scenario_header(endless_event=True)}
    with PeakRss(bounded_proxy.process.pid) as memory:
        response = httpx.post(bounded_proxy.base_url + path, json=body, headers=headers, timeout=60)
    assert response.status_code == 200  # the stream had started
    assert "larger than 2097152 bytes" in response.text
    assert len(response.content) < 64 * 1024  # the endless event itself never reached the client
    # Unbounded, the proxy grew by gigabytes in seconds; the cap holds it to a few times 2 MiB.
    assert memory.growth_mib < 100
    if stream == "gemini array":
        assert orjson.loads(response.content)[-1]["error"]["code"] == 502  # the array still parses
    deadline = time.monotonic() + 10
    while fake_provider.stream_events()[-1:] == [] or fake_provider.stream_events()[-1]["outcome"] != "cancelled":
        assert time.monotonic() < deadline, "the proxy kept reading the endless event"
        time.sleep(0.05)


def test_a_gzip_bomb_is_refused_with_a_502_and_audited(bounded_proxy, fake_provider):
    headers = {**OPENAI, **fake_provider.scenario_header(gzip_bomb=256 * MiB)}
    # The fake provider builds (and caches) the bomb; its bytes are read as sent, not inflated here.
    with fake_provider.http.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": USER},
                                   headers=headers, timeout=120) as warm_up:
        for _ in warm_up.iter_raw():
            pass
    with PeakRss(bounded_proxy.process.pid) as memory:
        response = httpx.post(f"{bounded_proxy.base_url}/v1/chat/completions", json={"model": "m", "messages": USER},
                              headers=headers, timeout=60)
    assert response.status_code == 502
    error = response.json()
    assert error["error"]["type"] == "server_error" and "larger than the limit of 8388608 bytes" in error["detail"]
    assert memory.growth_mib < 100  # inflated whole, it would take 256 MiB and copies of it
    assert _audited(bounded_proxy, response.headers["x-capsem-request-id"])["status"] == 502


def test_an_oversized_body_is_refused_before_it_is_read(bounded_proxy, fake_provider):
    headers = {"x-api-key": "sk-ant-t", "anthropic-version": "2023-06-01",
               **fake_provider.scenario_header(body_bytes=16 * MiB)}
    body = {"model": "claude-x", "max_tokens": 10, "messages": USER}
    response = httpx.post(f"{bounded_proxy.base_url}/v1/messages", json=body, headers=headers, timeout=60)
    assert response.status_code == 502
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "api_error"
    assert "declares 16777216 bytes" in response.json()["detail"]


def test_a_body_just_under_the_cap_still_passes(bounded_proxy, fake_provider):
    headers = {**OPENAI, **fake_provider.scenario_header(body_bytes=7 * MiB)}
    response = httpx.post(f"{bounded_proxy.base_url}/v1/chat/completions", json={"model": "m", "messages": USER},
                          headers=headers, timeout=60)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("status", [999, 600])
def test_a_status_no_client_can_read_answers_502_and_is_audited(bounded_proxy, fake_provider, status):
    headers = {"x-goog-api-key": "g-t", **fake_provider.scenario_header(status=status)}
    response = httpx.post(f"{bounded_proxy.base_url}/v1beta/models/gemini-2.5-flash:generateContent",
                          json={"contents": [{"parts": [{"text": "hi"}]}]}, headers=headers, timeout=30)
    assert response.status_code == 502
    assert response.json()["error"]["status"] == "INTERNAL" or response.json()["error"]["code"] == 502
    assert f"HTTP status {status}" in response.json()["detail"]
    assert _audited(bounded_proxy, response.headers["x-capsem-request-id"])["status"] == 502
