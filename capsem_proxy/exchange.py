"""The neutral model: what one request and its answer mean, whatever the provider.

Provider adapters decode wire formats into these types; policies only ever see these.
The original bytes always stay with the adapter, so nothing here needs to round-trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Answer",
    "Exchange",
    "MediaPart",
    "Message",
    "ToolCall",
    "ToolDefinition",
    "ToolResult",
    "Usage",
]


@dataclass(slots=True)
class MediaPart:
    """An image, audio clip or file attached to a message or answer.

    `data` holds decoded bytes when the media is inline, `uri` a reference otherwise.
    """

    mime_type: str
    data: bytes | None = None
    uri: str | None = None


@dataclass(slots=True)
class ToolDefinition:
    """A tool the caller offers to the model."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ToolCall:
    """A call of a tool, emitted by the model (in an answer or in the history)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""
    # The arguments exactly as the provider sent them (OpenAI sends a JSON string).
    raw_arguments: str = ""


@dataclass(slots=True)
class ToolResult:
    """The result of a tool call, sent back by the client."""

    call_id: str = ""
    name: str = ""
    content: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The result as a mapping, as CAPSEM's `on_tool_response(response: dict)` expects."""
        if isinstance(self.content, dict):
            return self.content
        return {"content": self.content}


@dataclass(slots=True)
class Message:
    """One turn of the conversation. `role` is one of system, user, assistant, tool."""

    role: str
    text: str = ""
    media: list[MediaPart] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    thinking: str = ""


@dataclass(slots=True)
class Exchange:
    """A decoded request: what the caller asks the model, in neutral terms."""

    provider: str
    operation: str
    model: str = ""
    stream: bool = False
    system: str = ""
    messages: list[Message] = field(default_factory=list)
    tools: list[ToolDefinition] = field(default_factory=list)
    # The cap on the answer's length the caller asked for (max_tokens, max_output_tokens…).
    max_output_tokens: int | None = None
    # Size of the request body as received.
    request_bytes: int = 0

    @property
    def prompt(self) -> str:
        """Every text the model is asked to read, besides system instructions and tool results."""
        texts = [message.text for message in self.messages if message.text and message.role != "system"]
        return "\n".join(texts)

    @property
    def media(self) -> list[MediaPart]:
        """All media attached to the conversation."""
        return [part for message in self.messages for part in message.media]

    @property
    def tool_results(self) -> list[ToolResult]:
        """All tool results the client sends back in this request."""
        return [result for message in self.messages for result in message.tool_results]

    @property
    def tool_calls(self) -> list[ToolCall]:
        """All tool calls present in the conversation history."""
        return [call for message in self.messages for call in message.tool_calls]


@dataclass(slots=True)
class Usage:
    """Token counts read from an answer, when the provider reports them."""

    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(slots=True)
class Answer:
    """A decoded answer: what the model said, whole (non-streamed) or assembled from a stream."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    media: list[MediaPart] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
