"""OpenTelemetry traces, exported over OTLP/HTTP in batches; off (and free) unless enabled.

One SERVER span per proxied request continues the caller's W3C `traceparent`. Under it: a span
per policy decision, placed afterwards from the decision's own start time and latency (policies
are timed anyway; opening live spans around them would cost on every hook call), and a CLIENT
span for the call to the provider, whose context goes upstream in `traceparent` so that the
provider's own spans join the same trace. Attributes are ids, names, statuses and counts, never
a key or content.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from capsem_proxy import __version__
from capsem_proxy.config import Settings
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.logs import REDACTED, looks_like_secret
from capsem_proxy.records import RequestRecord

__all__ = ["RequestSpan", "Tracing", "open_tracing"]

# Provider names as the GenAI semantic conventions spell them.
_GEN_AI_PROVIDER = {"openai": "openai", "gemini": "gcp.gemini", "anthropic": "anthropic"}
_MAX_VALUE_CHARS = 128
_PROPAGATOR = TraceContextTextMapPropagator()


def _caller_value(value: str) -> str:
    """A caller-chosen value (model name, agent id) fit for an attribute: bounded, never a key."""
    return REDACTED if looks_like_secret(value) else value[:_MAX_VALUE_CHARS]


class Tracing:
    """The tracer of one process and its OTLP exporter."""

    def __init__(self, settings: Settings, exporter: SpanExporter | None = None) -> None:
        config = settings.tracing
        resource = Resource.create({"service.name": config.service_name, "service.version": __version__})
        self._provider = TracerProvider(
            resource=resource, sampler=ParentBased(root=TraceIdRatioBased(config.sample_ratio))
        )
        if exporter is None:
            exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint, headers=dict(config.headers) or None)
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self._provider.get_tracer("capsem_proxy", __version__)
        self.upstream_hosts = {
            name: urlsplit(getattr(settings.providers, name).base_url).hostname or "" for name in _GEN_AI_PROVIDER
        }
        # Decisions are timed with perf_counter(); spans want epoch nanoseconds. One offset, taken
        # once, keeps the decision spans in the right order relative to each other and the request.
        self.perf_to_epoch_ns = time.time_ns() - time.perf_counter_ns()

    def start_request(self, headers: dict[str, str], method: str, route: str, request_id: str) -> RequestSpan:
        """Open the span of a request, continuing the caller's trace when it sent `traceparent`."""
        parent = _PROPAGATOR.extract(headers)
        span = self.tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route, "capsem.request_id": request_id},
        )
        return RequestSpan(self, span, method, route)

    async def close(self) -> None:
        """Export what is still queued and stop the exporter."""
        await asyncio.to_thread(self._provider.shutdown)


class RequestSpan:
    """The span of one request, with its upstream call and the decisions taken on it."""

    __slots__ = ("_method", "_route", "_span", "_tracing", "_upstream", "_upstream_ended_ns", "_upstream_status")

    def __init__(self, tracing: Tracing, span: trace.Span, method: str, route: str) -> None:
        self._tracing = tracing
        self._span = span
        self._method = method
        self._route = route
        self._upstream: trace.Span | None = None
        self._upstream_ended_ns: int | None = None
        self._upstream_status: int | None = None

    def _start_upstream(self) -> trace.Span:
        if self._upstream is None:
            self._upstream = self._tracing.tracer.start_span(
                f"{self._method} upstream",
                context=trace.set_span_in_context(self._span),
                kind=SpanKind.CLIENT,
                attributes={"http.request.method": self._method},
            )
        return self._upstream

    def upstream_headers(self) -> list[tuple[str, str]]:
        """`traceparent` (and `tracestate`) naming the upstream call's span, to send to the provider."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(self._start_upstream()))
        return list(carrier.items())

    def upstream_started(self) -> None:
        self._start_upstream()

    def upstream_finished(self, status: int | None) -> None:
        """The provider's answer headers arrived (`status`), or the call failed (None)."""
        self._upstream_ended_ns = time.time_ns()
        self._upstream_status = status

    def finish(self, record: RequestRecord, decisions: list[Decision]) -> None:
        """End the request span, with a child span per decision and the upstream span."""
        span = self._span
        if span.is_recording():
            span.set_attributes(_request_attributes(record, decisions))
            if record.status >= 500 or record.status == 0:
                span.set_status(Status(StatusCode.ERROR))
            if decisions:
                self._decision_spans(decisions, record)
        if self._upstream is not None:
            self._end_upstream(record)
        span.end()

    def _decision_spans(self, decisions: list[Decision], record: RequestRecord) -> None:
        tracer = self._tracing.tracer
        offset = self._tracing.perf_to_epoch_ns
        parent = trace.set_span_in_context(self._span)
        fallback_ns = int(record.started_at * 1e9)
        for decision in decisions:
            started_ns = int(decision.started_at * 1e9) + offset if decision.started_at else fallback_ns
            attributes: dict[str, AttributeValue] = {
                "capsem.policy": decision.policy,
                "capsem.hook": decision.hook,
                "capsem.verdict": decision.verdict.value,
                "capsem.reason": decision.reason,
                "capsem.decision_id": decision.decision_id,
                "capsem.latency_ms": decision.latency_ms,
            }
            if decision.subject:
                attributes["capsem.subject"] = _caller_value(decision.subject)
            child = tracer.start_span(
                f"policy {decision.policy} {decision.hook}",
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=started_ns,
            )
            if decision.verdict is Verdict.BLOCK:
                child.set_status(Status(StatusCode.ERROR, "blocked"))
            child.end(end_time=started_ns + int(decision.latency_ms * 1e6))

    def _end_upstream(self, record: RequestRecord) -> None:
        upstream = self._upstream
        assert upstream is not None
        status = self._upstream_status
        if upstream.is_recording():
            upstream.update_name(f"{self._method} {record.provider or 'upstream'}")
            attributes: dict[str, AttributeValue] = {
                "gen_ai.provider.name": _GEN_AI_PROVIDER.get(record.provider, record.provider),
                "server.address": self._tracing.upstream_hosts.get(record.provider, ""),
            }
            if status is not None:
                attributes["http.response.status_code"] = status
            upstream.set_attributes(attributes)
            if status is None or status >= 400:
                upstream.set_status(Status(StatusCode.ERROR))
                upstream.set_attribute("error.type", str(status) if status is not None else "connection")
        upstream.end(end_time=self._upstream_ended_ns)


def _request_attributes(record: RequestRecord, decisions: list[Decision]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "http.response.status_code": record.status,
        "capsem.tenant_id": record.tenant_id,
        "capsem.verdict": record.verdict,
        "capsem.stream": record.stream,
        "gen_ai.provider.name": _GEN_AI_PROVIDER.get(record.provider, record.provider),
        "gen_ai.operation.name": record.operation,
    }
    if record.model:
        attributes["gen_ai.request.model"] = _caller_value(record.model)
    if record.session_id:
        attributes["capsem.session_id"] = _caller_value(record.session_id)
    if record.agent_id:
        attributes["capsem.agent_id"] = _caller_value(record.agent_id)
    if record.decision_id:
        attributes["capsem.decision_id"] = record.decision_id
    if decisions:
        attributes["capsem.decision_ids"] = [decision.decision_id for decision in decisions]
    if record.input_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = record.input_tokens
    if record.output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = record.output_tokens
    if record.status >= 500 or record.status == 0:
        attributes["error.type"] = str(record.status)
    return attributes


def open_tracing(settings: Settings) -> Tracing | None:
    """The tracer, or None when `tracing.enabled` is false (then nothing is traced at all)."""
    return Tracing(settings) if settings.tracing.enabled else None
