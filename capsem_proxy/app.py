"""The ASGI shell: routes a request, answers the proxy's own routes (health, metrics, admin,
dashboard), applies CORS, writes the access log, and hands every provider request to the
request path (`capsem_proxy.proxying`) as one flow."""

from __future__ import annotations

import gc
import logging
from time import perf_counter, time

import orjson

from capsem_proxy import __version__
from capsem_proxy.admin import AdminAPI
from capsem_proxy.asgi import Receive, Scope, Send, send_response
from capsem_proxy.audit import open_audit_sink
from capsem_proxy.audit.keys import ChainKey, default_head_path
from capsem_proxy.config import Settings
from capsem_proxy.confirm.requests import Confirmations
from capsem_proxy.confirm.store import open_approval_store
from capsem_proxy.cors import CorsPolicy
from capsem_proxy.drain import drain_state, install_drain_hook
from capsem_proxy.errors import AmbiguousKey, ErrorKind, ProxyError, RouteNotFound
from capsem_proxy.gateway.hook import Passage, open_gateway
from capsem_proxy.mcp.http import McpProxy
from capsem_proxy.observability import Observer
from capsem_proxy.policy_sets import PolicySelector
from capsem_proxy.providers import ADAPTERS
from capsem_proxy.providers.base import ProviderAdapter
from capsem_proxy.proxying.answer_path import AnswerPath
from capsem_proxy.proxying.flow import Flow
from capsem_proxy.proxying.request_path import RequestPath
from capsem_proxy.records import RequestRecord, new_request_id
from capsem_proxy.replies import JSON_CONTENT_TYPE, send_error
from capsem_proxy.routing import QueryConflict, Route, auth_hint, guess_provider, match_route
from capsem_proxy.tenancy import TenantHasher, load_or_create_secret
from capsem_proxy.upstream import HOP_BY_HOP_HEADERS
from capsem_proxy.upstreams.router import Router

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

# Headers that carry a caller's provider key; each may appear once.
_KEY_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})
# Request header names as read: (name, carries a key, forwarded upstream). Names repeat from request
# to request, so each is decoded and classified once; bounded, since a caller chooses them.
_REQUEST_NAMES: dict[bytes, tuple[str, bool, bool]] = {}
_MAX_REQUEST_NAMES = 1024


def _request_name(raw_name: bytes) -> tuple[str, bool, bool]:
    name = raw_name.decode("latin-1")
    known = (
        name, name in _KEY_HEADERS,
        raw_name not in _REQUEST_HEADERS_DROPPED and not raw_name.startswith(b"x-capsem-"),
    )
    if len(_REQUEST_NAMES) < _MAX_REQUEST_NAMES:
        _REQUEST_NAMES[raw_name] = known
    return known


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


_YOUNG_GC_THRESHOLD = 7000


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
        # Named upstreams (or the three providers), their breakers, and each request's plan.
        self.router = Router(settings, self.metrics.registry if self.metrics is not None else None)
        self.upstreams = {name: upstream.client for name, upstream in self.router.upstreams.items()}
        confirm = settings.confirm
        self.approvals = open_approval_store(confirm.store_url, confirm.approval_ttl_seconds, confirm.max_pending)
        self.gateway = open_gateway(settings, self.metrics.registry if self.metrics is not None else None)
        self.admin = AdminAPI(settings.admin.token, self.approvals, self.audit, self.gateway)
        self.request_path = RequestPath(
            policies=self.policies,
            tenants=self.tenants,
            upstreams=self.upstreams,
            router=self.router,
            confirmations=Confirmations(self.approvals, self.observer),
            answers=AnswerPath(settings.streaming, self.observer),
            observer=self.observer,
            max_body_bytes=settings.server.max_body_bytes,
            max_tools=settings.server.max_tools_per_request,
        )
        self.mcp = McpProxy(settings, self.policies, self.observer, self.tenants, self.cors, self.approvals, secret)
        self._access_log = settings.server.access_log
        self._health_body = orjson.dumps(
            {"status": "healthy", "version": __version__, "providers": list(self.adapters)}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request: MCP, a CORS preflight, a local route, or a provider request (a flow);
        or the lifespan. (A request is served here rather than in a coroutine of its own: every
        coroutine between the task and the provider's answer is one more to create and resume.)"""
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
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
        names = _REQUEST_NAMES
        for raw_name, raw_value in scope["headers"]:
            known = names.get(raw_name)
            name, key_header, forwards = known if known is not None else _request_name(raw_name)
            value = raw_value.decode("latin-1")
            if key_header and name in headers:
                repeated_key_header = True
            headers[name] = value
            if forwards:
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
            status = await self._local(send, method, path, headers, query_string, extra_headers, receive)
        else:
            flow = self._flow(scope, receive, send, route, path, headers, forwarded, request_id, extra_headers, started)
            await self.request_path.serve(flow)
            record = flow.record
            status = record.status
        if self._access_log:
            self._log_access(request_id, method, path, status, started, record)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.audit.start()
                await self.mcp.start()
                if self.gateway is not None:
                    await self.gateway.start()
                install_drain_hook(self.settings.server.drain_delay_seconds)
                # What start-up built (policies, detector tables, recognizers) lives as long as the
                # process: out of the collector's sight, a full collection walks only what requests
                # allocate (walking ~250,000 start-up objects paused every request for ~80 ms).
                gc.collect()
                gc.freeze()
                # Each request allocates a few hundred tracked objects and keeps some alive while in
                # flight: at the default young threshold (700) a collection runs every few requests and
                # walks every request still open (~4% of the event loop's instructions per request).
                # Ten times fewer young collections cost a bounded amount of memory, never a leak.
                _, middle, old = gc.get_threshold()
                gc.set_threshold(_YOUNG_GC_THRESHOLD, middle, old)
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
        if self.gateway is not None:
            await self.gateway.close()
        await self.audit.close()
        await self.observer.close()
        await self.approvals.close()

    @staticmethod
    def _log_access(
        request_id: str, method: str, path: str, status: int, started: float, record: RequestRecord | None
    ) -> None:
        """One access log line; `record` is the finished record of a proxied request."""
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
        receive: Receive | None = None,
    ) -> int:
        """Routes the proxy answers itself: health, metrics, admin API and dashboard, or 404."""
        if method == "GET" and path in ("/health", "/healthz", "/readyz"):
            return await self._health(send, path, extra_headers)
        if path == "/metrics" and method == "GET" and self.metrics is not None:
            body, content_type = self.metrics.render()
            await send_response(send, 200, [(b"content-type", content_type), *extra_headers], body)
            return 200
        if path.startswith(("/admin/", "/dashboard")) or path == "/favicon.ico":
            return await self.admin.handle(
                send, method, path, headers, extra_headers, query_string=query_string, receive=receive
            )
        adapter = self.adapters[guess_provider(path, headers)]
        error = RouteNotFound(f"the proxy does not serve {method} {path}")
        await send_error(send, adapter, error, extra_headers)
        return error.status

    def _flow(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        path: str,
        headers: dict[str, str],
        forwarded: list[tuple[str, str]],
        request_id: str,
        reply_headers: list[tuple[bytes, bytes]],
        started: float,
    ) -> Flow:
        """The flow of a request just routed to a provider, with its record and (when tracing) span."""
        method: str = scope["method"]
        record, span = self.observer.begin(request_id, time(), headers, method, _route_template(path, route))
        record.provider, record.operation, record.stream = route.provider, route.operation, route.stream_by_path
        record.model = route.path_model
        return Flow(
            request_id, method, path, scope["query_string"], headers, forwarded, route, self.adapters[route.provider],
            record, span, reply_headers, receive, send, started, stream=route.stream_by_path,
            passage=Passage(self.gateway) if self.gateway is not None else None,
        )

    async def _health(self, send: Send, path: str, extra_headers: list[tuple[bytes, bytes]]) -> int:
        status = 200
        if path == "/health":
            body = self._health_body
        elif path == "/healthz":
            body = b'{"status":"ok"}'
        else:
            ready, reason = (False, "draining: the proxy is shutting down") if drain_state.draining else (True, "")
            if ready:
                ready, reason = self.audit.ready()
            if ready:
                ready, reason = await self.approvals.ready()
            body = b'{"status":"ready"}' if ready else orjson.dumps({"status": "not ready", "reason": reason})
            status = 200 if ready else 503
        await send_response(send, status, [JSON_CONTENT_TYPE, *extra_headers], body)
        return status


def create_app(settings: Settings | None = None) -> ProxyApp:
    """Build the proxy from settings (default: the config file named by env, env vars, defaults)."""
    if settings is None:
        from capsem_proxy.config import load_settings

        settings = load_settings()
    return ProxyApp(settings)
