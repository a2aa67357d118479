"""The ASGI application: routes a request to its provider adapter, runs the policy pipeline,
forwards to the provider and relays the answer, mapping every failure to a provider-shaped error."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from time import perf_counter
from typing import Any
from urllib.parse import parse_qsl

import orjson

from capsem_proxy import __version__
from capsem_proxy.admin import AdminAPI
from capsem_proxy.approvals import HeldRequest, open_approval_store, request_fingerprint
from capsem_proxy.asgi import ClientDisconnected, Receive, Scope, Send, read_body, send_response
from capsem_proxy.audit import open_audit_sink
from capsem_proxy.config import Settings
from capsem_proxy.cors import CorsPolicy
from capsem_proxy.decisions import Decision, Outcome, Verdict, new_decision_id
from capsem_proxy.errors import MalformedJSON, MalformedKey, MissingKey, ProxyError, RouteNotFound
from capsem_proxy.exchange import Answer, Exchange
from capsem_proxy.exchange import ToolCall as EmittedToolCall
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policy_sets import PolicySelector
from capsem_proxy.providers import ADAPTERS
from capsem_proxy.providers.base import ErrorKind, ProviderAdapter
from capsem_proxy.redaction import Placeholders, redact_json_bytes
from capsem_proxy.routing import Route, auth_hint, guess_provider, match_route
from capsem_proxy.streaming.guard import GuardChecks, StreamGuard
from capsem_proxy.streaming.relay import relay_guarded, relay_json_array, relay_sse
from capsem_proxy.streaming.rewrite import rewrite_event_text
from capsem_proxy.tenancy import TenantHasher, load_or_create_secret
from capsem_proxy.upstream import UpstreamClient, UpstreamResponse

__all__ = ["ProxyApp", "block_message", "create_app"]

logger = logging.getLogger("capsem_proxy")
access_logger = logging.getLogger("capsem_proxy.access")

REQUEST_ID_HEADER = b"x-capsem-request-id"
DECISION_ID_HEADER = b"x-capsem-decision-id"
_JSON_HEADERS = (b"content-type", b"application/json")

# Never forwarded upstream: one-hop headers, headers the client library recomputes, the
# proxy's own x-capsem-* headers (checked by prefix) and cookies meant for the proxy's host.
_REQUEST_HEADERS_DROPPED = frozenset(
    {
        b"host",
        b"content-length",
        b"connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"accept-encoding",
        b"cookie",
        b"expect",
    }
)

_BLOCK_PREFIXES = {
    "on_model_call": "Request blocked by security policy: ",
    "on_tool_response": "Request blocked by security policy: ",
    "on_tool_call": "Tool blocked by security policy: ",
    "on_model_response": "Response blocked by security policy: ",
}
_NO_POLICY_OPERATIONS = frozenset({"models"})
_PLACEHOLDERS = "placeholders"
# Operations whose answers carry model output for response policies.
_ANSWER_OPERATIONS = frozenset({"chat", "responses", "generate", "stream_generate", "messages"})


def block_message(decision: Decision) -> str:
    """The caller-facing message for a blocking decision (the seed's wording)."""
    prefix = _BLOCK_PREFIXES.get(decision.hook, "Request blocked by security policy: ")
    details = decision.details or decision.reason
    if decision.hook == "on_tool_call" and decision.extra.get("emitted") and decision.subject:
        details = f"{details} (tool call '{decision.subject}')"
    if decision.verdict in (Verdict.CONFIRM, Verdict.CLARIFY, Verdict.REPLAN):
        details = f"{decision.verdict.value.lower()} required ({details}); decision id {decision.decision_id}"
    return prefix + details


class ProxyApp:
    """The proxy as one ASGI callable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policies = PolicySelector(settings)
        self.adapters: dict[str, ProviderAdapter] = {name: cls() for name, cls in ADAPTERS.items()}
        self.upstreams = {
            name: UpstreamClient(name, getattr(settings.providers, name)) for name in self.adapters
        }
        secret = load_or_create_secret(settings.server.data_dir, settings.server.tenant_secret)
        self.tenants = TenantHasher(secret)
        self.cors = CorsPolicy(settings.cors)
        self.audit = open_audit_sink(settings.audit.url)
        confirm = settings.confirm
        self.approvals = open_approval_store(confirm.store_url, confirm.approval_ttl_seconds, confirm.max_pending)
        self.admin = AdminAPI(settings.admin.token, self.approvals)
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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Close the upstream pools and flush the audit sink."""
        for upstream in self.upstreams.values():
            await upstream.close()
        await self.audit.close()
        await self.approvals.close()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        request_id = os.urandom(12).hex()
        method: str = scope["method"]
        path: str = scope["path"]
        headers: dict[str, str] = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        extra_headers: list[tuple[bytes, bytes]] = [(REQUEST_ID_HEADER, request_id.encode())]
        origin = headers.get("origin")
        if origin is not None:
            if method == "OPTIONS":
                await self.cors.preflight(send, origin, headers, extra_headers)
                return
            extra_headers.extend(self.cors.response_headers(origin))
        status = await self._dispatch(scope, receive, send, method, path, headers, request_id, extra_headers)
        if self._access_log:
            access_logger.info(
                "%s %s %s %d %.1fms", request_id, method, path, status, (perf_counter() - started) * 1000.0
            )

    async def _dispatch(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        method: str,
        path: str,
        headers: dict[str, str],
        request_id: str,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> int:
        query_string: bytes = scope["query_string"]
        route = match_route(method, path, query_string, auth_hint(headers))
        if route is None:
            if method == "GET" and path in ("/health", "/healthz", "/readyz"):
                return await self._health(send, path, extra_headers)
            if path.startswith("/admin/"):
                return await self.admin.handle(send, method, path, headers, extra_headers)
            adapter = self.adapters[guess_provider(path, set(headers))]
            error = RouteNotFound(f"the proxy does not serve {method} {path}")
            await self._send_error(send, adapter, error, extra_headers)
            return error.status
        adapter = self.adapters[route.provider]
        try:
            return await self._proxy(scope, receive, send, route, adapter, headers, request_id, extra_headers)
        except ClientDisconnected:
            return 499
        except ProxyError as exc:
            await self._send_error(send, adapter, exc, extra_headers)
            return exc.status
        except Exception:
            logger.exception("request %s failed inside the proxy", request_id)
            error = ProxyError("internal error in the proxy", status=500, kind=ErrorKind.INTERNAL)
            await self._send_error(send, adapter, error, extra_headers)
            return 500

    async def _health(self, send: Send, path: str, extra_headers: list[tuple[bytes, bytes]]) -> int:
        status = 200
        if path == "/health":
            body = self._health_body
        elif path == "/healthz":
            body = b'{"status":"ok"}'
        else:
            ready, reason = self.audit.ready()
            body = b'{"status":"ready"}' if ready else orjson.dumps({"status": "not ready", "reason": reason})
            status = 200 if ready else 503
        await send_response(send, status, [_JSON_HEADERS, *extra_headers], body)
        return status

    def _caller_key(self, adapter: ProviderAdapter, headers: dict[str, str], query_string: bytes) -> str:
        query = dict(parse_qsl(query_string.decode("latin-1"))) if b"key=" in query_string else {}
        key = adapter.extract_key(headers, query)
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
        request_id: str,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> int:
        key = self._caller_key(adapter, headers, scope["query_string"])
        tenant_id = self.tenants.tenant_id(key)
        declared = headers.get("content-length")
        body = await read_body(receive, self.max_body_bytes, int(declared) if declared and declared.isdigit() else None)
        stream = route.stream_by_path
        context: RequestContext | None = None
        pipeline = self.policies.default
        if route.operation not in _NO_POLICY_OPERATIONS and scope["method"] == "POST":
            exchange = self._decode(adapter, route, body)
            stream = stream or exchange.stream
            context = RequestContext(
                request_id=request_id,
                tenant_id=tenant_id,
                provider=route.provider,
                operation=route.operation,
                exchange=exchange,
                agent_id=headers.get("x-capsem-agent-id", ""),
                session_id=headers.get("x-capsem-session-id", ""),
            )
            pipeline = self.policies.select(tenant_id, route.provider, route.operation, exchange.model)
            outcome = await pipeline.check_request(context)
            self.audit.record(context, outcome.decisions)
            governing = outcome.governing
            if governing is not None:
                if outcome.needs_confirmation and await self._approved_retry(context, route, headers, body):
                    extra_headers.append((DECISION_ID_HEADER, headers["x-capsem-approval"].encode()))
                else:
                    extra_headers.append((DECISION_ID_HEADER, governing.decision_id.encode()))
                    if outcome.blocked:
                        if outcome.needs_confirmation:
                            await self._hold_for_confirmation(context, route, governing, body)
                        message = block_message(governing)
                        error = ProxyError(message, status=403, kind=ErrorKind.PERMISSION)
                        await self._send_error(send, adapter, error, extra_headers)
                        return 403
                redactions = outcome.redactions
                if redactions:
                    body = redact_json_bytes(body, redactions)
                    self._remember_placeholders(context, outcome)
        upstream_headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name not in _REQUEST_HEADERS_DROPPED and not name.startswith(b"x-capsem-")
        ]
        path_and_query = route.upstream_path
        if scope["query_string"]:
            path_and_query += "?" + scope["query_string"].decode("latin-1")
        upstream = await self.upstreams[route.provider].send(
            scope["method"], path_and_query, upstream_headers, body or None, stream=stream
        )
        return await self._answer(send, receive, route, adapter, upstream, context, pipeline, extra_headers)

    @staticmethod
    def _remember_placeholders(context: RequestContext, outcome: Outcome) -> None:
        """Reversible redactions: keep placeholder -> original for this request's answer only."""
        for decision in outcome.decisions:
            if decision.verdict is Verdict.REDACT and decision.extra.get("reversible"):
                placeholders = context.scratch.setdefault(_PLACEHOLDERS, Placeholders())
                for original, placeholder in decision.redactions:
                    placeholders.add(placeholder, original)

    async def _hold_for_confirmation(
        self, context: RequestContext, route: Route, governing: Decision, body: bytes
    ) -> None:
        fingerprint = request_fingerprint(route.provider, route.operation, route.upstream_path, body)
        await self.approvals.hold(
            HeldRequest(
                decision_id=governing.decision_id, tenant_id=context.tenant_id, fingerprint=fingerprint,
                policy=governing.policy, reason=governing.reason, details=governing.details, held_at=time.time(),
            )
        )

    async def _approved_retry(
        self, context: RequestContext, route: Route, headers: dict[str, str], body: bytes
    ) -> bool:
        """True (once) when the request carries the id of an approved, identical held request."""
        approval_id = headers.get("x-capsem-approval")
        if not approval_id:
            return False
        fingerprint = request_fingerprint(route.provider, route.operation, route.upstream_path, body)
        if not await self.approvals.consume(approval_id, context.tenant_id, fingerprint):
            return False
        used = Decision(
            Verdict.LOG, "approval", "on_model_call", reason="approved",
            details=f"confirmation {approval_id} approved by an admin", decision_id=new_decision_id(),
        )
        self.audit.record(context, [used])
        return True

    @staticmethod
    def _decode(adapter: ProviderAdapter, route: Route, body: bytes) -> Exchange:
        try:
            parsed: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedJSON(f"the request body is not valid JSON: {exc.args[0] if exc.args else exc}") from exc
        if not isinstance(parsed, dict):
            raise MalformedJSON("the request body must be a JSON object")
        try:
            return adapter.decode_request(route.operation, parsed, route.path_model)
        except ValueError as exc:
            raise MalformedJSON(f"the request body is not a valid {route.provider} request: {exc}") from exc

    async def _answer(
        self,
        send: Send,
        receive: Receive,
        route: Route,
        adapter: ProviderAdapter,
        upstream: UpstreamResponse,
        context: RequestContext | None,
        pipeline: Pipeline,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> int:
        headers = upstream.headers + extra_headers
        is_sse = upstream.content_type.startswith("text/event-stream")
        is_array_stream = route.stream_by_path and not route.sse and upstream.status < 400
        placeholders: Placeholders | None = context.scratch.get(_PLACEHOLDERS) if context is not None else None
        guarded = (
            context is not None
            and upstream.status < 400
            and route.operation in _ANSWER_OPERATIONS
            and (pipeline.has_response_policies() or bool(placeholders))
        )
        if not (is_sse or is_array_stream):
            body = await upstream.read()
            if (
                guarded
                and upstream.content_type.startswith("application/json")
                and (pipeline.reads_answer_text() or placeholders or adapter.may_carry_tool_call(body))
            ):
                assert context is not None
                outcome = await self._check_answer(adapter, route, context, pipeline, body)
                if outcome is not None and outcome.blocked and outcome.governing is not None:
                    blocked = outcome.governing
                    extra_headers.append((DECISION_ID_HEADER, blocked.decision_id.encode()))
                    error = ProxyError(block_message(blocked), status=403, kind=ErrorKind.PERMISSION)
                    await self._send_error(send, adapter, error, extra_headers)
                    return 403
                rewrites = (outcome.redactions if outcome is not None else []) + (
                    placeholders.restorations() if placeholders else []
                )
                if rewrites:
                    body = redact_json_bytes(body, rewrites)
            await send_response(send, upstream.status, headers, body)
            return upstream.status
        await send({"type": "http.response.start", "status": upstream.status, "headers": headers})

        def error_event(exc: ProxyError) -> bytes:
            return adapter.stream_error_event(route.operation, exc.status, exc.message, exc.kind, sse=is_sse)

        if guarded:
            assert context is not None
            relay, guard = self._guarded_relay(send, upstream, adapter, route, context, pipeline, is_sse, error_event)
            try:
                await _relay_until_disconnect(relay, receive, upstream)
            finally:
                self.audit.record(context, guard.decisions)
        else:
            relay = (relay_sse if is_sse else relay_json_array)(send, upstream, error_event)
            await _relay_until_disconnect(relay, receive, upstream)
        return upstream.status

    def _guarded_relay(
        self,
        send: Send,
        upstream: UpstreamResponse,
        adapter: ProviderAdapter,
        route: Route,
        context: RequestContext,
        pipeline: Pipeline,
        is_sse: bool,
        error_event: Any,
    ) -> tuple[Any, StreamGuard]:
        streaming = self.settings.streaming

        async def check_answer(answer: Answer, final: bool) -> Outcome:
            return await pipeline.check_answer(context, answer, final=final, include_tool_calls=False)

        async def check_tool_call(call: EmittedToolCall) -> Outcome:
            return await pipeline.check_emitted_tool_call(context, call)

        placeholders: Placeholders | None = context.scratch.get(_PLACEHOLDERS)
        restorations = placeholders.restorations() if placeholders else []
        window = max(
            streaming.holdback_chars, pipeline.window_chars(), max((len(p) for p, _ in restorations), default=0)
        )

        def rewrite(raw: bytes, old: str, new: str) -> bytes | None:
            return rewrite_event_text(raw, old, new, sse=is_sse)

        guard = StreamGuard(
            GuardChecks(answer=check_answer, tool_call=check_tool_call),
            mode="buffer" if pipeline.needs_whole_answer() else streaming.mode,
            window_chars=window,
            max_buffer_bytes=streaming.max_buffer_bytes,
            restorations=restorations,
            rewrite=rewrite,
            reads_text=pipeline.reads_answer_text() or bool(restorations),
        )
        needs_decoding = None if (pipeline.reads_answer_text() or restorations) else adapter.may_carry_tool_call

        def block_event(decision: Decision) -> bytes:
            return adapter.stream_error_event(
                route.operation, 403, block_message(decision), ErrorKind.PERMISSION, sse=is_sse
            )

        relay = relay_guarded(
            send, upstream, sse=is_sse, decoder=adapter.stream_decoder(route.operation), guard=guard,
            error_event=error_event, block_event=block_event, needs_decoding=needs_decoding,
        )
        return relay, guard

    async def _check_answer(
        self, adapter: ProviderAdapter, route: Route, context: RequestContext, pipeline: Pipeline, body: bytes
    ) -> Outcome | None:
        """Response policies on a whole answer (None when it is not JSON the policies could read)."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None  # passed on as the provider sent it
        outcome = await pipeline.check_answer(context, adapter.decode_answer(route.operation, parsed))
        self.audit.record(context, outcome.decisions)
        return outcome

    async def _send_error(
        self, send: Send, adapter: ProviderAdapter, error: ProxyError, extra_headers: list[tuple[bytes, bytes]]
    ) -> None:
        payload = {"detail": error.message, **adapter.error_payload(error.status, error.message, error.kind)}
        await send_response(send, error.status, [_JSON_HEADERS, *extra_headers], orjson.dumps(payload))


async def _relay_until_disconnect(relay: Any, receive: Receive, upstream: UpstreamResponse) -> None:
    """Run a stream relay, cancelling it (and the upstream request) the moment the client leaves.

    The relay runs in the request's own task; a small watcher waits for the client's disconnect
    message and cancels that task, so a relay blocked on a silent provider stops at once too.
    """
    relay_task = asyncio.current_task()
    assert relay_task is not None
    client_left = False

    async def watch_disconnect() -> None:
        nonlocal client_left
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                client_left = True
                relay_task.cancel()
                return

    watcher = asyncio.ensure_future(watch_disconnect())
    try:
        await relay
    except asyncio.CancelledError:
        if not client_left:
            raise
        relay_task.uncancel()
    except OSError:
        pass  # the client's socket closed under a write: nothing left to tell it
    finally:
        watcher.cancel()
        upstream.close()


def create_app(settings: Settings | None = None) -> ProxyApp:
    """Build the proxy from settings (default: the config file named by env, env vars, defaults)."""
    if settings is None:
        from capsem_proxy.config import load_settings

        settings = load_settings()
    return ProxyApp(settings)
