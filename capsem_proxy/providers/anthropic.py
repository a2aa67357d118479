"""Anthropic Messages wire format.

Operations: "messages" (POST /v1/messages) and "count_tokens" (POST /v1/messages/count_tokens).

Decoding choices:
- A user message holding `tool_result` blocks becomes a message of role "tool" with the
  results (and any images inside them as media), followed by a "user" message with the
  rest of its blocks when there are any.
- `tool_result` content (string or blocks) is joined text, parsed to a dict when it is a JSON
  object; with `is_error: true` the content is `{"content": <that>, "is_error": True}`.
- `redacted_thinking` blocks are encrypted and carry no readable text: they are skipped.
- Server tools (`server_tool_use`, `mcp_tool_use`) count as tool calls; server tool
  definitions (e.g. `web_search_20250305`) keep their name with empty parameters.
- Documents: base64 / text sources give bytes, url / file sources a uri.
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

from capsem_proxy.answer_decoding import UnreadableAnswer, parse_answer_json
from capsem_proxy.exchange import Answer, Exchange, MediaPart, ToolCall, ToolDefinition, ToolResult
from capsem_proxy.providers._decode_helpers import (
    NullStreamDecoder,
    Turn,
    as_list,
    as_str,
    b64decode,
    bearer_token,
    dumps,
    error_message,
    media_from_url,
    sse_event,
    texts_of,
    to_int,
    tool_content,
    valid_key,
)
from capsem_proxy.providers.base import ErrorKind, ProviderAdapter, StreamDecoder
from capsem_proxy.streaming.events import (
    Delta,
    ErrorDelta,
    FinishDelta,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UnreadableDelta,
    UsageDelta,
)

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


def _source_media(source: Any) -> MediaPart | None:
    """An image / document `source`: base64, text, url, file or content."""
    if not isinstance(source, dict):
        return None
    kind = source.get("type")
    mime = as_str(source.get("media_type"))
    if kind == "base64":
        return MediaPart(mime_type=mime or "application/octet-stream", data=b64decode(source.get("data")))
    if kind == "text":
        return MediaPart(mime_type=mime or "text/plain", data=as_str(source.get("data")).encode())
    if kind == "url":
        return media_from_url(source.get("url"), mime)
    if kind == "file":
        file_id = source.get("file_id")
        if isinstance(file_id, str) and file_id:
            return MediaPart(mime_type=mime or "application/octet-stream", uri=file_id)
        return None
    if kind == "content":
        return MediaPart(mime_type="text/plain", data="\n".join(texts_of(source.get("content"))).encode())
    return None


def _tool_call(block: dict[str, Any]) -> ToolCall:
    arguments = block.get("input")
    arguments = arguments if isinstance(arguments, dict) else {}
    return ToolCall(
        name=as_str(block.get("name")),
        arguments=arguments,
        call_id=as_str(block.get("id")),
        raw_arguments=dumps(arguments),
    )


def _tool_result(block: dict[str, Any], names: dict[str, str], media: list[MediaPart]) -> ToolResult:
    content = block.get("content")
    if isinstance(content, str):
        text = content
    else:
        texts = []
        for part in as_list(content):
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") in ("image", "document"):
                found = _source_media(part.get("source"))
                if found is not None:
                    media.append(found)
        text = "\n".join(texts)
    value = tool_content(text)
    if block.get("is_error") is True:
        value = {"content": value, "is_error": True}
    call_id = as_str(block.get("tool_use_id"))
    return ToolResult(call_id=call_id, name=names.get(call_id, ""), content=value)


def _add_block(block: Any, turn: Turn, names: dict[str, str]) -> None:
    if not isinstance(block, dict):
        return
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if isinstance(text, str) and text:
            turn.texts.append(text)
    elif kind in ("image", "document"):
        found = _source_media(block.get("source"))
        if found is not None:
            turn.media.append(found)
    elif kind in _TOOL_USE_BLOCKS:
        call = _tool_call(block)
        names[call.call_id] = call.name
        turn.tool_calls.append(call)
    elif kind == "tool_result":
        turn.tool_results.append(_tool_result(block, names, turn.tool_media))
    elif kind == "thinking":
        text = block.get("thinking")
        if isinstance(text, str) and text:
            turn.thinking.append(text)


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    return "\n".join(texts_of(system))


def _tool_definition(spec: Any) -> ToolDefinition | None:
    if not isinstance(spec, dict):
        return None
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        return None
    schema = spec.get("input_schema")
    return ToolDefinition(
        name=name, description=as_str(spec.get("description")), parameters=schema if isinstance(schema, dict) else {}
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

    def feed(self, event: StreamEvent) -> list[Delta]:
        name = event.event
        if name == "ping" or not event.data.strip():
            return []  # the SDK skips both without reading them
        try:
            data = parse_answer_json(event.data)
        except UnreadableAnswer as exc:
            return [UnreadableDelta(f"event data is {exc}")]
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
        """Decode a Messages (or count_tokens) request body (see the module docstring)."""
        if not isinstance(body, dict):
            raise ValueError("request body must be a JSON object")
        exchange = Exchange(
            provider=self.name,
            operation=operation,
            model=as_str(body.get("model")) or path_model,
            stream=body.get("stream") is True,
            system=_system_text(body.get("system")),
            max_output_tokens=to_int(body.get("max_tokens")),
        )
        names: dict[str, str] = {}
        for raw in as_list(body.get("messages")):
            if not isinstance(raw, dict):
                continue
            role = "assistant" if raw.get("role") == "assistant" else "user"
            turn = Turn()
            content = raw.get("content")
            if isinstance(content, str):
                if content:
                    turn.texts.append(content)
            else:
                for block in as_list(content):
                    _add_block(block, turn, names)
            turn.flush(exchange.messages, role)
        for spec in as_list(body.get("tools")):
            tool = _tool_definition(spec)
            if tool is not None:
                exchange.tools.append(tool)
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
        usage = body.get("usage")
        if isinstance(usage, dict):
            answer.usage.input_tokens = to_int(usage.get("input_tokens"))
            answer.usage.output_tokens = to_int(usage.get("output_tokens"))
        return answer

    def stream_decoder(self, operation: str) -> StreamDecoder:
        """A decoder for a streamed Messages answer."""
        return _MessagesStreamDecoder() if operation == "messages" else NullStreamDecoder()

    def error_payload(self, status: int, message: str, kind: str) -> dict[str, Any]:
        """`{"type": "error", "error": {"type", "message"}}` (see the module docstring)."""
        return {"type": "error", "error": {"type": _error_type(status, kind), "message": message}}

    def stream_error_event(self, operation: str, status: int, message: str, kind: str, *, sse: bool = True) -> bytes:
        """`event: error` with the error object: the SDK raises on it."""
        return sse_event("error", self.error_payload(status, message, kind))

    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """`x-api-key`, else `Authorization: Bearer`; "" when malformed, None when absent."""
        value = headers.get("x-api-key")
        if value is not None:
            return valid_key(value)
        value = headers.get("authorization")
        return None if value is None else bearer_token(value)
