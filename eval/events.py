"""Turns a corpus item into the hook event the proxy would hand a policy for it.

Each item gets a fresh RequestContext whose Exchange holds what a real request would: the
offered tools, model, system instructions, output cap, and for tool results the call and result
in the conversation, so policies that look past the event (at the offered tools, say) see them.
"""

from __future__ import annotations

from typing import Any

from capsem_proxy.exchange import Answer, Exchange, Message, ToolDefinition, ToolResult, ToolUse
from capsem_proxy.hooks import ModelCall, ModelResponse, RequestContext, ToolCall, ToolResponse
from eval.corpus import Item

__all__ = ["DEFAULT_MODEL", "build_event", "request_context", "tool_definition"]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TENANT = "eval-tenant"
_PROVIDER = "openai"
_OPERATION = "chat"
_CALL_ID = "call_eval_1"


def tool_definition(tool: dict[str, Any]) -> ToolDefinition:
    """A ToolDefinition from an item's `{"name", "description", "parameters"}`."""
    return ToolDefinition(
        name=str(tool.get("name", "")),
        description=str(tool.get("description") or ""),
        parameters=tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {},
    )


def request_context(
    request_id: str,
    prompt: str = "",
    *,
    system: str = "",
    model: str = DEFAULT_MODEL,
    tools: list[ToolDefinition] | None = None,
    max_output_tokens: int | None = None,
    tenant_id: str = DEFAULT_TENANT,
    agent_id: str = "",
    extra_messages: list[Message] | None = None,
) -> RequestContext:
    """A request as the provider adapters would decode it."""
    messages = [Message("user", prompt)] if prompt else []
    messages.extend(extra_messages or [])
    exchange = Exchange(
        _PROVIDER, _OPERATION, model=model, system=system, messages=messages, tools=list(tools or []),
        max_output_tokens=max_output_tokens, request_bytes=len(prompt.encode()) + len(system.encode()),
    )
    return RequestContext(request_id, tenant_id, _PROVIDER, _OPERATION, exchange, agent_id=agent_id)


def build_event(item: Item) -> Any:
    """The hook event for `item` (its `hook` names the method the harness calls)."""
    fields = item.fields
    tool = tool_definition(fields["tool"]) if isinstance(fields.get("tool"), dict) else None
    offered = [tool_definition(entry) for entry in fields.get("offered_tools") or [] if isinstance(entry, dict)]
    # An item that lists the offered tools says exactly what was offered (a call to a tool never
    # offered is a case of its own); otherwise the emitted tool counts as offered.
    if tool is not None and "offered_tools" not in fields and not any(entry.name == tool.name for entry in offered):
        offered.append(tool)
    extra_messages: list[Message] = []
    response: dict[str, Any] = {}
    if item.hook == "on_tool_response" and tool is not None:
        raw = fields["response"]
        result = ToolResult(call_id=_CALL_ID, name=tool.name, content=raw)
        response = result.as_dict()
        extra_messages = [
            Message("assistant", tool_calls=[ToolUse(tool.name, dict(fields.get("args") or {}), _CALL_ID)]),
            Message("tool", tool_results=[result]),
        ]
    context = request_context(
        item.id,
        fields["text"] if item.hook == "on_model_call" else "",
        system=str(fields.get("system") or ""),
        model=str(fields.get("model") or DEFAULT_MODEL),
        tools=offered,
        max_output_tokens=fields.get("max_output_tokens"),
        # Items are independent: stateful policies (quotas, rate limits) see each under its own
        # tenant unless the item names one.
        tenant_id=str(fields.get("tenant_id") or f"{DEFAULT_TENANT}-{item.id}"),
        agent_id=str(fields.get("agent_id") or ""),
        extra_messages=extra_messages,
    )
    exchange = context.exchange
    if item.hook == "on_model_call":
        return ModelCall(context, exchange.model, exchange.system, exchange.prompt, exchange.media)
    if item.hook == "on_tool_call":
        assert tool is not None
        return ToolCall(context, tool, dict(fields["args"]), emitted=True, call_id=_CALL_ID)
    if item.hook == "on_tool_response":
        assert tool is not None
        return ToolResponse(context, tool, response, call_id=_CALL_ID)
    return ModelResponse(context, Answer(text=fields["text"]), final=True)
