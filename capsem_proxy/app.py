"""The ASGI application: routes a request to its provider adapter, runs the policy pipeline,
forwards to the provider and relays the answer, mapping every failure to a provider-shaped error."""

from __future__ import annotations

import asyncio
import gc
import logging
from time import perf_counter, time
from typing import TYPE_CHECKING, Any

import orjson

from capsem_proxy import __version__
from capsem_proxy.admin import AdminAPI
from capsem_proxy.answers import PLACEHOLDERS, AnswerRelay, is_streamed
from capsem_proxy.approvals import open_approval_store
from capsem_proxy.asgi import ClientDisconnected, DisconnectWatch, Receive, Scope, Send, read_body, send_response
from capsem_proxy.audit import open_audit_sink
from capsem_proxy.audit.keys import ChainKey, default_head_path
from capsem_proxy.config import Settings
from capsem_proxy.confirmation import Confirmations
from capsem_proxy.cors import CorsPolicy
from capsem_proxy.decisions import Outcome, Verdict, redaction_failure
from capsem_proxy.errors import (
    AmbiguousKey,
    AuditUnavailable,
    MalformedJSON,
    MalformedKey,
    MissingKey,
    ProxyError,
    RouteNotFound,
)
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.mcp.http import McpProxy
from capsem_proxy.observability import Observer, derive_session_id, redacted_text
from capsem_proxy.policy_sets import PolicySelector
from capsem_proxy.providers import ADAPTERS
from capsem_proxy.providers.base import ConflictingKeys, ErrorKind, ProviderAdapter
from capsem_proxy.records import RequestRecord, new_request_id
from capsem_proxy.redaction import Placeholders, RedactionFailed, redact_json_document
from capsem_proxy.replies import DECISION_ID_HEADER, JSON_CONTENT_TYPE, block_error, send_error
from capsem_proxy.request_body import parse_request_body
from capsem_proxy.routing import QueryConflict, Route, auth_hint, guess_provider, match_route, query_values
from capsem_proxy.scanning import large_body_turn
from capsem_proxy.tenancy import TenantHasher, load_or_create_secret
from capsem_proxy.upstream import HOP_BY_HOP_HEADERS
from capsem_proxy.upstreams.dialects import dialect_key
from capsem_proxy.upstreams.dispatch import CircuitOpen
from capsem_proxy.upstreams.outgoing import Outgoing
from capsem_proxy.upstreams.router import UPSTREAM_HEADER, Router

if TYPE_CHECKING:
    from capsem_proxy.tracing import RequestSpan

__all__ = ["ProxyApp", "create_app"]

logger = logging.getLogger("capsem_proxy")
access_logger = logging.getLogger("capsem_proxy.access")

REQUEST_ID_HEADER = b"x-capsem-request-id"

# Never forwarded upstream: one-hop headers, headers the client library recomputes, the
# proxy's own x-capsem-* headers (checked by prefix) and cookies meant for the proxy's host.
_REQUEST_HEADERS_DROPPED = HOP_BY_HOP_HEADERS | {
    b"host",
    b"content-length",
    b"accept-encoding",
    b"cookie",
    b"expect",
}

_NO_POLICY_OPERATIONS = frozenset({"models"})
# Headers that carry a caller's provider key; each may appear once.
_KEY_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})
# Trace context headers: replaced by the proxy's own when it traces the request.
_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
# A request still waiting on its provider after this long starts watching for its client leaving.
_WATCH_DISCONNECT_AFTER_S = 0.25
# Caller-chosen ids are kept to this length in the audit trail.
_MAX_ID_CHARS = 128


def _route_template(path: str, route: Route) -> str:
    """The served route without its model name or id (a bounded value for metrics and the audit)."""
    if route.path_model:
        if route.dialect == "azure":
            return path.replace("/deployments/" + route.path_model, "/deployments/{deployment}", 1)
        if route.dialect == "vertex":
            return "/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:" + (
                path.rpartition(":")[2]
            )
        return path.replace("/models/" + route.path_model, "/models/{model}", 1)
    if route.operation == "models" and path.count("/") > 2:
        return path.rsplit("/", 1)[0] + "/{id}"  # GET /v1/models/{id}
    return path


class ProxyApp:
    """The proxy as one ASGI callable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policies = PolicySelector(settings)
        self.adapters: dict[str, ProviderAdapter] = {name: cls() for name, cls in ADAPTERS.items()}
        secret = load_or_create_secret(settings.server.data_dir, settings.server.tenant_secret)
        self.tenants = TenantHasher(secret)
        self.cors = CorsPolicy(settings.cors)
        self.audit = open_audit_sink(settings.audit, ChainKey.derive(secret), head_file=default_head_path(settings))
        self.observer = Observer(settings, self.audit)
        self.metrics = self.observer.metrics
        self.router = Router(settings, self.metrics.registry if self.metrics is not None else None)
        self.upstreams = {name: upstream.client for name, upstream in self.router.upstreams.items()}
        confirm = settings.confirm
        self.approvals = open_approval_store(confirm.store_url, confirm.approval_ttl_seconds, confirm.max_pending)
        self.admin = AdminAPI(settings.admin.token, self.approvals, self.audit)
        self.confirmations = Confirmations(self.approvals, self.observer)
        self.answers = AnswerRelay(settings.streaming, self.observer)
        self.mcp = McpProxy(settings, self.policies, self.observer, self.tenants, self.cors, self.approvals, secret)
        self.max_body_bytes = settings.server.max_body_bytes
        self._access_log = settings.server.access_log
        self._health_body = orjson.dumps(
            {"status": "healthy", "version": __version__, "providers": list(self.adapters)}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "http":
            await self._http(scope, receive, send)
        elif scope_type == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.audit.start()
                await self.mcp.start()
                # What start-up built (policies, detector tables, recognizers) lives as long as the
                # process: out of the collector's sight, a full collection walks only what requests
                # allocate (walking ~250,000 start-up objects paused every request for ~80 ms).
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Close the upstream pools and flush the audit sink."""
        for upstream in self.upstreams.values():
            await upstream.close()
        await self.mcp.aclose()
        await self.audit.close()
        await self.observer.close()
        await self.approvals.close()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        request_id = new_request_id()
        method: str = scope["method"]
        # Routes are matched on the path exactly as sent: a percent-encoded path could otherwise be
        # routed as one operation and reach the provider as another (`%3F` turning into `?`).
        raw_path: bytes | None = scope.get("raw_path")
        path: str = raw_path.decode("latin-1") if raw_path is not None else scope["path"]
        if path.startswith("/mcp/"):
            return await self.mcp.serve(scope, receive, send, path.split("?", 1)[0], request_id)
        # One pass over the headers: the lookup table and the list forwarded upstream.
        headers: dict[str, str] = {}
        forwarded: list[tuple[str, str]] = []
        repeated_key_header = False
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            if name in headers and name in _KEY_HEADERS:
                repeated_key_header = True
            headers[name] = value
            if raw_name not in _REQUEST_HEADERS_DROPPED and not raw_name.startswith(b"x-capsem-"):
                forwarded.append((name, value))
        extra_headers: list[tuple[bytes, bytes]] = [(REQUEST_ID_HEADER, request_id.encode())]
        origin = headers.get("origin")
        if origin is not None:
            if method == "OPTIONS":
                await self.cors.preflight(send, origin, headers, extra_headers)
                return
            extra_headers.extend(self.cors.response_headers(origin))
        record: RequestRecord | None = None
        query_string: bytes = scope["query_string"]
        route = None
        refusal: ProxyError | None = None
        if repeated_key_header:
            # The provider might authenticate with one value while the tenant is derived from another.
            refusal = AmbiguousKey("the request carries more than one API key header")
        else:
            try:
                route = match_route(method, path, query_string, auth_hint(headers))
            except QueryConflict as exc:
                refusal = ProxyError(str(exc), status=400, kind=ErrorKind.INVALID_REQUEST)
        if refusal is not None:
            await send_error(send, self.adapters[guess_provider(path, headers)], refusal, extra_headers)
            status = refusal.status
        elif route is None:
            status = await self._local(send, method, path, headers, query_string, extra_headers)
        else:
            record = await self._proxied(
                scope, receive, send, route, path, headers, forwarded, request_id, extra_headers, started
            )
            status = record.status
        if self._access_log:
            # Only served routes are logged by path; anything else could carry arbitrary caller input.
            logged_path = path if status != 404 else "<unserved route>"
            latency_ms = (perf_counter() - started) * 1000.0
            # The governing decision (the one in x-capsem-decision-id) ties the line to the audit trail.
            decision_id = record.decision_id if record is not None and record.decision_id else None
            access_logger.info(
                "%s %s %r %d %.1fms%s", request_id, method, logged_path, status, latency_ms,
                f" {record.verdict} decision {decision_id}" if record is not None and decision_id else "",
                extra={
                    "request_id": request_id, "method": method, "status": status, "latency_ms": round(latency_ms, 3),
                    "route": record.route if record is not None else logged_path,
                    "tenant_id": record.tenant_id if record is not None else "",
                    "verdict": record.verdict if record is not None else None, "decision_id": decision_id,
                },
            )

    async def _local(
        self,
        send: Send,
        method: str,
        path: str,
        headers: dict[str, str],
        query_string: bytes,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> int:
        """Routes the proxy answers itself: health, metrics, admin API and dashboard, or 404."""
        if method == "GET" and path in ("/health", "/healthz", "/readyz"):
            return await self._health(send, path, extra_headers)
        if path == "/metrics" and method == "GET" and self.metrics is not None:
            body, content_type = self.metrics.render()
            await send_response(send, 200, [(b"content-type", content_type), *extra_headers], body)
            return 200
        if path.startswith(("/admin/", "/dashboard")) or path == "/favicon.ico":
            return await self.admin.handle(send, method, path, headers, extra_headers, query_string=query_string)
        adapter = self.adapters[guess_provider(path, headers)]
        error = RouteNotFound(f"the proxy does not serve {method} {path}")
        await send_error(send, adapter, error, extra_headers)
        return error.status

    async def _proxied(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        path: str,
        headers: dict[str, str],
        forwarded: list[tuple[str, str]],
        request_id: str,
        extra_headers: list[tuple[bytes, bytes]],
        started: float,
    ) -> RequestRecord:
        """Proxy one request to its provider; returns its finished record."""
        method: str = scope["method"]
        adapter = self.adapters[route.provider]
        record, span = self.observer.begin(request_id, time(), headers, method, _route_template(path, route))
        record.provider, record.operation, record.stream = route.provider, route.operation, route.stream_by_path
        record.model = route.path_model or ""

        async def timed_send(message: Any) -> None:
            if record.ttfb_ms is None and message["type"] == "http.response.body":
                record.ttfb_ms = (perf_counter() - started) * 1000.0
            await send(message)

        context: list[RequestContext] = []
        try:
            status = await self._proxy(
                scope, receive, timed_send, route, adapter, headers, forwarded, request_id, extra_headers,
                record, span, context,
            )
        except ClientDisconnected:
            status = 499
        except ProxyError as exc:
            await send_error(timed_send, adapter, exc, extra_headers)
            status = exc.status
        except Exception:
            logger.exception("request %s failed inside the proxy", request_id)
            error = ProxyError("internal error in the proxy", status=500, kind=ErrorKind.INTERNAL)
            await send_error(timed_send, adapter, error, extra_headers)
            status = 500
        record.status = status
        record.latency_ms = (perf_counter() - started) * 1000.0
        self.observer.finish(record, span, context[0] if context else None)
        return record

    async def _health(self, send: Send, path: str, extra_headers: list[tuple[bytes, bytes]]) -> int:
        status = 200
        if path == "/health":
            body = self._health_body
        elif path == "/healthz":
            body = b'{"status":"ok"}'
        else:
            ready, reason = self.audit.ready()
            if ready:
                ready, reason = await self.approvals.ready()
            body = b'{"status":"ready"}' if ready else orjson.dumps({"status": "not ready", "reason": reason})
            status = 200 if ready else 503
        await send_response(send, status, [JSON_CONTENT_TYPE, *extra_headers], body)
        return status

    def _caller_key(
        self, adapter: ProviderAdapter, headers: dict[str, str], query_string: bytes, dialect: str = ""
    ) -> str:
        # The query is parsed as the provider parses it: `%6Bey=` is a key too.
        keys = set(query_values(query_string, "key"))
        try:
            if len(keys) > 1:
                raise ConflictingKeys("the key query parameter is given twice with different values")
            if dialect:
                key = dialect_key(dialect, headers)
            else:
                key = adapter.extract_key(headers, {"key": keys.pop()} if keys else {})
        except ConflictingKeys as exc:
            raise AmbiguousKey(f"the request carries two different API keys ({exc})") from None
        if key is None:
            raise MissingKey("no API key was provided")
        if not key:
            raise MalformedKey("the API key is malformed")
        return key

    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        adapter: ProviderAdapter,
        headers: dict[str, str],
        forwarded: list[tuple[str, str]],
        request_id: str,
        extra_headers: list[tuple[bytes, bytes]],
        record: RequestRecord,
        span: RequestSpan | None,
        context_out: list[RequestContext],
    ) -> int:
        key = self._caller_key(adapter, headers, scope["query_string"], route.dialect)
        tenant_id = record.tenant_id = self.tenants.tenant_id(key)
        if self.observer.audit_refuses(tenant_id):
            raise AuditUnavailable("the audit trail cannot take this request now; retry shortly")
        declared = headers.get("content-length")
        body = await read_body(receive, self.max_body_bytes, int(declared) if declared and declared.isdigit() else None)
        stream = route.stream_by_path
        context: RequestContext | None = None
        pipeline = self.policies.default
        agent_id = record.agent_id = headers.get("x-capsem-agent-id", "")[:_MAX_ID_CHARS]
        session_id = record.session_id = headers.get("x-capsem-session-id", "")[:_MAX_ID_CHARS]
        if route.operation not in _NO_POLICY_OPERATIONS and scope["method"] == "POST":
            async with large_body_turn(len(body)):
                exchange = self._decode(adapter, route, body)
            exchange.request_bytes = len(body)
            stream = record.stream = stream or exchange.stream
            record.model = exchange.model
            if not session_id:
                session_id = record.session_id = derive_session_id(tenant_id, exchange)
            context = RequestContext(
                request_id=request_id,
                tenant_id=tenant_id,
                provider=route.provider,
                operation=route.operation,
                exchange=exchange,
                agent_id=agent_id,
                session_id=session_id,
                record=record,
            )
            context_out.append(context)
            pipeline = self.policies.select(tenant_id, route.provider, route.operation, exchange.model)
            outcome = await pipeline.check_request(context)
            self.observer.decisions(context, outcome.decisions)
            if self.observer.store_content and not outcome.blocked:
                prompt = exchange.prompt if not exchange.system else exchange.system + "\n" + exchange.prompt
                record.prompt = redacted_text(prompt, outcome.decisions)
            governing = outcome.governing
            if governing is not None:
                approval_id = (
                    await self.confirmations.approved_retry(context, route, headers, body)
                    if outcome.needs_confirmation
                    else None
                )
                if approval_id is not None:
                    extra_headers.append((DECISION_ID_HEADER, approval_id.encode()))
                else:
                    extra_headers.append((DECISION_ID_HEADER, governing.decision_id.encode()))
                    if outcome.blocked:
                        if outcome.needs_confirmation:
                            await self.confirmations.hold(context, route, governing, body)
                        refusal = block_error(governing)
                        await send_error(send, adapter, refusal, extra_headers)
                        return refusal.status
                redactions = outcome.redactions
                if redactions:
                    try:
                        body = redact_json_document(body, redactions)
                        # Read the rewritten request as the provider will, decoded views included
                        # (base64 documents, JSON texts): a byte rewrite cannot reach inside them.
                        if self._decode(adapter, route, body).holds_any(redactions):
                            raise RedactionFailed("redacted text is still readable in the request")
                    except RedactionFailed:
                        failure = redaction_failure(outcome)
                        self.observer.decisions(context, [failure])
                        extra_headers.append((DECISION_ID_HEADER, failure.decision_id.encode()))
                        await send_error(send, adapter, block_error(failure), extra_headers)
                        return 403
                    self._remember_placeholders(context, outcome)
        path_and_query = route.upstream_path
        if scope["query_string"]:
            path_and_query += "?" + scope["query_string"].decode("latin-1")
        # Which upstreams may serve it, in order (named upstreams, model globs and aliases).
        model = route.path_model if route.dialect == "azure" else record.model
        targets = self.router.plan(route, model)
        if span is not None:
            forwarded = [header for header in forwarded if header[0] not in _TRACE_HEADERS]
            forwarded.extend(span.upstream_headers())
            span.upstream_started()
        query = scope["query_string"].decode("latin-1")
        dispatch = self.router.dispatch(
            targets, Outgoing(scope["method"], route, path_and_query, query, forwarded, body, stream, model, key)
        )
        upstream_started = perf_counter()
        watch = DisconnectWatch(receive, _WATCH_DISCONNECT_AFTER_S)
        try:
            try:
                upstream = await dispatch.send()
            except ProxyError as exc:
                if span is not None:
                    span.upstream_finished(None)
                if isinstance(exc, CircuitOpen):
                    extra_headers.append((b"retry-after", str(max(1, round(exc.retry_after_s))).encode()))
                raise
            finally:
                self.router.observe(dispatch, context, self.audit)
            if dispatch.served is not None:
                extra_headers.append((UPSTREAM_HEADER, dispatch.served.label.encode()))
            record.upstream_ms = (perf_counter() - upstream_started) * 1000.0
            if span is not None:
                span.upstream_finished(upstream.status)
            if is_streamed(route, upstream, stream):
                watch.close()  # the stream relay watches for the client itself
            return await self.answers.relay(
                send, receive, route, adapter, upstream, context, pipeline, extra_headers, record
            )
        except asyncio.CancelledError:
            if not watch.client_left:
                raise
            current_task = asyncio.current_task()
            if current_task is not None:
                current_task.uncancel()
            if span is not None:
                span.upstream_finished(None)
            return 499
        finally:
            watch.close()

    @staticmethod
    def _remember_placeholders(context: RequestContext, outcome: Outcome) -> None:
        """Reversible redactions: keep placeholder -> original for this request's answer only."""
        for decision in outcome.decisions:
            if decision.verdict is Verdict.REDACT and decision.extra.get("reversible") and not decision.shadow:
                placeholders = context.scratch.setdefault(PLACEHOLDERS, Placeholders())
                for original, placeholder in decision.redactions:
                    placeholders.add(placeholder, original)

    @staticmethod
    def _decode(adapter: ProviderAdapter, route: Route, body: bytes) -> Exchange:
        parsed = parse_request_body(body)
        try:
            return adapter.decode_request(route.operation, parsed, route.path_model)
        except ValueError as exc:
            raise MalformedJSON(f"the request body is not a valid {route.provider} request: {exc}") from exc


def create_app(settings: Settings | None = None) -> ProxyApp:
    """Build the proxy from settings (default: the config file named by env, env vars, defaults)."""
    if settings is None:
        from capsem_proxy.config import load_settings

        settings = load_settings()
    return ProxyApp(settings)
