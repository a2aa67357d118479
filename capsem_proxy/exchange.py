"""The neutral model: what one request and its answer mean, whatever the provider.

Provider adapters decode wire formats into these types; policies only ever see these.
The original bytes always stay with the adapter, so nothing here needs to round-trip.

Every text of a request the provider will read has a place, which says which hook sees it and
which `scan` entry of a detector covers it:

- `prompts`: the conversation: user, assistant and system text, documents, search results,
  refusals, thinking carried in the history, prompt variables. `Exchange.system`,
  `Message.text` and `Message.thinking` (joined in `Exchange.prompt`), and the text media of
  the conversation (`Exchange.media_texts()`).
- `tool_calls`: calls in the history, the tool's name and its arguments, the provider's own
  tools (code to run, searches, shell commands) included: `ToolUse.texts()`.
- `tool_results`: what each call returned, documents and text media inside it included:
  `ToolResult.texts()` and `ToolResult.media_texts()`.
- `tool_definitions`: each offered tool, its name, description and every text of its schema:
  `ToolDefinition.texts()`.
- `other`: every string the adapter did not recognise (a new API field, metadata, URLs,
  response schemas): `Exchange.other_texts()`.

Identifiers and enum values (model, role, type, ids, media types) and binary payloads are not
texts. Text media (base64 or data: URLs of a text type) are decoded only when a policy asks for
them, and so is the catch-all walk: a request that no text-reading policy inspects pays for
neither.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from capsem_proxy.redaction import texts_hold_any
from capsem_proxy.texts import json_texts, media_text, readable_texts, schema_texts

__all__ = [
    "PLACES",
    "Answer",
    "Exchange",
    "MediaPart",
    "Message",
    "ToolDefinition",
    "ToolResult",
    "ToolUse",
    "Usage",
    "parse_arguments",
]

# The fields of a tool's spec that `ToolDefinition` holds on their own.
_NAMING = frozenset({"name", "description"})
# Where a text of a request sits (see the module docstring).
PLACES = ("prompts", "tool_calls", "tool_results", "tool_definitions", "other")


@dataclass(slots=True)
class MediaPart:
    """An image, audio clip or file attached to a message or answer.

    `data` holds decoded bytes when the media is inline, `uri` a reference otherwise.
    """

    mime_type: str
    data: bytes | None = None
    uri: str | None = None
    # True when the document's text travels as plain JSON text (an Anthropic text source): it is
    # read with the conversation, where it can be rewritten, not as encoded media.
    as_text: bool = False

    def text(self) -> str | None:
        """The text the model reads in this encoded media (a text document sent inline in base64
        or a data: URL), or None."""
        return None if self.as_text else media_text(self.mime_type, self.data)


@dataclass(slots=True)
class ToolDefinition:
    """A tool the caller offers to the model."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    # The definition as the request spells it, when it says more than name, description and
    # parameters (a response schema, a grammar, examples): its texts are read too.
    spec: dict[str, Any] | None = None
    _texts: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _digest: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def texts(self) -> list[str]:
        """What the model reads of this tool: name, description and every text of its schema
        (walked once per definition, however many policies ask)."""
        if self._texts is None:
            texts = [self.name, self.description] if self.description else [self.name]
            if self.spec is None:
                texts.extend(schema_texts(self.parameters))
            else:
                texts.extend(schema_texts({key: value for key, value in self.spec.items() if key not in _NAMING}))
            self._texts = texts
        return self._texts

    def digest(self) -> bytes:
        """A short digest naming this definition's content: equal definitions, equal digests
        (policies remember by it what they already read, since agents resend their tools)."""
        if self._digest is None:
            try:
                content = orjson.dumps([self.name, self.description, self.parameters, self.spec])
            except TypeError:  # nested deeper than orjson writes: digest the texts instead
                content = "\x1f".join(self.texts()).encode("utf-8", "surrogatepass")
            self._digest = hashlib.blake2b(content, digest_size=16).digest()
        return self._digest


def parse_arguments(raw: Any) -> dict[str, Any]:
    """Tool-call arguments as a dict: a dict as is, a JSON object text parsed, {} otherwise."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        if isinstance(value, dict):
            return value
    return {}


@dataclass(slots=True)
class ToolUse:
    """A call of a tool, emitted by the model (in an answer or in the history)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""
    # The arguments exactly as the provider sent them (OpenAI sends a JSON string).
    raw_arguments: str = ""
    # For a call in a request's history: the arguments as the request carries them (a JSON text,
    # an object, or whatever the provider's own tool takes), when they are not `arguments`.
    wire: Any = None

    def texts(self) -> list[str]:
        """The tool's name and every text of its arguments, as the request carries them (a JSON
        text as one text; an object's keys and values each)."""
        texts = [self.name] if self.name else []
        texts.extend(json_texts(self.arguments if self.wire is None else self.wire, keys=True))
        return texts


@dataclass(slots=True)
class ToolResult:
    """The result of a tool call, sent back by the client."""

    call_id: str = ""
    name: str = ""
    content: Any = None
    # Images and documents sent inside the result.
    media: list[MediaPart] = field(default_factory=list)
    # The result's texts as the request carries them, when `content` is derived from them (a
    # JSON text parsed into an object, text blocks joined): what a redaction can rewrite.
    wire: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The result as a mapping, as CAPSEM's `on_tool_response(response: dict)` expects; text
        documents sent inside it are added, decoded, under `attachments`."""
        result = self.content if isinstance(self.content, dict) else {"content": self.content}
        attachments = self.media_texts()
        if attachments:
            result = {**result, "attachments": attachments}
        return result

    def texts(self) -> list[str]:
        """Every text of the result as the request carries it (a JSON text as one text, an
        object's keys and values each)."""
        return json_texts(self.content if self.wire is None else self.wire, keys=True)

    def media_texts(self) -> list[str]:
        """The decoded text of each text document sent inline inside the result."""
        return [text for part in self.media if (text := part.text())]


@dataclass(slots=True)
class Message:
    """One turn of the conversation. `role` is one of system, user, assistant, tool."""

    role: str
    text: str = ""
    media: list[MediaPart] = field(default_factory=list)
    tool_calls: list[ToolUse] = field(default_factory=list)
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
    # (key, value) pairs of the body the adapter did not recognise: their strings are `other`.
    unrecognised: list[tuple[str, Any]] = field(default_factory=list)
    _other_texts: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _media_texts: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def prompt(self) -> str:
        """The conversation the model is asked to read (place `prompts`), besides system
        instructions, tool calls and tool results: every message's text and thinking."""
        texts = []
        for message in self.messages:
            if message.role != "system":
                if message.thinking:
                    texts.append(message.thinking)
                if message.text:
                    texts.append(message.text)
        return "\n".join(texts)

    def media_texts(self) -> list[str]:
        """The decoded text of each text document sent inline in the conversation (tool results
        excepted: see `ToolResult.media_texts`), decoded once."""
        if self._media_texts is None:
            texts: list[str] = []
            for message in self.messages:
                if message.role != "tool" and message.media:
                    texts.extend(text for part in message.media if (text := part.text()))
            self._media_texts = texts
        return self._media_texts

    def holds_any(self, redactions: list[tuple[str, str]]) -> bool:
        """True when some text of the request, in any form a policy reads it (as carried, parsed
        from a JSON text, decoded from base64 or a data: URL), still holds an original of
        `redactions` outside its replacement: a rewrite of the body's bytes did not reach it."""
        texts: list[str] = [self.system, *self.other_texts(), *self.media_texts()]
        for message in self.messages:
            texts.append(message.text)
            texts.append(message.thinking)
            for call in message.tool_calls:
                texts.extend(call.texts())
                texts.extend(json_texts(call.arguments, keys=True))
            for result in message.tool_results:
                texts.extend(result.texts())
                texts.extend(json_texts(result.content, keys=True))
                texts.extend(result.media_texts())
        for tool in self.tools:
            texts.extend(tool.texts())
        # One pass per text for all redactions: a prompt of 20,000 addresses carries 20,000.
        return texts_hold_any(texts, redactions)

    def other_texts(self) -> list[str]:
        """Every text of the body the adapter did not recognise (the catch-all), walked once."""
        if self._other_texts is None:
            texts: list[str] = []
            for key, value in self.unrecognised:
                if key:
                    texts.append(key)  # an unknown field's name is text the provider reads too
                texts.extend(readable_texts(value, key, keys=True))
            self._other_texts = texts
        return self._other_texts

    # These run once or more per request: plain loops, about twice as fast as nested comprehensions.
    @property
    def media(self) -> list[MediaPart]:
        """All media attached to the conversation."""
        media: list[MediaPart] = []
        for message in self.messages:
            if message.media:
                media.extend(message.media)
        return media

    @property
    def tool_results(self) -> list[ToolResult]:
        """All tool results the client sends back in this request."""
        results: list[ToolResult] = []
        for message in self.messages:
            if message.tool_results:
                results.extend(message.tool_results)
        return results

    @property
    def tool_calls(self) -> list[ToolUse]:
        """All tool calls present in the conversation history."""
        calls: list[ToolUse] = []
        for message in self.messages:
            if message.tool_calls:
                calls.extend(message.tool_calls)
        return calls


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
    tool_calls: list[ToolUse] = field(default_factory=list)
    media: list[MediaPart] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
