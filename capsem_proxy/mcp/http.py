"""The Streamable HTTP MCP proxy served at `/mcp/{name}`.

- POST: one JSON-RPC message (or, in revisions before 2025-06-18, a batch). Requests are checked
  before the server sees them; the answer (JSON, or an SSE stream relayed event by event, in order)
  is checked before the client sees it. A refused request never reaches the server; a refused
  result never reaches the client; each is answered by a JSON-RPC error in its place.
- GET: the server-initiated SSE stream of a session, relayed with the same checks.
- DELETE: ends a session.

The client's headers are not forwarded, except the MCP ones (`Accept`, `Content-Type`,
`MCP-Protocol-Version`, `Last-Event-ID`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`, trace context)
and those a server's `forward_headers` names: the client's own credentials never reach the server
unless configured. The server's `Mcp-Session-Id` reaches the client bound to the caller (see
`sessions.py`); a session id minted for another caller is refused as unknown (404).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
from collections.abc import Mapping
from time import perf_counter, time
from typing import Any

import orjson

from capsem_proxy.asgi import ClientDisconnected, Receive, Scope, Send, read_body, send_response
from capsem_proxy.config import Settings
from capsem_proxy.confirm.store import ApprovalStore
from capsem_proxy.cors import CorsPolicy
from capsem_proxy.errors import BodyTooLarge, ProxyError, UpstreamTimeout
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.mcp.events import EventMessages, data_event, event_with_data, read_event
from capsem_proxy.mcp.guard import Flow, McpGuard
from capsem_proxy.mcp.jsonrpc import (
    BATCH_REVISIONS,
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    UPSTREAM_ERROR,
    InvalidMessage,
    Message,
    error_response,
    parse_messages,
)
from capsem_proxy.mcp.pin_store import PinStore, open_pin_store
from capsem_proxy.mcp.pinning import ToolPins
from capsem_proxy.mcp.sessions import SessionBinder, ToolCatalogs
from capsem_proxy.mcp.upstream import McpUpstream
from capsem_proxy.observability import Observer
from capsem_proxy.policy_sets import PolicySelector
from capsem_proxy.records import RequestRecord
from capsem_proxy.replies import DECISION_ID_HEADER
from capsem_proxy.scanning import large_body_turn
from capsem_proxy.streaming.sse import SSESplitter
from capsem_proxy.tenancy import TenantHasher
from capsem_proxy.upstream import UpstreamResponse

__all__ = ["McpProxy"]

logger = logging.getLogger("capsem_proxy.mcp")
access_logger = logging.getLogger("capsem_proxy.access")

PREFIX = "/mcp/"
_REQUEST_ID_HEADER = b"x-capsem-request-id"
_JSON = (b"content-type", b"application/json")
# Client headers an MCP server needs, forwarded as they are (besides `forward_headers`).
_FORWARDED = frozenset(
    {"accept", "content-type", "mcp-protocol-version", "last-event-id", "mcp-method", "mcp-name", "traceparent",
     "tracestate", "user-agent"}
)
# Server headers never relayed: the proxy sets its own, or they would reach the wrong party.
_ANSWER_HEADERS_DROPPED = frozenset(
    {b"mcp-session-id", b"set-cookie", b"www-authenticate", b"access-control-allow-origin",
     b"access-control-allow-credentials", b"access-control-expose-headers", b"access-control-allow-headers",
     b"access-control-allow-methods", b"access-control-max-age", b"vary"}
)
_ACCEPT_BOTH = "application/json, text/event-stream"
# A browser client's preflight (its origin already allowed by `cors.allow_origins`).
_PREFLIGHT = [
    (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"authorization, x-api-key, content-type, accept, mcp-session-id, "
     b"mcp-protocol-version, last-event-id, mcp-method, mcp-name, x-capsem-session-id, x-capsem-agent-id, "
     b"x-capsem-approval"),
    (b"access-control-max-age", b"600"),
]
_MAX_TOOL_PAGES = 20
# A request still waiting on the server after this long starts watching for its client leaving.
_WATCH_AFTER_S = 0.25
_MAX_ID_CHARS = 128


def _key(request_id: Any) -> str:
    """A request id as a dict key (1 and "1" are different ids)."""
    return f"{type(request_id).__name__}:{request_id}"


def _decoded_header(value: str) -> str:
    """An `Mcp-Name` / `Mcp-Param-*` value, decoding the `=?base64?...?=` form (MCP 2026-07-28)."""
    if value.startswith("=?base64?") and value.endswith("?=") and len(value) >= 11:
        try:
            return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "\0invalid"
    return value


class _Server:
    """One configured MCP server: its upstream client and its guard."""

    __slots__ = ("forwarded", "forwards_credentials", "guard", "name", "route", "upstream")

    def __init__(self, name: str, upstream: McpUpstream, guard: McpGuard) -> None:
        self.name = name
        self.route = PREFIX + name
        self.upstream = upstream
        self.guard = guard
        self.forwarded = _FORWARDED | frozenset(upstream.settings.forward_headers)
        self.forwards_credentials = bool({"authorization", "x-api-key"} & set(upstream.settings.forward_headers))


class _Exchange:
    """One HTTP request to `/mcp/{name}`: what is known of it, and whether its answer has started."""

    __slots__ = ("extra_headers", "flow", "headers", "identity", "record", "send", "server", "session", "started")

    def __init__(self, send: Send, server: _Server, headers: dict[str, str], record: RequestRecord,
                 extra_headers: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.server = server
        self.headers = headers
        self.record = record
        self.extra_headers = extra_headers
        self.identity = ""
        self.session: str | None = None  # the server's own session id
        self.flow: Flow | None = None
        self.started = False

    async def reply(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> int:
        await send_response(self.send, status, [*(headers or [_JSON]), *self._decision_headers()], body)
        self.started = True
        return status

    async def error(self, status: int, request_id: Any, code: int, message: str) -> int:
        return await self.reply(status, orjson.dumps(error_response(request_id, code, message)))

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        headers = [*headers, *self._decision_headers()]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        self.started = True

    def _decision_headers(self) -> list[tuple[bytes, bytes]]:
        headers = list(self.extra_headers)
        if self.flow is not None and self.flow.decision_ids:
            headers.append((DECISION_ID_HEADER, self.flow.decision_ids[-1].encode()))
        return headers


class McpProxy:
    """Every configured MCP server, served under `/mcp/`."""

    def __init__(
        self,
        settings: Settings,
        policies: PolicySelector,
        observer: Observer,
        tenants: TenantHasher,
        cors: CorsPolicy,
        approvals: ApprovalStore,
        secret: bytes,
    ) -> None:
        mcp = settings.mcp
        self._policies = policies
        self._observer = observer
        self._tenants = tenants
        self._cors = cors
        self._binder = SessionBinder(secret)
        self._max_body_bytes = settings.server.max_body_bytes
        self._max_event_bytes = settings.streaming.max_event_bytes
        self._access_log = settings.server.access_log
        self._background: set[asyncio.Task[None]] = set()
        self.catalogs = ToolCatalogs(mcp.max_sessions, mcp.session_ttl_seconds, mcp.max_listed_tools)
        self.pin_store: PinStore | None = None
        pins = None
        if mcp.pin_action is not None and mcp.servers:
            self.pin_store = open_pin_store(settings.audit.url)
            pins = ToolPins(
                self.pin_store, approvals, mcp.pin_action, confirmations_hold=settings.confirm.mode == "hold"
            )
        self._servers = {
            name: _Server(
                name, McpUpstream(name, server),
                McpGuard(name, observer, self.catalogs, pins, approvals, refuse_lists=mcp.blocked_tools == "refuse",
                         max_tools=mcp.max_listed_tools),
            )
            for name, server in mcp.servers.items()
        }

    async def start(self) -> None:
        """Open the pin store (creating its table)."""
        if self.pin_store is not None:
            await self.pin_store.start()

    async def aclose(self) -> None:
        for server in self._servers.values():
            await server.upstream.close()
        if self.pin_store is not None:
            await self.pin_store.close()

    # --- the ASGI side --------------------------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send, path: str, request_id: str) -> None:
        """Answer one HTTP request under `/mcp/`."""
        started = perf_counter()
        method: str = scope["method"]
        headers: dict[str, str] = {}
        repeated: set[str] = set()
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1")
            if name in headers:
                repeated.add(name)
            headers[name] = raw_value.decode("latin-1")
        extra_headers: list[tuple[bytes, bytes]] = [(_REQUEST_ID_HEADER, request_id.encode())]
        server = self._servers.get(path[len(PREFIX):])
        origin = headers.get("origin")
        if origin is not None:
            if not self._cors.allows(origin):
                # Streamable HTTP servers must refuse unknown origins (DNS rebinding protection).
                body = orjson.dumps(error_response(None, INVALID_REQUEST, "origin not allowed"))
                await send_response(send, 403, [_JSON, *extra_headers], body)
                return
            extra_headers.extend(
                header for header in self._cors.response_headers(origin)
                if header[0] != b"access-control-expose-headers"
            )
            extra_headers.append((b"access-control-expose-headers", b"mcp-session-id, mcp-protocol-version, "
                                  b"x-capsem-request-id, x-capsem-decision-id"))
            if method == "OPTIONS":
                await send_response(send, 204, [*extra_headers, *_PREFLIGHT], b"")
                return
        if server is None:
            body = orjson.dumps(error_response(None, INVALID_REQUEST, "no MCP server is configured at this path"))
            await send_response(send, 404, [_JSON, *extra_headers], body)
            return
        record, span = self._observer.begin(request_id, time(), headers, method, server.route)
        record.provider = f"mcp:{server.name}"
        record.operation = method.lower()
        record.agent_id = headers.get("x-capsem-agent-id", "")[:_MAX_ID_CHARS]
        exchange = _Exchange(send, server, headers, record, extra_headers)
        try:
            if repeated & {"mcp-session-id", "authorization", "x-api-key", "mcp-protocol-version"}:
                status = await exchange.error(400, None, INVALID_REQUEST, "a header that names the caller or the "
                                              "session is given twice")
            else:
                status = await self._serve(scope, receive, exchange)
        except ClientDisconnected:
            status = 499
        except ProxyError as exc:
            status = 499 if exchange.started else await exchange.error(exc.status, None, INVALID_REQUEST, exc.message)
        except Exception:
            logger.exception("MCP request %s failed inside the proxy", request_id)
            status = 500 if exchange.started else await exchange.error(500, None, INTERNAL_ERROR,
                                                                       "internal error in the proxy")
        record.status = status
        record.latency_ms = (perf_counter() - started) * 1000.0
        self._observer.finish(record, span, exchange.flow.context if exchange.flow is not None else None)
        if self._access_log:
            access_logger.info(
                "%s %s %r %d %.1fms%s", request_id, method, server.route, status, record.latency_ms,
                f" {record.verdict} decision {record.decision_id}" if record.decision_id else "",
                extra={"request_id": request_id, "method": method, "status": status, "route": server.route,
                       "latency_ms": round(record.latency_ms, 3), "tenant_id": record.tenant_id,
                       "verdict": record.verdict, "decision_id": record.decision_id or None},
            )

    async def _serve(self, scope: Scope, receive: Receive, exchange: _Exchange) -> int:
        headers = exchange.headers
        server = exchange.server
        record = exchange.record
        credential = headers.get("authorization") or headers.get("x-api-key") or ""
        if credential[:7].lower() == "bearer ":
            credential = credential[7:].strip()  # the same key makes the same tenant as on model routes
        record.tenant_id = self._tenants.tenant_id(credential) if credential else ""
        # Without credentials, the caller is known by its address alone (weaker, but a session
        # minted for one address still cannot be used from another).
        client = scope.get("client")
        exchange.identity = record.tenant_id or f"addr:{client[0] if client else ''}"
        if self._observer.audit_refuses(record.tenant_id):
            return await exchange.error(503, None, INTERNAL_ERROR, "the audit trail cannot take this request now")
        client_session = headers.get("mcp-session-id")
        if client_session is not None:
            exchange.session = self._binder.unbind(server.name, exchange.identity, client_session)
            if exchange.session is None:
                # Unknown, expired, or minted for another caller: the same answer for all three.
                return await exchange.error(404, None, INVALID_REQUEST, "session not found")
        record.session_id = headers.get("x-capsem-session-id", "")[:_MAX_ID_CHARS] or (
            self._binder.audit_id(server.name, exchange.session) if exchange.session else ""
        )
        method = scope["method"]
        if method == "POST":
            return await self._post(scope, receive, exchange)
        if method == "GET":
            return await self._listen(receive, exchange)
        if method == "DELETE":
            return await self._delete(exchange)
        return await exchange.reply(405, b"", [(b"allow", b"GET, POST, DELETE")])

    def _flow(self, exchange: _Exchange, operation: str) -> Flow:
        record = exchange.record
        server = exchange.server
        provider = f"mcp:{server.name}"
        context = RequestContext(
            request_id=record.request_id, tenant_id=record.tenant_id, provider=provider, operation=operation,
            exchange=Exchange(provider=provider, operation=operation), agent_id=record.agent_id,
            session_id=record.session_id, record=record,
        )
        catalog_key = f"s\0{server.name}\0{exchange.session}" if exchange.session else \
            f"i\0{server.name}\0{exchange.identity}"
        pipeline = self._policies.select(record.tenant_id, provider, operation, "")
        flow = Flow(server.name, context, pipeline, catalog_key,
                    approval_id=exchange.headers.get("x-capsem-approval", "")[:64])
        exchange.flow = flow
        return flow

    def _upstream_headers(self, exchange: _Exchange) -> dict[str, str]:
        forwarded = exchange.server.forwarded
        upstream = {
            name: value for name, value in exchange.headers.items()
            if name in forwarded or name.startswith("mcp-param-")
        }
        if exchange.session is not None:
            upstream["mcp-session-id"] = exchange.session
        return upstream

    def _answer_headers(self, exchange: _Exchange, answer: UpstreamResponse) -> list[tuple[bytes, bytes]]:
        relayed = [(name, value) for name, value in answer.headers if name not in _ANSWER_HEADERS_DROPPED]
        if exchange.server.forwards_credentials:
            relayed.extend((name, value) for name, value in answer.headers if name == b"www-authenticate")
        upstream_session = next((value for name, value in answer.headers if name == b"mcp-session-id"), None)
        if upstream_session is not None:
            session = upstream_session.decode("latin-1")
            if exchange.session is None:
                exchange.session = session
                if not exchange.record.session_id:
                    exchange.record.session_id = self._binder.audit_id(exchange.server.name, session)
            bound = self._binder.bind(exchange.server.name, exchange.identity, session)
            relayed.append((b"mcp-session-id", bound.encode("latin-1")))
        return relayed

    # --- POST -----------------------------------------------------------------------------------

    async def _post(self, scope: Scope, receive: Receive, exchange: _Exchange) -> int:
        headers = exchange.headers
        declared = headers.get("content-length")
        try:
            length = int(declared) if declared and declared.isdigit() else None
            body = await read_body(receive, self._max_body_bytes, length)
        except BodyTooLarge as exc:
            return await exchange.error(413, None, INVALID_REQUEST, exc.message)
        try:
            # A large body is parsed in its turn (capsem_proxy.scanning.large_body_turn).
            async with large_body_turn(len(body)):
                messages, batch = parse_messages(body)
        except ValueError as exc:
            return await exchange.error(400, None, exc.args[1], str(exc.args[0]))
        version = headers.get("mcp-protocol-version", "")
        if batch and version not in BATCH_REVISIONS:
            return await exchange.error(400, None, INVALID_REQUEST,
                                        f"JSON-RPC batches are not part of MCP revision {version[:32]}")
        first = messages[0]
        operation = "batch" if batch else (first.method or "response") if isinstance(first, Message) else "invalid"
        exchange.record.operation = operation
        flow = self._flow(exchange, operation)
        guard = exchange.server.guard
        if not batch and isinstance(first, Message) and first.method:
            mismatch = _header_mismatch(headers, first)
            if mismatch:
                return await exchange.error(400, first.id, HEADER_MISMATCH, mismatch)
        answers: list[dict[str, Any]] = []
        forwarded: list[Message] = []
        pending: dict[str, Message] = {}
        flow.fetch_tools = lambda meta: self._fetch_tools(exchange, meta)
        for message in messages:
            if isinstance(message, InvalidMessage):
                answers.append(error_response(message.request_id, INVALID_REQUEST, str(message)))
                continue
            if message.is_request:
                try:
                    refusal = await guard.check_request(flow, message)
                except ProxyError as exc:  # the server failed while the proxy read its tool list
                    if not batch:
                        return await self._upstream_failed(exchange, {_key(message.id): message}, exc)
                    refusal = error_response(message.id, UPSTREAM_ERROR, exc.message)
                if refusal is not None:
                    answers.append(refusal)
                    continue
                pending[_key(message.id)] = message
            forwarded.append(message)
        if not forwarded:
            if not batch and isinstance(first, InvalidMessage):
                return await exchange.reply(400, orjson.dumps(answers[0]))
            return await exchange.reply(200, orjson.dumps(answers if batch else answers[0]))
        if len(forwarded) == len(messages):
            upstream_body = body
        elif len(forwarded) == 1:
            # What remains of a batch goes on as a single message (servers need not take batches).
            upstream_body = orjson.dumps(forwarded[0].body)
        else:
            upstream_body = orjson.dumps([message.body for message in forwarded])
        upstream_headers = self._upstream_headers(exchange)
        upstream_headers["content-type"] = "application/json"
        upstream_headers.setdefault("accept", _ACCEPT_BOTH)
        flow.fetch_tools = None  # requests are checked: no more tool fetches for this flow
        # A 2026-07-28 `subscriptions/listen` answer is a long-lived stream, quiet for as long as
        # nothing changes: it gets the idle limit of a server-initiated stream.
        listen = any(message.method == "subscriptions/listen" for message in forwarded)
        answer = await self._send(exchange, "POST", upstream_headers, upstream_body, pending, listen=listen)
        if answer is None:
            return exchange.record.status
        return await self._relay_post(receive, exchange, answer, pending, answers, batch)

    async def _fetch_tools(self, exchange: _Exchange, meta: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The server's tool list, asked for by the proxy itself within the caller's session (a
        call to a tool whose definition this process has not seen); None when the server gives
        none; ProxyError when it cannot be reached or fails."""
        headers = {
            name: value for name, value in self._upstream_headers(exchange).items()
            if name != "mcp-name" and not name.startswith("mcp-param-")
        }
        headers["content-type"] = "application/json"
        headers["accept"] = _ACCEPT_BOTH
        if "mcp-method" in headers:
            headers["mcp-method"] = "tools/list"
        # The caller's protocol metadata (2026-07-28 requests carry their version in it), not its
        # progress token, which names the caller's own request.
        request_meta = {key: value for key, value in meta.items() if key != "progressToken"}
        tools: list[dict[str, Any]] = []
        cursor: Any = None
        for _ in range(_MAX_TOOL_PAGES):
            params: dict[str, Any] = {"_meta": request_meta} if request_meta else {}
            if cursor is not None:
                params["cursor"] = cursor
            request_id = _random_id()
            body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": params})
            answer = await exchange.server.upstream.send("POST", headers, body)
            result = await self._result_of(answer, request_id)
            page = result.get("tools") if result is not None else None
            if not isinstance(page, list):
                return None
            tools.extend(tool for tool in page if isinstance(tool, dict))
            cursor = result.get("nextCursor") if result is not None else None
            if not cursor:
                return tools
        return tools

    async def _result_of(self, answer: UpstreamResponse, request_id: str) -> dict[str, Any] | None:
        """The result answering `request_id` in a JSON or SSE answer (bounded like any answer)."""
        content_type = answer.content_type.split(";", 1)[0].strip().lower()
        if answer.status != 200 or content_type not in ("application/json", "text/event-stream"):
            answer.close()
            return None
        if content_type == "application/json":
            try:
                document = orjson.loads(await answer.read())
            except orjson.JSONDecodeError:
                return None
            for member in document if isinstance(document, list) else [document]:
                if isinstance(member, dict) and member.get("id") == request_id:
                    result = member.get("result")
                    return result if isinstance(result, dict) else None
            return None
        splitter = SSESplitter(self._max_event_bytes)
        received = 0
        try:
            async for chunk in answer.chunks():
                received += len(chunk)
                if received > answer.max_body_bytes:
                    return None
                for raw in splitter.feed_events(chunk):
                    for message in read_event(raw).messages:
                        if message.is_response and message.id == request_id:
                            return message.result
        finally:
            answer.close()
        return None

    async def _send(
        self, exchange: _Exchange, method: str, headers: dict[str, str], body: bytes | None,
        pending: Mapping[str, Message], *, listen: bool = False,
    ) -> UpstreamResponse | None:
        """The server's answer, or None when it failed (the client was answered with an error)."""
        started = perf_counter()
        try:
            answer = await exchange.server.upstream.send(method, headers, body, listen=listen)
        except ProxyError as exc:
            exchange.record.status = await self._upstream_failed(exchange, pending, exc)
            return None
        exchange.record.upstream_ms = (perf_counter() - started) * 1000.0
        return answer

    async def _upstream_failed(self, exchange: _Exchange, pending: Mapping[str, Message], exc: ProxyError) -> int:
        """Answer every pending request with a JSON-RPC error naming the failure (504 or 502)."""
        status = 504 if isinstance(exc, UpstreamTimeout) else 502
        # The shared answer reader speaks of "the provider": here it is an MCP server.
        why = exc.message.replace("the provider", f"the MCP server '{exchange.server.name}'")
        errors = [error_response(message.id, UPSTREAM_ERROR, why) for message in pending.values()]
        if not errors:
            errors = [error_response(None, UPSTREAM_ERROR, why)]
        return await exchange.reply(status, orjson.dumps(errors if len(errors) > 1 else errors[0]))

    async def _relay_post(
        self, receive: Receive, exchange: _Exchange, answer: UpstreamResponse, pending: dict[str, Message],
        answers: list[dict[str, Any]], batch: bool,
    ) -> int:
        status = answer.status
        content_type = answer.content_type.split(";", 1)[0].strip().lower()
        server = exchange.server
        if status == 202 or (200 <= status < 300 and not pending):
            answer.close()
            if answers:  # a batch whose requests were all refused, with notifications the server took
                return await exchange.reply(200, orjson.dumps(answers))
            return await exchange.reply(status, b"", self._answer_headers(exchange, answer))
        if 200 <= status < 300 and content_type == "text/event-stream":
            return await self._relay_stream(receive, exchange, answer, pending, answers)
        if 200 <= status < 300 and content_type == "application/json":
            return await self._relay_json(exchange, answer, pending, answers, batch)
        if status == 404 and exchange.session is not None:
            self.catalogs.forget(exchange.flow.catalog_key if exchange.flow else "")
        if status in (401, 403) and not server.forwards_credentials:
            answer.close()
            failure = ProxyError(f"the MCP server '{server.name}' refused the proxy's credentials (HTTP {status})")
            return await self._upstream_failed(exchange, pending, failure)
        if status >= 500 or 200 <= status < 300:
            answer.close()
            why = f"answered HTTP {status}" if status >= 500 else f"answered with content type '{content_type[:64]}'"
            return await self._upstream_failed(exchange, pending, ProxyError(f"the MCP server '{server.name}' {why}"))
        # Other refusals (400, 404 for an ended session, 405…) are the server's to explain: relayed.
        try:
            body = await answer.read()
        except ProxyError as exc:
            return await self._upstream_failed(exchange, pending, exc)
        return await exchange.reply(status, body, self._answer_headers(exchange, answer))

    async def _relay_json(
        self, exchange: _Exchange, answer: UpstreamResponse, pending: dict[str, Message],
        answers: list[dict[str, Any]], batch: bool,
    ) -> int:
        try:
            body = await answer.read()
        except ProxyError as exc:
            return await self._upstream_failed(exchange, pending, exc)
        headers = self._answer_headers(exchange, answer)
        try:
            async with large_body_turn(len(body)):
                document = orjson.loads(body)
            members = document if isinstance(document, list) else [document]
            responses = [Message(member) for member in members if isinstance(member, dict)]
            if len(responses) != len(members) or not responses or any(not r.is_response for r in responses):
                raise ValueError
        except ValueError:
            failure = ProxyError(f"the MCP server '{exchange.server.name}' sent an answer that is not JSON-RPC")
            return await self._upstream_failed(exchange, pending, failure)
        changed = False
        assert exchange.flow is not None
        for position, response in enumerate(responses):
            request = pending.pop(_key(response.id), None)
            replacement = await exchange.server.guard.check_answer(exchange.flow, response, request)
            if replacement is not None:
                members[position] = replacement
                changed = True
        if answers:
            members = [*answers, *members]
            changed = True
        if changed:
            body = orjson.dumps(members if batch or len(members) > 1 else members[0])
        return await exchange.reply(200, body, headers)

    # --- streams (POST answers and GET) ---------------------------------------------------------

    async def _relay_stream(
        self, receive: Receive, exchange: _Exchange, answer: UpstreamResponse, pending: dict[str, Message],
        answers: list[dict[str, Any]],
    ) -> int:
        """Relay an SSE answer event by event, in order, each checked before it is released."""
        headers = self._answer_headers(exchange, answer)
        if not any(name == b"x-accel-buffering" for name, _ in headers):
            headers.append((b"x-accel-buffering", b"no"))
        await exchange.start(200, headers)
        send = exchange.send
        for refusal in answers:
            await send({"type": "http.response.body", "body": data_event(refusal), "more_body": True})
        splitter = SSESplitter(self._max_event_bytes)
        resumable = False
        task = asyncio.current_task()
        left = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    left.set()
                    if task is not None:
                        task.cancel()
                    return

        watcher = asyncio.ensure_future(watch())
        self._observer.stream_started()
        failure: ProxyError | None = None
        try:
            async for chunk in answer.chunks():
                for raw in splitter.feed_events(chunk):
                    resumable = await self._relay_event(exchange, raw, pending) or resumable
            for raw in splitter.finish():
                resumable = await self._relay_event(exchange, raw, pending) or resumable
        except ProxyError as exc:
            failure = exc
        except asyncio.CancelledError:
            if not left.is_set():
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            answer.close()
            return 499
        finally:
            watcher.cancel()
            self._observer.stream_ended()
        answer.close()
        if pending and (failure is not None or not resumable):
            name = exchange.server.name
            why = failure.message.replace("the provider", f"the MCP server '{name}'") if failure is not None \
                else f"the MCP server '{name}' ended the stream without answering"
            for message in pending.values():
                event = data_event(error_response(message.id, UPSTREAM_ERROR, why))
                await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return 200

    async def _relay_event(self, exchange: _Exchange, raw: bytes, pending: dict[str, Message]) -> bool:
        """Check one event and send what may go on; True when the event carries an id."""
        assert exchange.flow is not None
        event: EventMessages = read_event(raw)
        guard = exchange.server.guard
        if event.unreadable:
            logger.warning("MCP server %s sent an event the proxy cannot read (%s): dropped",
                           exchange.server.name, event.unreadable)
            return event.event_id
        outgoing = raw
        if event.messages:
            values: list[Any] = []
            changed = False
            for message in event.messages:
                if message.is_response:
                    request = pending.pop(_key(message.id), None)
                    replacement = await guard.check_answer(exchange.flow, message, request)
                else:
                    replacement = None
                    refusal = await guard.check_server_request(exchange.flow, message)
                    if refusal is not None:
                        # The client never sees the request; the server gets its error instead.
                        changed = True
                        self._answer_server(exchange, refusal)
                        continue
                if replacement is not None:
                    changed = True
                    values.append(replacement)
                else:
                    values.append(message.body)
            if changed:
                if not values:
                    return event.event_id
                outgoing = event_with_data(raw, values if event.batch else values[0])
        await exchange.send({"type": "http.response.body", "body": outgoing, "more_body": True})
        return event.event_id

    def _answer_server(self, exchange: _Exchange, response: dict[str, Any]) -> None:
        """Send the server a response on the client's behalf (for a request the client never saw)."""
        headers = self._upstream_headers(exchange)
        headers["content-type"] = "application/json"
        headers["accept"] = _ACCEPT_BOTH
        headers.pop("mcp-method", None)
        headers.pop("mcp-name", None)

        async def post() -> None:
            try:
                answer = await exchange.server.upstream.send("POST", headers, orjson.dumps(response))
                answer.close()
            except ProxyError as exc:
                logger.warning("could not answer a refused request of MCP server %s: %s", exchange.server.name,
                               exc.message)

        task = asyncio.ensure_future(post())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _listen(self, receive: Receive, exchange: _Exchange) -> int:
        """GET: the server-initiated stream of a session, relayed with the same checks."""
        self._flow(exchange, "listen")
        headers = self._upstream_headers(exchange)
        headers["accept"] = "text/event-stream"
        answer = await self._send(exchange, "GET", headers, None, {}, listen=True)
        if answer is None:
            return exchange.record.status
        content_type = answer.content_type.split(";", 1)[0].strip().lower()
        if answer.status == 200 and content_type == "text/event-stream":
            return await self._relay_stream(receive, exchange, answer, {}, [])
        try:
            body = await answer.read()
        except ProxyError as exc:
            return await self._upstream_failed(exchange, {}, exc)
        return await exchange.reply(answer.status, body, self._answer_headers(exchange, answer))

    async def _delete(self, exchange: _Exchange) -> int:
        """DELETE: end a session (the proxy forgets its tools when the server agrees)."""
        flow = self._flow(exchange, "delete")
        answer = await self._send(exchange, "DELETE", self._upstream_headers(exchange), None, {})
        if answer is None:
            return exchange.record.status
        try:
            body = await answer.read()
        except ProxyError as exc:
            return await self._upstream_failed(exchange, {}, exc)
        if 200 <= answer.status < 300:
            self.catalogs.forget(flow.catalog_key)
        return await exchange.reply(answer.status, body, self._answer_headers(exchange, answer))


def _header_mismatch(headers: Mapping[str, str], message: Message) -> str:
    """Why the MCP 2026-07-28 request headers disagree with the body ("" when they agree or are absent):
    the proxy checks the body, so the server must not act on different headers."""
    named = headers.get("mcp-method")
    if named is not None and named != message.method:
        return "Header mismatch: Mcp-Method does not match the body's method"
    name_header = headers.get("mcp-name")
    if name_header is not None:
        params = message.params
        body_name = params.get("uri") if message.method.startswith("resources/") else params.get("name")
        if _decoded_header(name_header) != body_name:
            return "Header mismatch: Mcp-Name does not match the body"
    return ""


def _random_id() -> str:
    return "capsem-proxy-" + os.urandom(8).hex()
