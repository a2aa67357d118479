"""Traces of a request: the caller's trace continued, a span per policy decision placed from its
own timing, the upstream call as a CLIENT span named in the traceparent sent to the provider, the
attributes (never a key), and parent-based sampling."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from capsem_proxy.config import Settings
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.records import RequestRecord
from capsem_proxy.tracing import Tracing, open_tracing

CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"
KEY = "sk-proj-" + "Zx9" * 16


def _trace(settings: Settings, exporter: InMemorySpanExporter, run) -> list[ReadableSpan]:
    tracing = Tracing(settings, exporter)
    run(tracing)
    asyncio.run(tracing.close())
    return list(exporter.get_finished_spans())


def _record(**fields) -> RequestRecord:
    values = {
        "tenant_id": "t-5f1c", "session_id": "s-abc", "agent_id": "planner", "provider": "openai",
        "operation": "chat", "route": "/v1/chat/completions", "model": "gpt-4o", "status": 200,
        "input_tokens": 11, "output_tokens": 22,
    }
    values.update(fields)
    return RequestRecord("req-42", time.time(), **values)


def _by_kind(spans: list[ReadableSpan]) -> dict[SpanKind, list[ReadableSpan]]:
    out: dict[SpanKind, list[ReadableSpan]] = {}
    for span in spans:
        out.setdefault(span.kind, []).append(span)
    return out


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def test_tracing_off_is_none() -> None:
    assert open_tracing(Settings()) is None


def test_request_span_continues_the_callers_trace_with_policy_and_upstream_children(exporter) -> None:
    sent: list[tuple[str, str]] = []
    decisions: list[Decision] = []

    def run(tracing: Tracing) -> None:
        span = tracing.start_request(
            {"traceparent": CLIENT_TRACEPARENT, "authorization": f"Bearer {KEY}"}, "POST",
            "/v1/chat/completions", "req-42",
        )
        policy_started = time.perf_counter()
        time.sleep(0.002)
        decisions.append(Decision(Verdict.ALLOW, "DebugPolicy", "on_model_call", latency_ms=1.5,
                                  started_at=policy_started))
        sent.extend(span.upstream_headers())
        span.upstream_started()
        span.upstream_finished(200)
        decisions.append(Decision(Verdict.LOG, "pii", "on_model_response", latency_ms=0.5,
                                  started_at=time.perf_counter()))
        span.finish(_record(verdict="LOG", decision_id=decisions[1].decision_id), decisions)

    spans = _by_kind(_trace(Settings(tracing={"enabled": True}), exporter, run))
    (server,) = spans[SpanKind.SERVER]
    (client,) = spans[SpanKind.CLIENT]
    policies = spans[SpanKind.INTERNAL]
    assert format(server.context.trace_id, "032x") == CLIENT_TRACE_ID
    assert format(server.parent.span_id, "016x") == CLIENT_SPAN_ID
    assert server.name == "POST /v1/chat/completions"
    for child in [client, *policies]:
        assert child.context.trace_id == server.context.trace_id
        assert child.parent.span_id == server.context.span_id

    # The provider is told about the upstream span, in the same trace.
    assert [name for name, _ in sent] == ["traceparent"]
    version, trace_id, span_id, flags = dict(sent)["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", CLIENT_TRACE_ID, "01")
    assert span_id == format(client.context.span_id, "016x")
    assert client.name == "POST openai"
    assert client.attributes["http.response.status_code"] == 200
    assert client.attributes["server.address"] == "api.openai.com"

    by_policy = {span.attributes["capsem.policy"]: span for span in policies}
    first, second = by_policy["DebugPolicy"], by_policy["pii"]
    assert first.name == "policy DebugPolicy on_model_call"
    assert first.end_time - first.start_time == 1_500_000
    assert second.end_time - second.start_time == 500_000
    # Placed from perf_counter() values: in order, inside the request span.
    assert server.start_time <= first.start_time < client.start_time <= second.start_time <= server.end_time
    assert first.attributes["capsem.verdict"] == "ALLOW"
    assert second.attributes["capsem.decision_id"] == decisions[1].decision_id


def test_request_span_attributes_are_ids_names_and_counts(exporter) -> None:
    decision = Decision(Verdict.BLOCK, "DebugPolicy", "on_model_call", reason="unsafe_content",
                        details=f"prompt said {KEY}", started_at=time.perf_counter(), latency_ms=0.1)

    def run(tracing: Tracing) -> None:
        span = tracing.start_request({}, "POST", "/v1/chat/completions", "req-42")
        span.finish(_record(status=403, verdict="BLOCK", decision_id=decision.decision_id, input_tokens=None,
                            output_tokens=None, prompt=f"my key is {KEY}"), [decision])

    spans = _by_kind(_trace(Settings(tracing={"enabled": True}), exporter, run))
    (server,) = spans[SpanKind.SERVER]
    assert server.parent is None
    assert dict(server.attributes) == {
        "http.request.method": "POST",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 403,
        "capsem.request_id": "req-42",
        "capsem.tenant_id": "t-5f1c",
        "capsem.session_id": "s-abc",
        "capsem.agent_id": "planner",
        "capsem.verdict": "BLOCK",
        "capsem.decision_id": decision.decision_id,
        "capsem.decision_ids": (decision.decision_id,),
        "capsem.stream": False,
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
    }
    assert server.status.status_code is StatusCode.UNSET  # a 403 is the proxy doing its job
    assert SpanKind.CLIENT not in spans  # blocked before any upstream call
    (policy,) = spans[SpanKind.INTERNAL]
    assert policy.status.status_code is StatusCode.ERROR
    everything = repr([dict(span.attributes) for spans_of in spans.values() for span in spans_of])
    assert KEY not in everything and "prompt said" not in everything


def test_key_shaped_model_and_agent_are_not_recorded(exporter) -> None:
    def run(tracing: Tracing) -> None:
        span = tracing.start_request({}, "POST", "/v1beta/models/{model}:generateContent", "req-1")
        span.finish(_record(provider="gemini", model="AIzaSyA1234567890abcdefghijklmnopqrstu", agent_id=KEY), [])

    (server,) = _trace(Settings(tracing={"enabled": True}), exporter, run)
    assert server.attributes["gen_ai.request.model"] == "[REDACTED]"
    assert server.attributes["capsem.agent_id"] == "[REDACTED]"
    assert server.attributes["gen_ai.provider.name"] == "gcp.gemini"


def test_failed_upstream_call_and_server_error_are_errors(exporter) -> None:
    def run(tracing: Tracing) -> None:
        span = tracing.start_request({}, "POST", "/v1/messages", "req-9")
        span.upstream_headers()
        span.upstream_started()
        span.upstream_finished(None)
        span.finish(_record(provider="anthropic", status=502, input_tokens=None, output_tokens=None), [])

    spans = _by_kind(_trace(Settings(tracing={"enabled": True}), exporter, run))
    (server,), (client,) = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes["error.type"] == "502"
    assert client.status.status_code is StatusCode.ERROR
    assert client.attributes["error.type"] == "connection"
    assert "http.response.status_code" not in client.attributes


def test_sampling_follows_the_parent_and_the_ratio_for_new_traces(exporter) -> None:
    unsampled_parent = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-00"
    sent: dict[str, list[tuple[str, str]]] = {}

    def run(tracing: Tracing) -> None:
        for name, headers in (("new", {}), ("sampled", {"traceparent": CLIENT_TRACEPARENT}),
                              ("unsampled", {"traceparent": unsampled_parent})):
            span = tracing.start_request(headers, "POST", "/v1/responses", name)
            sent[name] = span.upstream_headers()
            span.upstream_finished(200)
            span.finish(_record(), [])

    spans = _trace(Settings(tracing={"enabled": True, "sample_ratio": 0.0}), exporter, run)
    # Ratio 0 drops new traces; a sampled caller's trace is kept whatever the ratio.
    assert {span.attributes["capsem.request_id"] for span in spans if span.kind is SpanKind.SERVER} == {"sampled"}
    # The trace context still goes upstream, with the caller's sampling decision.
    assert dict(sent["unsampled"])["traceparent"].startswith(f"00-{CLIENT_TRACE_ID}-")
    for name in ("new", "unsampled"):
        flags = int(dict(sent[name])["traceparent"].rsplit("-", 1)[1], 16)
        assert flags & 1 == 0  # the "sampled" bit


def test_tracestate_of_the_caller_goes_upstream(exporter) -> None:
    sent: list[tuple[str, str]] = []

    def run(tracing: Tracing) -> None:
        span = tracing.start_request({"traceparent": CLIENT_TRACEPARENT, "tracestate": "vendor=abc"}, "POST",
                                     "/v1/messages", "req-3")
        sent.extend(span.upstream_headers())
        span.upstream_finished(200)
        span.finish(_record(provider="anthropic"), [])

    _trace(Settings(tracing={"enabled": True}), exporter, run)
    assert dict(sent)["tracestate"] == "vendor=abc"


def test_resource_names_the_service(exporter) -> None:
    def run(tracing: Tracing) -> None:
        tracing.start_request({}, "GET", "/v1/models", "req-5").finish(_record(operation="models"), [])

    (span,) = _trace(Settings(tracing={"enabled": True, "service_name": "gateway-eu"}), exporter, run)
    assert span.resource.attributes["service.name"] == "gateway-eu"
