"""The policies on MCP messages, whatever carries them (Streamable HTTP or stdio).

- A `tools/list` answer: `on_tool_call` for each tool (args empty) and its pin; a blocked tool is
  removed from the list, or the whole list refused (`mcp.blocked_tools`).
- A `tools/call` request: the tool's pin and `on_tool_call` with its arguments, checked against
  the definition the server listed in this session (tool_rules validates them against its
  `inputSchema`), before the server sees it.
- A `tools/call`, `resources/read` or `prompts/get` result, and a request the server sends the
  client carrying text for a model or a person (`sampling/createMessage`, `elicitation/create`):
  `on_tool_response`; a redaction rewrites the result, a block replaces it with an error.
- The other texts a server writes for a model or a person are read the same way: the `initialize`
  result (`instructions`, `serverInfo`), `resources/list`, `resources/templates/list` and
  `prompts/list` (names, titles, descriptions), and the strings of every result's `_meta`.

A refusal is a JSON-RPC error `-32001` "Tool blocked by security policy: <why>" whose
`data.decision_id` names the decision in the audit trail (and, for a confirmation, the id an
approver approves).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from capsem_proxy.confirm.store import ApprovalStore, HeldRequest, request_fingerprint
from capsem_proxy.decisions import CONFIRMATION_VERDICTS, Decision, Outcome, Verdict, redaction_failure, strictest
from capsem_proxy.exchange import ToolDefinition
from capsem_proxy.hooks import RequestContext
from capsem_proxy.mcp.content import result_of
from capsem_proxy.mcp.jsonrpc import INVALID_PARAMS, POLICY_BLOCKED, Message, error_response
from capsem_proxy.mcp.pinning import PIN_POLICY, ToolPins
from capsem_proxy.mcp.sessions import ToolCatalog, ToolCatalogs
from capsem_proxy.observability import Observer
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.redaction import RedactionFailed, redact_json_document

__all__ = ["BLOCK_PREFIX", "Flow", "McpGuard", "block_response"]

BLOCK_PREFIX = "Tool blocked by security policy: "
# `_meta` key under which a client may name an approved decision when retrying a held call (as
# the `x-capsem-approval` header does over HTTP).
APPROVAL_META_KEY = "io.capsem/approval"
# Results and server requests whose text reaches a model or a person.
_SCANNED_RESULTS = frozenset({
    "tools/call", "resources/read", "prompts/get",
    # Texts a server writes about itself, which clients put before the model (instructions) or list to it.
    "initialize", "resources/list", "resources/templates/list", "prompts/list",
})
_SCANNED_SERVER_REQUESTS = frozenset({"sampling/createMessage", "elicitation/create"})

ToolFetcher = Callable[[dict[str, Any]], Awaitable[list[dict[str, Any]] | None]]


@dataclass(slots=True)
class Flow:
    """One exchange with a server through the proxy (an HTTP request, or a stdio message), as
    the guard sees it: who asks, which policies apply, and which session's tools are known."""

    server: str
    context: RequestContext
    pipeline: Pipeline
    catalog_key: str
    # Asks the server for its tool list (with the `_meta` of the request that needs it).
    fetch_tools: ToolFetcher | None = None
    approval_id: str = ""
    # Ids of the decisions that refused or changed something, for the x-capsem-decision-id header.
    decision_ids: list[str] = field(default_factory=list)


def block_response(request_id: Any, decision: Decision) -> dict[str, Any]:
    """The JSON-RPC error answering a request or result refused by `decision`."""
    details = decision.details or decision.reason
    if decision.verdict in CONFIRMATION_VERDICTS:
        details = f"{decision.verdict.value.lower()} required ({details}); decision id {decision.decision_id}"
    data = {
        "decision_id": decision.decision_id, "verdict": decision.verdict.value, "policy": decision.policy,
        "reason": decision.reason,
    }
    return error_response(request_id, POLICY_BLOCKED, BLOCK_PREFIX + details, data)


def _with(outcome: Outcome, extra: list[Decision]) -> Outcome:
    if not extra:
        return outcome
    decisions = [*outcome.decisions, *extra]
    return Outcome(decisions, strictest(decisions), outcome.confirmations_hold)


class McpGuard:
    """Applies the policies and tool pins to the messages of one MCP server."""

    def __init__(
        self,
        server: str,
        observer: Observer,
        catalogs: ToolCatalogs,
        pins: ToolPins | None,
        approvals: ApprovalStore,
        *,
        refuse_lists: bool = False,
        max_tools: int = 1024,
    ) -> None:
        self.server = server
        self._observer = observer
        self._catalogs = catalogs
        self._pins = pins
        self._approvals = approvals
        self._refuse_lists = refuse_lists
        self._max_tools = max_tools

    # --- client to server -----------------------------------------------------------------------

    async def check_request(self, flow: Flow, message: Message) -> dict[str, Any] | None:
        """None when the request may go on to the server; otherwise the error answering it."""
        method = message.method
        if method == "tools/call":
            return await self._check_call(flow, message)
        return None

    async def _check_call(self, flow: Flow, message: Message) -> dict[str, Any] | None:
        params = message.params
        name = params.get("name")
        if not isinstance(name, str) or not name:
            return error_response(message.id, INVALID_PARAMS, "tools/call needs the tool's name in params.name")
        args = params.get("arguments")
        if args is None:
            args = {}
        elif not isinstance(args, dict):
            return error_response(message.id, INVALID_PARAMS, "tools/call arguments must be an object")
        catalog = await self._catalog_for(flow, name, params)
        definition = catalog.definitions.get(name) if catalog is not None else None
        context = flow.context
        if catalog is not None:
            context.exchange.tools = list(catalog.definitions.values())
        extra: list[Decision] = []
        if self._pins is not None:
            if catalog is None or name not in catalog.digests:
                # A tool the server does not list has no definition to hold to its pin.
                extra.append(Decision(
                    Verdict.BLOCK, PIN_POLICY, "on_tool_call", reason="unknown_tool", subject=name,
                    details=f"tool '{name[:64]}' is not in the tool list MCP server '{self.server}' gives, so "
                    "its definition cannot be checked against its pin",
                ))
            else:
                pinned = await self._pins.check(self.server, name, catalog.digests[name], context.tenant_id)
                if pinned is not None:
                    extra.append(pinned)
        outcome = await flow.pipeline.check_tool_invocation(
            context, definition or ToolDefinition(name=name), args, call_id=str(message.id)
        )
        outcome = _with(outcome, extra)
        self._observer.decisions(context, outcome.decisions)
        governing = outcome.governing
        if governing is None or not outcome.blocked:
            if governing is not None:
                flow.decision_ids.append(governing.decision_id)
            return None
        if outcome.needs_confirmation and governing.policy != PIN_POLICY:
            approved = await self._approved_retry(flow, name, args, params)
            if approved:
                return None
            await self._hold_call(flow, governing, name, args)
        flow.decision_ids.append(governing.decision_id)
        return block_response(message.id, governing)

    async def _catalog_for(self, flow: Flow, name: str, params: dict[str, Any]) -> ToolCatalog | None:
        """The session's tools, asked of the server when this process has not seen the list (or
        the server said it changed): a call cannot skip the schema check or the pin by never listing."""
        catalog = self._catalogs.get(flow.catalog_key)
        if catalog is not None and not catalog.stale and (name in catalog.definitions or catalog.complete):
            return catalog
        if flow.fetch_tools is None:
            return catalog
        meta = params.get("_meta")
        tools = await flow.fetch_tools(meta if isinstance(meta, dict) else {})
        if tools is None:
            return catalog
        return self._catalogs.offer(flow.catalog_key, tools, first_page=True, last_page=True)

    def _call_fingerprint(self, name: str, args: dict[str, Any]) -> str:
        try:
            canonical = orjson.dumps(args, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            canonical = repr(args).encode("utf-8", "surrogatepass")
        return request_fingerprint(f"mcp:{self.server}", "tools/call", name, canonical)

    async def _hold_call(self, flow: Flow, governing: Decision, name: str, args: dict[str, Any]) -> None:
        await self._approvals.hold(
            HeldRequest(
                decision_id=governing.decision_id, tenant_id=flow.context.tenant_id,
                fingerprint=self._call_fingerprint(name, args), policy=governing.policy, reason=governing.reason,
                details=governing.details, held_at=time.time(),
            )
        )

    async def _approved_retry(self, flow: Flow, name: str, args: dict[str, Any], params: dict[str, Any]) -> bool:
        """True (once) when the call retries an approved held call, named by the x-capsem-approval
        header or `_meta["io.capsem/approval"]`, by the same caller with the same arguments."""
        meta = params.get("_meta")
        approval_id = flow.approval_id or (meta.get(APPROVAL_META_KEY) if isinstance(meta, dict) else "")
        if not isinstance(approval_id, str) or not approval_id:
            return False
        fingerprint = self._call_fingerprint(name, args)
        if not await self._approvals.consume(approval_id[:64], flow.context.tenant_id, fingerprint):
            return False
        used = Decision(
            Verdict.LOG, "approval", "on_tool_call", reason="approved",
            details=f"confirmation {approval_id[:64]} approved by an admin", subject=name,
        )
        self._observer.decisions(flow.context, [used])
        flow.decision_ids.append(approval_id[:64])
        return True

    # --- server to client -----------------------------------------------------------------------

    async def check_answer(self, flow: Flow, message: Message, request: Message | None) -> dict[str, Any] | None:
        """None when the server's response goes to the client as it is; otherwise its replacement
        (a rewritten result, or an error). `request` is the request it answers, when known."""
        result = message.result
        if result is None:
            return None
        method = request.method if request is not None else _method_by_shape(result)
        if method == "tools/list":
            first_page = request is not None and "cursor" not in request.params
            return await self._check_tool_list(flow, message, result, first_page)
        if method in _SCANNED_RESULTS and flow.pipeline.reads_tool_results():
            subject = _subject(method, request.params if request is not None else {})
            return await self._check_result(flow, message.id, subject, result, message.body, "result")
        return None

    async def check_server_request(self, flow: Flow, message: Message) -> dict[str, Any] | None:
        """A request or notification the server sends the client. None when it goes on; otherwise
        the error to answer the server with (the client never sees the request)."""
        method = message.method
        if method == "notifications/tools/list_changed":
            self._catalogs.stale(flow.catalog_key)
            return None
        if method in _SCANNED_SERVER_REQUESTS and message.is_request and flow.pipeline.reads_tool_results():
            return await self._check_result(flow, message.id, method, message.params, message.body, "params")
        return None

    async def _check_tool_list(
        self, flow: Flow, message: Message, result: dict[str, Any], first_page: bool
    ) -> dict[str, Any] | None:
        tools = result.get("tools")
        if not isinstance(tools, list):
            return None
        listed = [tool for tool in tools if isinstance(tool, dict) and isinstance(tool.get("name"), str)]
        known = self._catalogs.get(flow.catalog_key)
        earlier = 0 if first_page or known is None else len(known.tools)
        if earlier + len(listed) > self._max_tools:
            # Every listed tool costs each on_tool_call policy a call: a list beyond the bound is
            # refused whole rather than passed on partly unscreened.
            return self._refuse_long_list(flow, message, earlier + len(listed))
        last_page = not result.get("nextCursor")
        catalog = self._catalogs.offer(flow.catalog_key, listed, first_page=first_page, last_page=last_page)
        if not listed:
            return None
        context = flow.context
        context.exchange.tools = list(catalog.definitions.values())
        definitions = [catalog.definitions[tool["name"]] for tool in listed]
        outcomes = await flow.pipeline.check_offered_tools(context, definitions)
        if self._pins is not None:
            pins = self._pins
            pinned = await asyncio.gather(
                *(pins.check(self.server, tool["name"], catalog.digests[tool["name"]], context.tenant_id)
                  for tool in listed)
            )
            outcomes = [
                _with(outcome, [pin] if pin is not None else []) for outcome, pin in zip(outcomes, pinned, strict=True)
            ]
        decisions = [decision for outcome in outcomes for decision in outcome.decisions]
        self._observer.decisions(context, decisions)
        blocked = [(tool, outcome) for tool, outcome in zip(listed, outcomes, strict=True) if outcome.blocked]
        for outcome in outcomes:
            if outcome.governing is not None and not outcome.blocked:
                flow.decision_ids.append(outcome.governing.decision_id)
        if not blocked:
            return None
        if self._refuse_lists:
            governing = blocked[0][1].governing
            assert governing is not None
            flow.decision_ids.append(governing.decision_id)
            return block_response(message.id, governing)
        refused = {id(tool) for tool, _ in blocked}
        for _, outcome in blocked:
            assert outcome.governing is not None
            flow.decision_ids.append(outcome.governing.decision_id)
        result["tools"] = [tool for tool in tools if id(tool) not in refused]
        return message.body

    def _refuse_long_list(self, flow: Flow, message: Message, count: int) -> dict[str, Any]:
        decision = Decision(
            Verdict.BLOCK, "mcp_limits", "on_tool_call", reason="too_many_tools",
            details=f"the server lists {count} tools; at most {self._max_tools} are accepted (mcp.max_listed_tools)",
            subject=self.server,
        )
        self._observer.decisions(flow.context, [decision])
        flow.decision_ids.append(decision.decision_id)
        return block_response(message.id, decision)

    async def _check_result(
        self, flow: Flow, message_id: Any, subject: str, value: dict[str, Any], body: dict[str, Any], key: str
    ) -> dict[str, Any] | None:
        context = flow.context
        result = result_of(subject, str(message_id) if message_id is not None else "", value)
        catalog = self._catalogs.get(flow.catalog_key)
        tool = (catalog.definitions.get(subject) if catalog is not None else None) or ToolDefinition(name=subject)
        outcome = await flow.pipeline.check_tool_result(context, tool, result)
        self._observer.decisions(context, outcome.decisions)
        governing = outcome.governing
        if governing is None:
            return None
        flow.decision_ids.append(governing.decision_id)
        if outcome.blocked:
            return block_response(message_id, governing)
        redactions = outcome.redactions
        if not redactions:
            return None
        try:
            rewritten = orjson.loads(redact_json_document(orjson.dumps(value), redactions))
            # Text inside base64 payloads cannot be rewritten: it must be gone from every view.
            if _holds_any(result_of(subject, "", rewritten).media_texts(), redactions):
                raise RedactionFailed("redacted text is still readable in an encoded payload")
        except RedactionFailed:
            failure = redaction_failure(outcome)
            self._observer.decisions(context, [failure])
            flow.decision_ids.append(failure.decision_id)
            return block_response(message_id, failure)
        body[key] = rewritten
        return body


def _holds_any(texts: list[str], redactions: list[tuple[str, str]]) -> bool:
    return any(original and original in text for text in texts for original, _ in redactions)


def _method_by_shape(result: dict[str, Any]) -> str:
    """The method a result answers, read from its shape (a response whose request the proxy did
    not see, e.g. one replayed on a resumed stream)."""
    if isinstance(result.get("tools"), list):
        return "tools/list"
    if isinstance(result.get("content"), list) or "structuredContent" in result:
        return "tools/call"
    if isinstance(result.get("contents"), list):
        return "resources/read"
    if isinstance(result.get("messages"), list):
        return "prompts/get"
    if isinstance(result.get("resources"), list):
        return "resources/list"
    if isinstance(result.get("resourceTemplates"), list):
        return "resources/templates/list"
    if isinstance(result.get("prompts"), list):
        return "prompts/list"
    if "protocolVersion" in result and ("instructions" in result or "serverInfo" in result):
        return "initialize"
    return ""


def _subject(method: str, params: dict[str, Any]) -> str:
    """What a result is about, as decisions name it: the tool, the resource's URI, the prompt (for
    a listing or `initialize`, the method)."""
    if method not in ("tools/call", "resources/read", "prompts/get"):
        return method
    key = "uri" if method == "resources/read" else "name"
    value = params.get(key)
    return value[:256] if isinstance(value, str) and value else method
