"""The request path: key -> tenant -> body -> decode -> policies -> confirm -> redact -> forward,
then the answer path. Every failure on the way becomes a provider-shaped error."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from time import perf_counter
from types import MappingProxyType

from capsem_proxy.asgi import ClientDisconnected, DisconnectWatch, read_body
from capsem_proxy.confirm.requests import Confirmations
from capsem_proxy.decisions import Outcome, Verdict, redaction_failure
from capsem_proxy.errors import (
    AmbiguousKey,
    AuditUnavailable,
    ErrorKind,
    MalformedJSON,
    MalformedKey,
    MissingKey,
    ProxyError,
)
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.observability import Observer, derive_session_id, redacted_text
from capsem_proxy.policy_sets import PolicySelector
from capsem_proxy.providers.base import ConflictingKeys
from capsem_proxy.proxying.answer_path import WHOLE, AnswerPath, answer_framing
from capsem_proxy.proxying.flow import Flow
from capsem_proxy.proxying.refusal import refuse
from capsem_proxy.redaction import Placeholders, RedactionFailed, redact_json_document
from capsem_proxy.replies import DECISION_ID_HEADER, send_error
from capsem_proxy.request_body import parse_request_body
from capsem_proxy.routing import query_values
from capsem_proxy.scanning import LARGE_BODY_BYTES, large_body_turn
from capsem_proxy.tenancy import TenantHasher
from capsem_proxy.tool_limits import check_tool_count
from capsem_proxy.upstream import UpstreamClient
from capsem_proxy.upstreams.dialects import dialect_key
from capsem_proxy.upstreams.dispatch import CircuitOpen
from capsem_proxy.upstreams.outgoing import Outgoing
from capsem_proxy.upstreams.router import UPSTREAM_HEADER, Router

__all__ = ["RequestPath"]

logger = logging.getLogger("capsem_proxy")

# Operations whose requests no policy reads (a model listing or lookup).
_NO_POLICY_OPERATIONS = frozenset({"models"})
# Trace context headers: replaced by the proxy's own when it traces the request.
_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
# A request still waiting on its provider after this long starts watching for its client leaving.
_WATCH_DISCONNECT_AFTER_S = 0.25
# Caller-chosen ids are kept to this length in the audit trail.
_MAX_ID_CHARS = 128
# The query of a request that names no key in it (read-only: shared by every such request).
_NO_KEY_QUERY: Mapping[str, str] = MappingProxyType({})


class RequestPath:
    """Runs one flow from its caller's key to the last byte of its answer."""

    def __init__(
        self,
        *,
        policies: PolicySelector,
        tenants: TenantHasher,
        upstreams: dict[str, UpstreamClient],
        router: Router,
        confirmations: Confirmations,
        answers: AnswerPath,
        observer: Observer,
        max_body_bytes: int,
        max_tools: int = 1024,
    ) -> None:
        self._policies = policies
        self._tenants = tenants
        self._upstreams = upstreams
        self._router = router
        self._confirmations = confirmations
        self._answers = answers
        self._observer = observer
        self._max_body_bytes = max_body_bytes
        self._max_tools = max_tools

    async def serve(self, flow: Flow) -> None:
        """Proxy the flow's request and answer (or refuse it); then record the finished request."""
        try:
            # The steps run here, not in a coroutine of their own (one fewer to create and resume).
            if flow.passage is not None:
                await self._identify_passage(flow)
            else:
                self._identify(flow, self._tenants.tenant_id(self._caller_key(flow)))
            declared = flow.headers.get("content-length")
            flow.body = await read_body(
                flow.receive, self._max_body_bytes, int(declared) if declared and declared.isdigit() else None
            )
            refused = None
            if flow.route.operation not in _NO_POLICY_OPERATIONS and flow.method == "POST":
                refused = await self._screen(flow)
            status = refused if refused is not None else await self._forward(flow)
        except ClientDisconnected:
            status = 499
        except ProxyError as exc:
            await send_error(flow.send, flow.adapter, exc, flow.reply_headers)
            status = exc.status
        except Exception:
            logger.exception("request %s failed inside the proxy", flow.request_id)
            error = ProxyError("internal error in the proxy", status=500, kind=ErrorKind.INTERNAL)
            await send_error(flow.send, flow.adapter, error, flow.reply_headers)
            status = 500
        record = flow.record
        record.status = status
        record.latency_ms = (perf_counter() - flow.started) * 1000.0
        if flow.passage is not None:
            flow.passage.finish(record)
        self._observer.finish(record, flow.span, flow.context)

    async def _identify_passage(self, flow: Flow) -> None:
        """`_identify` through the team gateway: the gateway's tenant name for a gateway key or JWT."""
        assert flow.passage is not None
        key = self._caller_key(flow)
        gateway_tenant = await flow.passage.authenticate(key, flow.route.provider)
        self._identify(flow, gateway_tenant or self._tenants.tenant_id(key))

    def _identify(self, flow: Flow, tenant_id: str) -> None:
        """Who asks: the tenant, and who the caller says it is; refuses a tenant the audit cannot
        take now."""
        flow.tenant_id = flow.record.tenant_id = tenant_id
        if self._observer.audit_refuses(tenant_id):
            raise AuditUnavailable("the audit trail cannot take this request now; retry shortly")
        record = flow.record
        record.agent_id = flow.headers.get("x-capsem-agent-id", "")[:_MAX_ID_CHARS]
        record.session_id = flow.headers.get("x-capsem-session-id", "")[:_MAX_ID_CHARS]

    @staticmethod
    def _caller_key(flow: Flow) -> str:
        """Key -> the caller's provider key (set on the flow); refuses a missing, malformed or
        ambiguous one."""
        # The query is parsed as the provider parses it: `%6Bey=` is a key too.
        keys = set(query_values(flow.query_string, "key")) if flow.query_string else None
        try:
            if keys is not None and len(keys) > 1:
                raise ConflictingKeys("the key query parameter is given twice with different values")
            dialect = flow.route.dialect
            if dialect:  # Azure's and Vertex's own paths carry the key their own way
                key = dialect_key(dialect, flow.headers)
            else:
                key = flow.adapter.extract_key(flow.headers, {"key": keys.pop()} if keys else _NO_KEY_QUERY)
        except ConflictingKeys as exc:
            raise AmbiguousKey(f"the request carries two different API keys ({exc})") from None
        if key is None:
            raise MissingKey("no API key was provided")
        if not key:
            raise MalformedKey("the API key is malformed")
        flow.caller_key = key
        return key

    async def _screen(self, flow: Flow) -> int | None:
        """Decode the request and run its policies; the status sent when it is refused, else None."""
        record, body = flow.record, flow.body
        if len(body) <= LARGE_BODY_BYTES:  # the usual body goes straight on (see large_body_turn)
            exchange = _decode(flow, body)
        else:
            async with large_body_turn(len(body)):
                exchange = _decode(flow, body)
        exchange.request_bytes = len(body)
        flow.stream = record.stream = flow.stream or exchange.stream
        record.model = exchange.model
        check_tool_count(exchange, self._max_tools)
        if flow.passage is not None:
            flow.body, flow.route, record.model = await flow.passage.admit(
                flow.tenant_id, flow.route, exchange.model, flow.body, flow.stream, flow.reply_headers
            )
            exchange.model = record.model
        if not record.session_id:
            record.session_id = derive_session_id(flow.tenant_id, exchange)
        # Positional (request id, tenant, provider, operation, exchange, agent, session): a class
        # called with keywords builds a dict of them and unpacks it again, per request.
        context = flow.context = RequestContext(
            flow.request_id, flow.tenant_id, flow.route.provider, flow.route.operation, exchange,
            record.agent_id, record.session_id, record=record,
        )
        policy_tenant = flow.passage.policy_tenant(flow.tenant_id) if flow.passage is not None else flow.tenant_id
        pipeline = flow.pipeline = self._policies.select(
            policy_tenant, flow.route.provider, flow.route.operation, exchange.model
        )
        outcome = flow.outcome = await pipeline.check_request(context)
        self._observer.outcome(context, outcome)
        if self._observer.store_content and not outcome.blocked:
            prompt = exchange.prompt if not exchange.system else exchange.system + "\n" + exchange.prompt
            record.prompt = redacted_text(prompt, outcome.decisions)
        if outcome.governing is None:
            return None
        return await self._settle(flow, outcome)

    async def _settle(self, flow: Flow, outcome: Outcome) -> int | None:
        """Act on the governing decision: an approved retry passes, a block (or a CONFIRM, held for
        an approver) is refused, redactions rewrite the body; the status sent when refused."""
        governing = outcome.governing
        assert governing is not None
        approval_id = await self._confirmations.approved_retry(flow) if outcome.needs_confirmation else None
        if approval_id is not None:
            flow.reply_headers.append((DECISION_ID_HEADER, approval_id.encode()))
        elif outcome.blocked:
            if outcome.needs_confirmation:
                await self._confirmations.hold(flow, governing)
            return await refuse(flow, governing, self._observer)
        else:
            flow.reply_headers.append((DECISION_ID_HEADER, governing.decision_id.encode()))
        if outcome.redactions:
            try:
                flow.body = redact_json_document(flow.body, outcome.redactions)
                # Read the rewritten request as the provider will, decoded views included
                # (base64 documents, JSON texts): a byte rewrite cannot reach inside them.
                if _decode(flow, flow.body).holds_any(outcome.redactions):
                    raise RedactionFailed("redacted text is still readable in the request")
            except RedactionFailed:
                return await refuse(flow, redaction_failure(outcome), self._observer, noted=False)
            _remember_placeholders(flow, outcome)
        return None

    async def _forward(self, flow: Flow) -> int:
        """Send the request upstream and relay the answer; 499 when the client leaves meanwhile."""
        passage, query_string, forwarded = flow.passage, flow.query_string, flow.forwarded
        if passage is not None:
            if passage.admission is None and flow.context is None:  # a model listing: limits only
                flow.body, flow.route, flow.record.model = await passage.admit(
                    flow.tenant_id, flow.route, flow.record.model, flow.body, flow.stream, flow.reply_headers
                )
            forwarded, query_string = passage.upstream_credentials(flow.route.provider, forwarded, query_string)
        route, span = flow.route, flow.span
        # The key an upstream of another type gets: the caller's, or the one the gateway put in its place.
        upstream_key = flow.caller_key if passage is None else _key_in(flow, forwarded, query_string)
        path_and_query = route.upstream_path
        query = query_string.decode("latin-1") if query_string else ""
        if query:
            path_and_query += "?" + query
        # Which upstreams may serve it, in order (named upstreams, model globs and aliases).
        model = route.path_model if route.dialect == "azure" else flow.record.model
        targets = self._router.plan(route, model)
        if span is not None:
            forwarded = [header for header in forwarded if header[0] not in _TRACE_HEADERS]
            forwarded.extend(span.upstream_headers())
            span.upstream_started()
        outgoing = Outgoing(
            flow.method, route, path_and_query, query, forwarded, flow.body, flow.stream,
            model, upstream_key,
        )
        dispatch = self._router.dispatch(targets, outgoing)
        upstream_started = perf_counter()
        with DisconnectWatch(flow.receive, _WATCH_DISCONNECT_AFTER_S) as watch:
            try:
                upstream = await dispatch.send()
            except ProxyError as exc:
                if span is not None:
                    span.upstream_finished(None)
                if isinstance(exc, CircuitOpen):
                    flow.reply_headers.append((b"retry-after", str(max(1, round(exc.retry_after_s))).encode()))
                raise
            finally:
                self._router.observe(dispatch, flow.context, self._observer.audit)
            if dispatch.served is not None:
                flow.reply_headers.append((UPSTREAM_HEADER, dispatch.served.label.encode()))
            flow.record.upstream_ms = (perf_counter() - upstream_started) * 1000.0
            if span is not None:
                span.upstream_finished(upstream.status)
            refused = passage.refused_upstream(route.provider, upstream.status) if passage is not None else None
            if refused is not None:
                upstream.close()
                raise refused
            framing = answer_framing(route, upstream, flow.stream)
            if framing != WHOLE:
                watch.close()  # the stream relay watches for the client itself
            return await self._answers.relay(flow, upstream, framing)
        if span is not None:
            span.upstream_finished(None)
        return 499  # the client left while the provider was answering


def _key_in(flow: Flow, forwarded: list[tuple[str, str]], query_string: bytes) -> str:
    """The provider key in headers and query the gateway rewrote ("" when none can be read)."""
    headers = dict(forwarded)
    keys = query_values(query_string, "key")
    try:
        if flow.route.dialect:
            key = dialect_key(flow.route.dialect, headers)
        else:
            key = flow.adapter.extract_key(headers, {"key": keys[0]} if keys else {})
    except ConflictingKeys:
        return ""
    return key or ""


def _remember_placeholders(flow: Flow, outcome: Outcome) -> None:
    """Reversible redactions: keep placeholder -> original for this request's answer only."""
    for decision in outcome.decisions:
        if decision.verdict is Verdict.REDACT and decision.extra.get("reversible") and not decision.shadow:
            if flow.placeholders is None:
                flow.placeholders = Placeholders()
            for original, placeholder in decision.redactions:
                flow.placeholders.add(placeholder, original)


def _decode(flow: Flow, body: bytes) -> Exchange:
    parsed = parse_request_body(body)
    try:
        return flow.adapter.decode_request(flow.route.operation, parsed, flow.route.path_model)
    except ValueError as exc:
        raise MalformedJSON(f"the request body is not a valid {flow.route.provider} request: {exc}") from exc
