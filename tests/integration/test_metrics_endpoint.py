"""GET /metrics of a real proxy: its counters match the requests sent (per provider and status,
decisions per policy and verdict, tokens), nothing secret is in it, and with two worker
processes every scrape reports the sum over both."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.proxy_process import ProxyProcess, start_proxy

OPENAI_KEY = "sk-proj-metricsCheck" + "A1b2C3d4" * 4
ANTHROPIC_KEY = "sk-ant-api03-metricsCheck" + "E5f6G7h8" * 4
GEMINI_KEY = "AIzaSyMetricsCheck" + "a1b2c3d4e5f6g7h8i9j0k"
SECRET_PROMPT = "the launch code is tangerine-91"
BLOCKED_PROMPT = "please capsem_block this one"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(proxy: ProxyProcess) -> tuple[str, Samples]:
    """The /metrics text and its samples, fetched over a new connection."""
    response = httpx.get(f"{proxy.base_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and wanted <= sample_labels)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.fixture(scope="module")
def proxy(fake_provider):
    process = start_proxy(fake_provider.base_url, {"streaming": {"mode": "guard"}})
    yield process
    process.stop()


def test_counters_match_the_requests_sent(proxy, fake_provider) -> None:
    _, before = scrape(proxy)
    chat = openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key=OPENAI_KEY, max_retries=0)
    input_tokens = output_tokens = 0
    for _ in range(3):
        completion = chat.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": SECRET_PROMPT}]
        )
        input_tokens += completion.usage.prompt_tokens
        output_tokens += completion.usage.completion_tokens
    with pytest.raises(openai.PermissionDeniedError):
        chat.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": BLOCKED_PROMPT}])
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in chat.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "stream please"}], stream=True
        )
        if chunk.choices
    )
    assert streamed
    message = anthropic.Anthropic(base_url=proxy.base_url, api_key=ANTHROPIC_KEY, max_retries=0).messages.create(
        model="claude-metrics-check", max_tokens=50, messages=[{"role": "user", "content": SECRET_PROMPT}]
    )
    gemini = genai.Client(api_key=GEMINI_KEY, http_options={"base_url": proxy.base_url})
    answer = gemini.models.generate_content(model="gemini-2.0-flash", contents=SECRET_PROMPT)
    fake_provider.script(status=429)
    refused = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {OPENAI_KEY}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert refused.status_code == 429
    unauthenticated = httpx.post(f"{proxy.base_url}/v1/messages", json={"model": "claude", "messages": []})
    assert unauthenticated.status_code == 401

    text, after = scrape(proxy)
    requests = "capsem_proxy_requests_total"
    chat_route = {"provider": "openai", "route": "/v1/chat/completions", "model": "gpt-4o-mini"}
    assert delta(before, after, requests, **chat_route, status="200") == 4
    assert delta(before, after, requests, **chat_route, status="403") == 1
    assert delta(before, after, requests, **chat_route, status="429") == 1
    assert delta(before, after, requests, provider="anthropic", route="/v1/messages", status="200",
                 model="claude-metrics-check") == 1
    assert delta(before, after, requests, provider="anthropic", route="/v1/messages", status="401") == 1
    gemini_routes = {dict(labels)["route"] for name, labels in after if name == requests
                     and ("provider", "gemini") in labels}
    assert gemini_routes <= {"/v1beta/models/{model}:generateContent", "/v1/models/{model}:generateContent"}
    assert delta(before, after, requests, provider="gemini", model="gemini-2.0-flash", status="200") == 1
    assert delta(before, after, requests) == 9

    decisions = "capsem_proxy_decisions_total"
    # Every request that reached the policies: 8 on the prompt hook, one of them blocked.
    assert delta(before, after, decisions, policy="Debug", hook="on_model_call", verdict="ALLOW") == 7
    assert delta(before, after, decisions, policy="Debug", hook="on_model_call", verdict="BLOCK") == 1
    assert delta(before, after, "capsem_proxy_policy_duration_seconds_count", policy="Debug",
                 hook="on_model_call") == 8

    tokens = "capsem_proxy_tokens_total"
    assert delta(before, after, tokens, provider="openai", direction="input") == input_tokens
    assert delta(before, after, tokens, provider="openai", direction="output") == output_tokens
    assert delta(before, after, tokens, provider="anthropic", direction="input") == message.usage.input_tokens
    assert delta(before, after, tokens, provider="anthropic", direction="output") == message.usage.output_tokens
    gemini_usage = answer.usage_metadata
    assert delta(before, after, tokens, provider="gemini", direction="input") == gemini_usage.prompt_token_count
    assert delta(before, after, tokens, provider="gemini", direction="output") == gemini_usage.candidates_token_count

    assert delta(before, after, "capsem_proxy_request_duration_seconds_count", provider="openai") == 6
    assert delta(before, after, "capsem_proxy_upstream_duration_seconds_count", provider="openai") == 5
    assert total(after, "capsem_proxy_active_streams") == 0
    assert ("capsem_proxy_audit_queue_depth", frozenset()) in after

    for secret in (OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY, SECRET_PROMPT, "capsem_block", "tangerine"):
        assert secret not in text
    for prefix in ("sk-", "AIza"):
        assert prefix not in text


@pytest.mark.parametrize("policy_hooks", [["on_model_call"], ["on_model_call", "on_tool_call"]])
def test_streamed_answer_tokens_are_counted(fake_provider, policy_hooks) -> None:
    # With a tool-call hook the stream is guarded (emitted tool calls are checked), without one it
    # is relayed as is: the provider's usage event counts either way.
    policies = [{"class": "capsem.policies.debug_policy.DebugPolicy", "hooks": policy_hooks}]
    proxy = start_proxy(fake_provider.base_url, {"policies": policies, "audit": {"url": "memory://"}})
    try:
        chat = openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key=OPENAI_KEY, max_retries=0)
        usage = [
            chunk.usage
            for chunk in chat.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "stream please"}], stream=True,
                stream_options={"include_usage": True},
            )
            if chunk.usage
        ]
        assert len(usage) == 1
        _, samples = scrape(proxy)
    finally:
        proxy.stop()
    tokens = "capsem_proxy_tokens_total"
    assert total(samples, tokens, provider="openai", direction="input") == usage[0].prompt_tokens
    assert total(samples, tokens, provider="openai", direction="output") == usage[0].completion_tokens


def test_a_model_name_in_the_path_stays_out_of_the_route_label(proxy, fake_provider) -> None:
    gemini = genai.Client(api_key=GEMINI_KEY, http_options={"base_url": proxy.base_url})
    gemini.models.generate_content(model="gemini-route-check-001", contents="hi")
    _, samples = scrape(proxy)
    routes = {dict(labels).get("route") for name, labels in samples if name == "capsem_proxy_requests_total"}
    assert all("gemini-route-check" not in route for route in routes if route)
    assert total(samples, "capsem_proxy_requests_total", model="gemini-route-check-001") == 1


def test_metrics_is_not_a_proxied_route_and_needs_no_key(proxy, fake_provider) -> None:
    _, before = scrape(proxy)
    _, after = scrape(proxy)
    assert fake_provider.requests() == []
    assert delta(before, after, "capsem_proxy_requests_total") == 0


# --- several worker processes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(fake_provider):
    process = start_proxy(fake_provider.base_url, {"audit": {"url": "memory://"}}, workers=2)
    yield process
    process.stop()


def _requests_by_pid(directory: Path) -> dict[str, float]:
    """requests_total summed per worker process, read from each worker's own file."""
    out: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = re.fullmatch(r"counter_(\d+)\.db", path.name).group(1)
        metrics = MultiProcessCollector.merge([str(path)], accumulate=True)
        out[pid] = sum(sample.value for metric in metrics if metric.name == "capsem_proxy_requests"
                       for sample in metric.samples if sample.name == "capsem_proxy_requests_total")
    return out


def test_two_workers_report_the_sum_of_both(two_workers, fake_provider) -> None:
    directory = two_workers.workdir / "data" / "metrics"
    fake_provider.script(delay_ms=30)
    sent = Counter()

    def call(index: int) -> int:
        response = httpx.post(  # a new connection each time, so that both workers get some
            f"{two_workers.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {OPENAI_KEY}"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"hi {index}"}]}, timeout=10,
        )
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):  # until both workers have served requests (almost always the first batch)
            sent.update(pool.map(call, range(16)))
            if directory.is_dir() and sum(1 for count in _requests_by_pid(directory).values() if count) >= 2:
                break
    assert sent == {200: sent.total()}
    # A request is counted once its answer is sent, so the last ones may land a moment after the
    # client read them (the wait only stops a hung test).
    deadline = time.monotonic() + 30
    while sum(_requests_by_pid(directory).values()) < sent.total() and time.monotonic() < deadline:
        time.sleep(0.05)
    by_pid = _requests_by_pid(directory)
    assert sum(1 for count in by_pid.values() if count) == 2, by_pid
    assert sum(by_pid.values()) == sent.total()
    for _ in range(6):  # whichever worker answers the scrape, it reports both
        text, samples = scrape(two_workers)
        assert total(samples, "capsem_proxy_requests_total", provider="openai", status="200") == sent.total()
        assert total(samples, "capsem_proxy_decisions_total", verdict="ALLOW") == sent.total()
        assert total(samples, "capsem_proxy_active_streams") == 0
        assert OPENAI_KEY not in text and "pid=" not in text
    assert os.listdir(directory)
