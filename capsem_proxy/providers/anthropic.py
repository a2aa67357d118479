"""Anthropic Messages wire format.

Operations: "messages" (POST /v1/messages) and "count_tokens" (POST /v1/messages/count_tokens).

Decoding choices (requests: `anthropic_request`, which lists every field and its place):
- A user message holding `tool_result` blocks becomes a message of role "tool" with the
  results (and any images inside them as media), followed by a "user" message with the
  rest of its blocks when there are any.
- `tool_result` content (string or blocks) is joined text (documents and search results inside
  it included), parsed to a dict when it is a JSON object; with `is_error: true` the content is
  `{"content": <that>, "is_error": True}`.
- `redacted_thinking` blocks are encrypted and carry no readable text: they are skipped.
- Server tools (`server_tool_use`, `mcp_tool_use`) count as tool calls, and their results
  (`web_search_tool_result`, `web_fetch_tool_result`, `code_execution_tool_result`…) as tool
  results; server tool definitions (e.g. `web_search_20250305`) keep their name and settings.
- Documents: a text or content source is text of the conversation; base64 sources give bytes
  (read as text when of a text type), url / file sources a uri.
- Streamed tool calls use the content block index as their index.

Errors the proxy makes, by kind (falling back on the HTTP status for unknown kinds):
invalid_request → invalid_request_error (400), authentication → authentication_error (401),
permission → permission_error (403), not_found → not_found_error (404),
too_large → request_too_large (413), rate_limit → rate_limit_error (429),
internal / upstream_unavailable → api_error (500 / 502), unavailable → overloaded_error (503, 529),
timeout → timeout_error (504). In a stream the error is `event: error` with the same object;
the anthropic SDK raises an APIStatusError on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from capsem_proxy.answer_decoding import BLANK_EVENT, UnreadableAnswer, event_data_json
from capsem_proxy.errors import ErrorKind
from capsem_proxy.exchange import Answer, Exchange, ToolUse, Usage
from capsem_proxy.providers._decode_helpers import (
    as_list,
    as_str,
    bearer_token,
    dumps,
    error_message,
    to_int,
    valid_key,
)
from capsem_proxy.providers.anthropic_request import decode_messages
from capsem_proxy.providers.base import ConflictingKeys, ProviderAdapter
from capsem_proxy.streaming.events import (
    Delta,
    ErrorDelta,
    FinishDelta,
    NullStreamDecoder,
    StreamDecoder,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UnreadableDelta,
    UsageDelta,
)
from capsem_proxy.streaming.sse import encode_event

__all__ = ["AnthropicAdapter"]

_ERROR_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.INTERNAL: "api_error",
    ErrorKind.UPSTREAM_UNAVAILABLE: "api_error",
    ErrorKind.UNAVAILABLE: "overloaded_error",
    ErrorKind.TIMEOUT: "timeout_error",
}
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_TOOL_USE_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
# Stream event types that carry nothing neutral.
_SKIPPED_EVENTS = frozenset({"ping", "content_block_stop", "message_stop"})
# Events the API sends alike in every stream that decode to nothing: its ping, the end of the message,
# the opening of a text block (empty) and the end of a block, at the first few block indexes.
_SILENT_EVENTS = frozenset(
    [b'event: ping\ndata: {"type": "ping"}\n\n', b'event: message_stop\ndata: {"type":"message_stop"}\n\n']
    + [b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
       b'"content_block":{"type":"text","text":""}}\n\n' % index for index in range(8)]
    + [b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n' % index
       for index in range(8)]
)


def _tool_call(block: dict[str, Any]) -> ToolUse:
    arguments = block.get("input")
    arguments = arguments if isinstance(arguments, dict) else {}
    return ToolUse(
        name=as_str(block.get("name")),
        arguments=arguments,
        call_id=as_str(block.get("id")),
        raw_arguments=dumps(arguments),
    )


def _error_type(status: int, kind: str) -> str:
    found = _ERROR_TYPES.get(kind) or _STATUS_TYPES.get(status)
    return found or ("api_error" if status >= 500 else "invalid_request_error")


class _MessagesStreamDecoder(StreamDecoder):
    """Messages API SSE events: message_start, content_block_*, message_delta, message_stop, ping, error.

    The SDK reads an event by its data's `type` (the `event:` line only makes it skip pings and
    unnamed events); so does the decoder, which also reads unnamed events, and refuses an event
    whose line and type disagree.
    """

    __slots__ = ()
    text_events_alone = True
    silent_events = _SILENT_EVENTS

    def feed(self, event: StreamEvent) -> list[Delta]:
        name = event.event
        if name == "ping":
            return []  # the SDK skips it without reading it
        try:
            data = event_data_json(event.data)
        except UnreadableAnswer as exc:
            return [UnreadableDelta(f"event data is {exc}")]
        if data is BLANK_EVENT:
            return []  # the SDK skips it without reading it
        if not isinstance(data, dict):
            return [UnreadableDelta("event data is not a JSON object")]
        kind = data.get("type")
        if isinstance(kind, str):
            if name is not None and name != kind:
                return [UnreadableDelta(f"event {name!r} carries data of type {kind!r}")]
            name = kind
        if name in _SKIPPED_EVENTS:
            return []
        if name == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                return []
            kind = delta.get("type")
            if kind == "text_delta":
                text = delta.get("text")
                return [TextDelta(text)] if isinstance(text, str) and text else []
            if kind == "input_json_delta":
                fragment = delta.get("partial_json")
                index = data.get("index")
                if isinstance(fragment, str) and fragment and type(index) is int:
                    return [ToolCallDelta(index=index, arguments_fragment=fragment)]
                return []
            if kind == "thinking_delta":
                text = delta.get("thinking")
                return [ThinkingDelta(text)] if isinstance(text, str) and text else []
            return []
        if name == "content_block_start":
            block = data.get("content_block")
            index = data.get("index")
            if not isinstance(block, dict):
                return []
            kind = block.get("type")
            if kind in _TOOL_USE_BLOCKS and type(index) is int:
                # The block opens with `input: {}`; arguments already in it reach the client too.
                arguments = block.get("input")
                fragment = dumps(arguments) if isinstance(arguments, dict) and arguments else ""
                return [ToolCallDelta(index=index, call_id=as_str(block.get("id")), name=as_str(block.get("name")),
                                      arguments_fragment=fragment)]
            if kind == "text":
                text = block.get("text")
                return [TextDelta(text)] if isinstance(text, str) and text else []
            if kind == "thinking":
                text = block.get("thinking")
                return [ThinkingDelta(text)] if isinstance(text, str) and text else []
            return []
        if name == "message_delta":
            out: list[Delta] = []
            delta = data.get("delta")
            if isinstance(delta, dict):
                reason = delta.get("stop_reason")
                if isinstance(reason, str) and reason:
                    out.append(FinishDelta(reason))
            usage = data.get("usage")
            if isinstance(usage, dict):
                out.append(UsageDelta(to_int(usage.get("input_tokens")), to_int(usage.get("output_tokens"))))
            return out
        if name == "message_start":
            message = data.get("message")
            if not isinstance(message, dict):
                return []
            out = []
            # The message opens empty; content it already holds reaches the client like any block.
            for block in as_list(message.get("content")):
                if isinstance(block, dict):
                    kind = block.get("type")
                    if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
                        out.append(TextDelta(block["text"]))
                    elif kind == "thinking" and isinstance(block.get("thinking"), str) and block["thinking"]:
                        out.append(ThinkingDelta(block["thinking"]))
                    elif kind in _TOOL_USE_BLOCKS:
                        out.append(UnreadableDelta("the opening message already holds a tool call"))
            usage = message.get("usage")
            if isinstance(usage, dict):
                out.append(UsageDelta(input_tokens=to_int(usage.get("input_tokens"))))
            return out
        if name == "error":
            return [ErrorDelta(error_message(data.get("error") or data))]
        return []


class AnthropicAdapter(ProviderAdapter):
    """Anthropic Messages and token counting."""

    name = "anthropic"
    tool_call_markers = (b"tool_use", b"input_json_delta")

    def decode_request(self, operation: str, body: Any, path_model: str = "") -> Exchange:
        """Decode a Messages (or count_tokens) request body (see `anthropic_request`)."""
        if not isinstance(body, dict):
            raise ValueError("request body must be a JSON object")
        exchange = Exchange(  # provider, operation, model, stream: positional (no dict of keywords)
            self.name, operation, as_str(body.get("model")) or path_model, body.get("stream") is True,
            max_output_tokens=to_int(body.get("max_tokens")),
        )
        decode_messages(body, exchange)
        return exchange

    def decode_answer(self, operation: str, body: Any) -> Answer:
        """Decode a non-streamed Message; count_tokens answers give an empty Answer."""
        answer = Answer()
        if operation != "messages" or not isinstance(body, dict):
            return answer
        texts: list[str] = []
        thinking: list[str] = []
        for block in as_list(body.get("content")):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                thinking.append(block["thinking"])
            elif kind in _TOOL_USE_BLOCKS:
                answer.tool_calls.append(_tool_call(block))
        answer.text = "".join(texts)
        answer.thinking = "\n".join(thinking)
        reason = body.get("stop_reason")
        answer.finish_reason = reason if isinstance(reason, str) else None
        _message_usage(body, answer.usage)
        return answer

    def decode_usage(self, operation: str, body: Any) -> Usage:
        """The token counts of a non-streamed Message, and nothing else."""
        usage = Usage()
        if operation == "messages" and isinstance(body, dict):
            _message_usage(body, usage)
        return usage

    def stream_decoder(self, operation: str) -> StreamDecoder:
        """A decoder for a streamed Messages answer."""
        return _MessagesStreamDecoder() if operation == "messages" else NullStreamDecoder()

    def error_payload(self, status: int, message: str, kind: str) -> dict[str, Any]:
        """`{"type": "error", "error": {"type", "message"}}` (see the module docstring)."""
        return {"type": "error", "error": {"type": _error_type(status, kind), "message": message}}

    def stream_error_event(self, operation: str, status: int, message: str, kind: str, *, sse: bool = True) -> bytes:
        """`event: error` with the error object: the SDK raises on it."""
        return encode_event("error", self.error_payload(status, message, kind))

    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """`x-api-key`, else `Authorization: Bearer`; "" when malformed, None when absent.
        Both, with different keys: ConflictingKeys (which one Anthropic bills is not ours to guess)."""
        api_key = headers.get("x-api-key")
        authorization = headers.get("authorization")
        if api_key is not None and authorization is not None and valid_key(api_key) != bearer_token(authorization):
            raise ConflictingKeys("x-api-key and Authorization carry different keys")
        if api_key is not None:
            return valid_key(api_key)
        return None if authorization is None else bearer_token(authorization)


def _message_usage(body: dict[str, Any], usage: Usage) -> None:
    counts = body.get("usage")
    if isinstance(counts, dict):
        usage.input_tokens = to_int(counts.get("input_tokens"))
        usage.output_tokens = to_int(counts.get("output_tokens"))
