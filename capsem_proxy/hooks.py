"""Hook events, one dataclass per interception point (named as in CAPSEM).

A policy implements the methods it cares about (`on_model_call(event)` …); a missing method
means "no opinion". Each event carries the request's context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from capsem_proxy.exchange import Answer, Exchange, MediaPart, ToolDefinition, ToolResult, ToolUse
from capsem_proxy.records import RequestRecord
from capsem_proxy.streaming.text import GrowingText

if TYPE_CHECKING:
    from capsem_proxy.decisions import Decision
    from capsem_proxy.scanning import ScanLedger

__all__ = [
    "HOOK_NAMES",
    "HookName",
    "ModelCall",
    "ModelResponse",
    "RequestContext",
    "ToolCall",
    "ToolResponse",
]

# The interception points, in the order a request and its answer meet them.
HookName = Literal["on_model_call", "on_tool_call", "on_tool_response", "on_model_response"]
HOOK_NAMES: tuple[HookName, ...] = get_args(HookName)


@dataclass(slots=True)
class RequestContext:
    """Who asked what, for one proxied request."""

    request_id: str
    tenant_id: str
    provider: str
    operation: str
    exchange: Exchange
    agent_id: str = ""
    session_id: str = ""
    # Per-request space of the policies' own (e.g. a converted agent), under keys of their own;
    # never persisted.
    scratch: dict[str, Any] = field(default_factory=dict)
    # What the audit trail will say about the request, filled in as it goes.
    record: RequestRecord | None = None
    # The proxy's own per-request state, each made when first needed: the offered tools by name,
    # the scan ledgers of the request and of its answer, the decisions a traced request collected.
    offered_tools: dict[str, ToolDefinition] | None = None
    request_ledger: ScanLedger | None = None
    answer_ledger: ScanLedger | None = None
    traced_decisions: list[Decision] | None = None
    # ALLOW decisions folded into the request's audit row (audit/folding.py), and whether that row
    # was queued (nothing is folded into it after that).
    folded_allows: dict[tuple[str, str, str], list[Any]] | None = None
    audit_closed: bool = False


@dataclass(slots=True)
class ModelCall:
    """A request to a model (`on_model_call`).

    `prompt` is the conversation (place `prompts`: messages, documents, thinking carried in the
    history). The request's other texts, each computed only when asked for: `media_texts` (text
    documents sent inline, decoded), `history_tool_calls` (place `tool_calls`) and `other_texts`
    (place `other`: what the adapter did not recognise). Tool definitions and tool results have
    their own hooks.
    """

    context: RequestContext
    model_name: str
    system_instructions: str
    prompt: str
    media: list[MediaPart]
    # The texts the detector policies read, joined once for every detector that reads the same
    # places (see DetectorPolicy._model_call_texts).
    joined_texts: dict[tuple[str, bool, bool, bool], tuple[str, str]] | None = None

    @property
    def media_texts(self) -> list[str]:
        """The decoded text of each text document sent inline in the conversation (base64 or a
        data: URL): it cannot be rewritten in place, only allowed or refused."""
        return self.context.exchange.media_texts()

    @property
    def history_tool_calls(self) -> list[ToolUse]:
        """The tool calls the request's history carries (`ToolCall.texts()` gives their texts)."""
        return self.context.exchange.tool_calls

    @property
    def other_texts(self) -> list[str]:
        """Every text of the request the adapter did not recognise (the catch-all)."""
        return self.context.exchange.other_texts()


@dataclass(slots=True)
class ToolCall:
    """A tool offered in a request (`emitted` False, args empty) or called by the model (`emitted` True)."""

    context: RequestContext
    tool: ToolDefinition
    args: dict[str, Any]
    emitted: bool = False
    call_id: str = ""


@dataclass(slots=True)
class ToolResponse:
    """A tool result the client sends back (`on_tool_response`)."""

    context: RequestContext
    tool: ToolDefinition
    response: dict[str, Any]
    call_id: str = ""
    # The decoded result (its texts and the documents inside it), when the request carried one.
    result: ToolResult | None = None


@dataclass(slots=True)
class ModelResponse:
    """A model's answer, whole or as seen so far in a stream (`on_model_response`)."""

    context: RequestContext
    answer: Answer
    final: bool = True
    # In a guarded stream, the first `settled_chars` characters of the answer's text were checked
    # and released at an earlier check: findings that lie wholly inside them need not be looked
    # for again (0: nothing is settled, read it all). Likewise for the thinking.
    settled_chars: int = 0
    settled_thinking_chars: int = 0
    # A guarded stream's growing text. At its intermediate checks only policies that declare
    # `incremental_answers = True` are called, and for them `answer.text` may lag behind: they
    # read through `text_from` / `thinking_from`, which cost what they return.
    text_buffer: GrowingText | None = None
    thinking_buffer: GrowingText | None = None

    @property
    def response(self) -> str:
        return self.answer.text

    @property
    def thoughts(self) -> str:
        return self.answer.thinking

    @property
    def text_length(self) -> int:
        """Characters of answer text seen so far."""
        return self.text_buffer.length if self.text_buffer is not None else len(self.answer.text)

    @property
    def thinking_length(self) -> int:
        """Characters of thinking seen so far."""
        return self.thinking_buffer.length if self.thinking_buffer is not None else len(self.answer.thinking)

    def text_from(self, start: int) -> str:
        """The answer text from character `start` on (cheap near the end of a long stream)."""
        if self.text_buffer is not None:
            return self.text_buffer.since(start)
        return self.answer.text[start:] if start > 0 else self.answer.text

    def thinking_from(self, start: int) -> str:
        """The thinking from character `start` on."""
        if self.thinking_buffer is not None:
            return self.thinking_buffer.since(start)
        return self.answer.thinking[start:] if start > 0 else self.answer.thinking
