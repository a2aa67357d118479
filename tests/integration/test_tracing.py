"""Traces from a real proxy to a real OTLP/HTTP collector: the request span continues the client's
trace, with policy and upstream children, and the provider receives a traceparent of that trace."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.otlp_collector import CollectedSpan, OtlpCollector
from tests.proxy_process import start_proxy

CLIENT_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN_ID = "b7ad6b7169203331"
OPENAI_KEY = "sk-proj-tracingCheck" + "Q1w2E3r4" * 4
PROMPT = "a prompt that must stay out of traces: mango-77"


@pytest.fixture(scope="module")
def collector():
    with OtlpCollector() as running:
        yield running


@pytest.fixture(scope="module")
def proxy(fake_provider, collector):
    config = {"tracing": {"enabled": True, "otlp_endpoint": collector.endpoint, "service_name": "capsem-proxy-test"}}
    # Export every 100 ms instead of every 5 s, so the test does not wait.
    process = start_proxy(fake_provider.base_url, config, env={"OTEL_BSP_SCHEDULE_DELAY": "100"})
    yield process
    process.stop()


def _trace(collector: OtlpCollector, trace_id: str, count: int) -> list[CollectedSpan]:
    spans = collector.wait_for(lambda spans: sum(span.trace_id == trace_id for span in spans) >= count)
    return [span for span in spans if span.trace_id == trace_id]


def _upstream_traceparent(fake_provider) -> str:
    record = fake_provider.last()
    assert record is not None
    values = [value for name, value in record["headers"] if name.lower() == "traceparent"]
    assert len(values) == 1, record["headers"]
    return values[0]


def _traceparent(trace_id: str, span_id: str = CLIENT_SPAN_ID) -> str:
    return f"00-{trace_id}-{span_id}-01"


def test_request_span_continues_the_client_trace_with_policy_and_upstream_children(proxy, fake_provider, collector):
    chat = openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key=OPENAI_KEY, max_retries=0)
    completion = chat.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"traceparent": _traceparent(CLIENT_TRACE_ID), "x-capsem-agent-id": "planner"},
    )
    request_id = completion.headers["x-capsem-request-id"]
    usage = completion.parse().usage

    spans = _trace(collector, CLIENT_TRACE_ID, 3)
    (server,) = [span for span in spans if span.kind == "SERVER"]
    (client,) = [span for span in spans if span.kind == "CLIENT"]
    policies = [span for span in spans if span.kind == "INTERNAL"]
    assert server.parent_span_id == CLIENT_SPAN_ID
    assert server.name == "POST /v1/chat/completions"
    assert client.parent_span_id == server.span_id
    assert [span.parent_span_id for span in policies] == [server.span_id]
    assert server.resource["service.name"] == "capsem-proxy-test"

    # The provider joined the same trace, as a child of the upstream span.
    assert _upstream_traceparent(fake_provider) == _traceparent(CLIENT_TRACE_ID, client.span_id)

    assert server.attributes["capsem.request_id"] == request_id
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert server.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert server.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert server.attributes["capsem.agent_id"] == "planner"
    assert server.attributes["capsem.tenant_id"]
    (policy,) = policies
    assert policy.attributes["capsem.policy"] == "Debug"
    assert policy.attributes["capsem.verdict"] == "ALLOW"
    assert policy.attributes["capsem.decision_id"] in server.attributes["capsem.decision_ids"]
    assert client.attributes["http.response.status_code"] == 200
    # Times line up: the policy ran before the upstream call, both inside the request.
    assert server.start_ns <= policy.start_ns <= policy.end_ns <= client.start_ns
    assert client.start_ns <= client.end_ns <= server.end_ns

    text = repr(spans)
    assert OPENAI_KEY not in text and "mango" not in text


def test_blocked_request_has_a_blocking_policy_span_and_no_upstream_call(proxy, fake_provider, collector):
    trace_id = "1" * 32
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {OPENAI_KEY}", "traceparent": _traceparent(trace_id)},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "capsem_block now"}]},
    )
    assert response.status_code == 403
    spans = _trace(collector, trace_id, 2)
    assert sorted(span.kind for span in spans) == ["INTERNAL", "SERVER"]
    (server,) = [span for span in spans if span.kind == "SERVER"]
    (policy,) = [span for span in spans if span.kind == "INTERNAL"]
    assert policy.attributes["capsem.verdict"] == "BLOCK"
    assert server.attributes["capsem.verdict"] == "BLOCK"
    assert server.attributes["capsem.decision_id"] == response.headers["x-capsem-decision-id"]
    assert server.attributes["http.response.status_code"] == 403
    assert fake_provider.requests() == []


def test_streamed_request_is_traced_to_its_end(proxy, fake_provider, collector):
    trace_id = "2" * 32
    with httpx.stream(
        "POST", f"{proxy.base_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {OPENAI_KEY}", "traceparent": _traceparent(trace_id),
                 **fake_provider.scenario_header(events=5, delay_ms=20)},
        json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as response:
        body = b"".join(response.iter_bytes())
    assert body.rstrip().endswith(b"data: [DONE]")
    spans = _trace(collector, trace_id, 3)
    (server,) = [span for span in spans if span.kind == "SERVER"]
    (client,) = [span for span in spans if span.kind == "CLIENT"]
    assert server.attributes["capsem.stream"] is True
    assert server.end_ns - server.start_ns >= 80_000_000  # five events 20 ms apart
    assert _upstream_traceparent(fake_provider) == _traceparent(trace_id, client.span_id)


def test_without_a_client_trace_a_new_one_reaches_the_provider(proxy, fake_provider, collector):
    response = httpx.post(
        f"{proxy.base_url}/v1/messages",
        headers={"x-api-key": "sk-ant-api03-" + "T5y6" * 10, "anthropic-version": "2023-06-01"},
        json={"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    _, trace_id, span_id, flags = _upstream_traceparent(fake_provider).split("-")
    spans = _trace(collector, trace_id, 3)
    (server,) = [span for span in spans if span.kind == "SERVER"]
    (client,) = [span for span in spans if span.kind == "CLIENT"]
    assert server.parent_span_id == ""
    assert client.span_id == span_id
    assert int(flags, 16) & 1 == 1
    assert server.attributes["gen_ai.provider.name"] == "anthropic"
    assert client.name == "POST anthropic"


def test_tracing_off_forwards_the_client_traceparent_unchanged(fake_provider):
    proxy = start_proxy(fake_provider.base_url)
    try:
        traceparent = _traceparent("3" * 32)
        response = httpx.post(
            f"{proxy.base_url}/v1/chat/completions",
            headers={"authorization": f"Bearer {OPENAI_KEY}", "traceparent": traceparent},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200
        assert _upstream_traceparent(fake_provider) == traceparent
    finally:
        proxy.stop()


def test_spans_queued_at_shutdown_are_exported(fake_provider, collector):
    config = {"tracing": {"enabled": True, "otlp_endpoint": collector.endpoint}}
    # A long export delay: only the flush at shutdown can deliver the span.
    proxy = start_proxy(fake_provider.base_url, config, env={"OTEL_BSP_SCHEDULE_DELAY": "60000"})
    trace_id = "4" * 32
    try:
        response = httpx.post(
            f"{proxy.base_url}/v1/chat/completions",
            headers={"authorization": f"Bearer {OPENAI_KEY}", "traceparent": _traceparent(trace_id)},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200
    finally:
        proxy.stop()
    assert len(_trace(collector, trace_id, 3)) == 3
