"""Where what happens to a request goes: decisions as they are taken and the finished request,
to the audit trail, the metrics and the traces (each optional, each free when off)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from capsem_proxy.audit import AuditSink
from capsem_proxy.audit.folding import folded_json
from capsem_proxy.config import Settings
from capsem_proxy.decisions import CONFIRMATION_VERDICTS, SEVERITY, Decision, Outcome, Verdict, strictest
from capsem_proxy.exchange import Exchange
from capsem_proxy.extras import needs_extra
from capsem_proxy.hooks import RequestContext
from capsem_proxy.metrics import Metrics, open_metrics
from capsem_proxy.records import RequestRecord

if TYPE_CHECKING:
    from capsem_proxy.tracing import RequestSpan, Tracing

__all__ = ["Observer", "derive_session_id", "redacted_text"]


# The severity of a recorded verdict, by its text (no Verdict built per decision).
_SEVERITY_OF: dict[str, int] = {verdict.value: severity for verdict, severity in SEVERITY.items()}


def derive_session_id(tenant_id: str, exchange: Exchange) -> str:
    """A session id for a conversation that names none: a hash of the tenant, the system
    instructions and the first message, which every later turn of the same chat repeats."""
    for first in exchange.messages:
        if first.role != "system":
            break
    else:
        return ""
    system, text = exchange.system, first.text
    if len(system) > _SEED_CHARS:
        system = _seed_part(system)
    if len(text) > _SEED_CHARS:
        text = _seed_part(text)
    seed = "\x1f".join((tenant_id, exchange.provider, system, first.role, text))
    return "s-" + hashlib.blake2b(seed.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


# Characters of a long text a session id is derived from: its start, its end and its length. A
# megabyte prompt is not hashed whole on the event loop for an id (shorter texts are used as they are).
_SEED_CHARS = 16 * 1024


def _seed_part(text: str) -> str:
    if len(text) <= _SEED_CHARS:
        return text
    half = _SEED_CHARS // 2
    return f"{text[:half]}\x1e{len(text)}\x1e{text[-half:]}"


class Observer:
    """Fans out decisions and finished requests to the audit sink, metrics and tracing."""

    def __init__(self, settings: Settings, audit: AuditSink) -> None:
        self.audit = audit
        self.metrics: Metrics | None = open_metrics(settings)
        self.tracing: Tracing | None = None
        if settings.tracing.enabled:
            # The OpenTelemetry SDK and its exporter (about 12 MiB) load only when traces are wanted.
            with needs_extra("tracing.enabled"):
                from capsem_proxy.tracing import open_tracing

            self.tracing = open_tracing(settings)
        self.store_content = settings.audit.store_content
        if self.metrics is not None:
            self.metrics.watch_audit(audit)

    def begin(
        self, request_id: str, started_at: float, headers: dict[str, str], method: str, route: str
    ) -> tuple[RequestRecord, RequestSpan | None]:
        """The record of a request just routed, and its span when tracing is on."""
        record = RequestRecord(request_id, started_at, route=route)
        span = self.tracing.start_request(headers, method, route, request_id) if self.tracing is not None else None
        return record, span

    def audit_refuses(self, tenant_id: str) -> bool:
        """True when the audit queue has no room this tenant's request may count on (a block it might
        earn must be recorded; see audit/queued.py): the request is then refused, not left unaudited."""
        if self.audit.admits(tenant_id):
            return False
        if self.metrics is not None:
            self.metrics.audit_refused()
        return True

    def decisions(self, context: RequestContext, decisions: list[Decision]) -> None:
        """Record decisions taken on the request of `context`."""
        if decisions:
            self.outcome(context, Outcome(decisions, strictest(decisions)))

    def outcome(self, context: RequestContext, outcome: Outcome) -> None:
        """Record the decisions of a pipeline's `outcome` (`decisions`, with the governing one known)."""
        decisions, governing = outcome.decisions, outcome.governing
        if not decisions:
            return
        self.audit.record(context, decisions)
        if self.metrics is not None:
            self.metrics.observe_decisions(decisions)
        record = context.record
        if governing is not None and record is not None and governing.severity > _SEVERITY_OF[record.verdict]:
            record.verdict = governing.verdict.value
            record.decision_id = governing.decision_id
            record.reason = governing.reason
        if self.tracing is not None:
            if context.traced_decisions is None:
                context.traced_decisions = []
            context.traced_decisions.extend(decisions)

    def finish(self, record: RequestRecord, span: RequestSpan | None, context: RequestContext | None) -> None:
        """Record the finished request."""
        if context is not None:
            record.allowed = folded_json(context)
        self.audit.record_request(record)
        if self.metrics is not None:
            self.metrics.observe_request(record)
        if span is not None:
            traced = context.traced_decisions if context is not None else None
            span.finish(record, traced or [])

    def stream_started(self) -> None:
        if self.metrics is not None:
            self.metrics.stream_started()

    def stream_ended(self) -> None:
        if self.metrics is not None:
            self.metrics.stream_ended()

    async def close(self) -> None:
        if self.tracing is not None:
            await self.tracing.close()


def redacted_text(text: str, decisions: list[Decision]) -> str | None:
    """`text` with every redaction the decisions asked for applied (for stored content), or None
    when a shadow policy would have blocked it or held it for confirmation: what is blocked is never
    kept, and a shadow policy must not make the audit keep what its enforcing twin would not (a
    secret a `block` policy found). Shadow redactions apply too, for the same reason."""
    for decision in decisions:
        if decision.shadow and (decision.verdict is Verdict.BLOCK or decision.verdict in CONFIRMATION_VERDICTS):
            return None
    for decision in decisions:
        if decision.verdict is Verdict.REDACT:
            for original, replacement in decision.redactions:
                if original:
                    text = text.replace(original, replacement)
    return text
