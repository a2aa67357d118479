"""`capsem-proxy mcp-stdio --name N -- CMD ARGS`: a local MCP server over stdio, guarded.

A desktop client or IDE starts this command instead of the server's own: it starts the server as
its child and passes newline-delimited JSON-RPC between the client (this process's stdin and
stdout) and the server (the child's), each message checked by the same guard as over HTTP, in
order. A refused request is answered on the server's behalf and never written to it; a refused
result never reaches the client. The child's stderr is the process's own. Nothing but MCP messages
is ever written to stdout; the proxy's own logs go to stderr.

Decisions and requests go to the configured audit store (the proxy's SQLite file or PostgreSQL),
so the dashboard shows them; held confirmations reach its approvals view when `confirm.store_url`
is shared (Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from time import perf_counter, time
from typing import Any

import orjson

from capsem_proxy.audit import open_audit_sink
from capsem_proxy.audit.keys import ChainKey, default_head_path
from capsem_proxy.config import Settings
from capsem_proxy.confirm.store import open_approval_store
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.mcp.guard import Flow, McpGuard
from capsem_proxy.mcp.jsonrpc import (
    INVALID_REQUEST,
    PARSE_ERROR,
    UPSTREAM_ERROR,
    InvalidMessage,
    Message,
    check_message,
    error_response,
)
from capsem_proxy.mcp.pin_store import open_pin_store
from capsem_proxy.mcp.pinning import ToolPins
from capsem_proxy.mcp.sessions import ToolCatalogs
from capsem_proxy.observability import Observer
from capsem_proxy.policy_sets import PolicySelector
from capsem_proxy.records import RequestRecord, new_request_id
from capsem_proxy.tenancy import load_or_create_secret

__all__ = ["run_stdio_server"]

logger = logging.getLogger("capsem_proxy.mcp")

_CHUNK = 64 * 1024
# How long the proxy waits for the tool list it asks the server for itself.
_TOOL_LIST_TIMEOUT_S = 30.0
# Requests the server has not answered yet, at most (past it, new ones are answered with an error).
_MAX_PENDING = 10_000
# How long the server has to exit once the client has gone.
_EXIT_GRACE_S = 5.0


async def _lines(reader: asyncio.StreamReader, max_bytes: int) -> AsyncIterator[bytes | None]:
    """Each newline-terminated line of `reader` (without its line end); None for a line longer
    than `max_bytes`, which is skipped whole without ever being held."""
    buffer = bytearray()
    skipping = False
    while True:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            if buffer.strip() and not skipping:
                yield bytes(buffer)
            return
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end == -1:
                if not skipping:
                    buffer += chunk[start:]
                    if len(buffer) > max_bytes:
                        buffer.clear()
                        skipping = True
                break
            if skipping:
                skipping = False
                yield None
            else:
                buffer += chunk[start:end]
                line = bytes(buffer).rstrip(b"\r")
                buffer.clear()
                if len(line) > max_bytes:
                    yield None
                elif line.strip():
                    yield line
            start = end + 1


@dataclass(slots=True)
class _Pending:
    """A client request on its way: the message, its flow and its audit record."""

    message: Message
    flow: Flow
    started: float


class StdioGuard:
    """Relays one client and one server process, message by message."""

    def __init__(self, settings: Settings, name: str, process: asyncio.subprocess.Process,
                 client_out: asyncio.StreamWriter | Any) -> None:
        self.name = name
        self.provider = f"mcp:{name}"
        self._process = process
        self._client_out = client_out
        self._max_message_bytes = settings.server.max_body_bytes
        self._max_answer_bytes = settings.streaming.max_event_bytes
        secret = load_or_create_secret(settings.server.data_dir, settings.server.tenant_secret)
        self.audit = open_audit_sink(settings.audit, ChainKey.derive(secret), head_file=default_head_path(settings))
        self.observer = Observer(settings, self.audit)
        self.policies = PolicySelector(settings)
        confirm = settings.confirm
        self.approvals = open_approval_store(confirm.store_url, confirm.approval_ttl_seconds, confirm.max_pending)
        self.catalogs = ToolCatalogs(4, settings.mcp.session_ttl_seconds, settings.mcp.max_listed_tools)
        self.pin_store = None
        pins = None
        if settings.mcp.pin_action is not None:
            self.pin_store = open_pin_store(settings.audit.url)
            pins = ToolPins(self.pin_store, self.approvals, settings.mcp.pin_action,
                            confirmations_hold=confirm.mode == "hold")
        self.guard = McpGuard(name, self.observer, self.catalogs, pins, self.approvals,
                              refuse_lists=settings.mcp.blocked_tools == "refuse",
                              max_tools=settings.mcp.max_listed_tools)
        self.session_id = "mcp-stdio-" + os.urandom(8).hex()
        self._pending: dict[str, _Pending] = {}
        self._own_requests: dict[Any, asyncio.Future[dict[str, Any] | None]] = {}
        self._server_lock = asyncio.Lock()

    async def start(self) -> None:
        await self.audit.start()
        if self.pin_store is not None:
            await self.pin_store.start()

    async def close(self) -> None:
        if self.pin_store is not None:
            await self.pin_store.close()
        await self.approvals.close()
        await self.audit.close()
        await self.observer.close()

    # --- writing --------------------------------------------------------------------------------

    async def _to_client(self, value: Any) -> None:
        self._client_out.write(orjson.dumps(value) + b"\n")
        await self._client_out.drain()

    async def _to_server(self, data: bytes) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        async with self._server_lock:
            stdin.write(data + b"\n")
            await stdin.drain()

    # --- flows and records ----------------------------------------------------------------------

    def _flow(self, operation: str) -> Flow:
        record = RequestRecord(new_request_id(), time(), provider=self.provider, operation=operation,
                               route=f"stdio:{self.name}", session_id=self.session_id)
        context = RequestContext(
            request_id=record.request_id, tenant_id="", provider=self.provider, operation=operation,
            exchange=Exchange(provider=self.provider, operation=operation), session_id=self.session_id,
            record=record,
        )
        pipeline = self.policies.select("", self.provider, operation, "")
        return Flow(self.name, context, pipeline, f"stdio\0{self.name}", fetch_tools=self._fetch_tools)

    def _finish(self, flow: Flow, started: float, status: int) -> None:
        record = flow.context.record
        assert record is not None
        record.status = status
        record.latency_ms = (perf_counter() - started) * 1000.0
        self.observer.finish(record, None, flow.context)

    # --- client to server -----------------------------------------------------------------------

    async def client_to_server(self, client_in: asyncio.StreamReader) -> None:
        """Check and pass on each message the client writes, in order, until it closes its side."""
        try:
            async for line in _lines(client_in, self._max_message_bytes):
                if line is None:
                    await self._to_client(error_response(
                        None, INVALID_REQUEST, f"message larger than the limit of {self._max_message_bytes} bytes"))
                    continue
                await self._from_client(line)
        finally:
            stdin = self._process.stdin
            if stdin is not None and not stdin.is_closing():
                stdin.close()

    async def _from_client(self, line: bytes) -> None:
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            await self._to_client(error_response(None, PARSE_ERROR, f"the message is not valid JSON ({exc.msg})"))
            return
        if isinstance(document, list):
            # Revisions before 2025-06-18 allow batches: each member goes on as its own message.
            if not document:
                await self._to_client(error_response(None, INVALID_REQUEST, "an empty batch is not a JSON-RPC request"))
            for member in document:
                await self._one_from_client(member)
            return
        await self._one_from_client(document)

    async def _one_from_client(self, value: Any) -> None:
        try:
            message = check_message(value)
        except InvalidMessage as exc:
            await self._to_client(error_response(exc.request_id, INVALID_REQUEST, str(exc)))
            return
        if not message.is_request:
            await self._to_server(orjson.dumps(message.body))
            return
        if len(self._pending) >= _MAX_PENDING:
            await self._to_client(error_response(
                message.id, UPSTREAM_ERROR, f"more than {_MAX_PENDING} requests wait for the MCP server '{self.name}'"))
            return
        started = perf_counter()
        flow = self._flow(message.method)
        try:
            refusal = await self.guard.check_request(flow, message)
        except (TimeoutError, ConnectionError) as exc:
            refusal = error_response(message.id, UPSTREAM_ERROR,
                                     f"the MCP server '{self.name}' did not give its tool list ({type(exc).__name__})")
        if refusal is not None:
            await self._to_client(refusal)
            self._finish(flow, started, 403 if refusal["error"]["code"] == -32001 else 400)
            return
        self._pending[f"{type(message.id).__name__}:{message.id}"] = _Pending(message, flow, started)
        await self._to_server(orjson.dumps(message.body))

    async def _fetch_tools(self, meta: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Ask the server for its tool list (the proxy's own request, never shown to the client)."""
        tools: list[dict[str, Any]] = []
        cursor: Any = None
        for _ in range(20):
            request_id = "capsem-proxy-" + os.urandom(8).hex()
            params: dict[str, Any] = {"_meta": {k: v for k, v in meta.items() if k != "progressToken"}} if meta else {}
            if cursor is not None:
                params["cursor"] = cursor
            waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
            self._own_requests[request_id] = waiter
            try:
                await self._to_server(orjson.dumps(
                    {"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": params}))
                async with asyncio.timeout(_TOOL_LIST_TIMEOUT_S):
                    result = await waiter
            finally:
                self._own_requests.pop(request_id, None)
            page = result.get("tools") if result is not None else None
            if not isinstance(page, list):
                return None
            tools.extend(tool for tool in page if isinstance(tool, dict))
            cursor = result.get("nextCursor") if result is not None else None
            if not cursor:
                break
        return tools

    # --- server to client -----------------------------------------------------------------------

    async def server_to_client(self) -> None:
        """Check and pass on each message the server writes, in order, until it exits."""
        stdout = self._process.stdout
        assert stdout is not None
        async for line in _lines(stdout, self._max_answer_bytes):
            if line is None:
                logger.warning("MCP server %s wrote a message over %d bytes: dropped", self.name,
                               self._max_answer_bytes)
                continue
            try:
                document = orjson.loads(line)
                members = document if isinstance(document, list) else [document]
                messages = [check_message(member) for member in members]
            except (orjson.JSONDecodeError, InvalidMessage):
                logger.warning("MCP server %s wrote a line that is no JSON-RPC message: dropped", self.name)
                continue
            for message in messages:
                await self._from_server(message)
        # The server is gone: every request still waiting gets an error, not silence.
        for pending in list(self._pending.values()):
            await self._to_client(error_response(pending.message.id, UPSTREAM_ERROR,
                                                 f"the MCP server '{self.name}' exited without answering"))
            self._finish(pending.flow, pending.started, 502)
        self._pending.clear()
        for waiter in self._own_requests.values():
            if not waiter.done():
                waiter.set_result(None)

    async def _from_server(self, message: Message) -> None:
        if message.is_response:
            waiter = self._own_requests.get(message.id) if isinstance(message.id, str) else None
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(message.result)
                return
            pending = self._pending.pop(f"{type(message.id).__name__}:{message.id}", None)
            flow = pending.flow if pending is not None else self._flow("response")
            replacement = await self.guard.check_answer(flow, message, pending.message if pending else None)
            await self._to_client(replacement if replacement is not None else message.body)
            if pending is not None:
                self._finish(pending.flow, pending.started, 200)
            return
        flow = self._flow(message.method)
        refusal = await self.guard.check_server_request(flow, message)
        if refusal is not None:
            await self._to_server(orjson.dumps(refusal))
            return
        await self._to_client(message.body)


async def _stdio_streams() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_CHUNK * 4)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


async def run_stdio_server(settings: Settings, name: str, command: list[str]) -> int:
    """Run `command` as a guarded MCP server on this process's stdin and stdout; its exit status."""
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
        limit=_CHUNK * 4,
    )
    client_in, client_out = await _stdio_streams()
    guard = StdioGuard(settings, name, process, client_out)
    await guard.start()
    try:
        from_server = asyncio.ensure_future(guard.server_to_client())
        from_client = asyncio.ensure_future(guard.client_to_server(client_in))
        await asyncio.wait({from_server, from_client}, return_when=asyncio.FIRST_COMPLETED)
        if from_client.done():
            # The client closed its side: the server's stdin is closed; let it finish and exit.
            try:
                async with asyncio.timeout(_EXIT_GRACE_S):
                    await from_server
            except TimeoutError:
                process.terminate()
        from_client.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await from_client
        with contextlib.suppress(asyncio.CancelledError):
            await from_server
        try:
            async with asyncio.timeout(_EXIT_GRACE_S):
                return await process.wait()
        except TimeoutError:
            process.kill()
            return await process.wait()
    finally:
        await guard.close()
