"""OpenAI wire format: Chat Completions, Responses, Embeddings and Models.

Operations: "chat" (POST /v1/chat/completions), "responses" (POST /v1/responses),
"embeddings" (POST /v1/embeddings), "models" (GET /v1/models).

Decoding choices (requests: `openai_request`, which lists every field and its place):
- `system` and `developer` messages (and Responses `instructions`) go to `Exchange.system`,
  joined with "\\n"; they are not kept in `messages`.
- Responses `function_call` / `reasoning` items (and the provider's own tool calls:
  `mcp_call`, `local_shell_call`…) join the assistant message right before them (or start
  one); consecutive outputs form one "tool" message.
- Tool output text that is a JSON object is parsed into a dict.
- Streamed tool-call indexes of choice n > 0 (requests with `n` > 1) are offset by
  n * 1000 so the calls of different choices never merge.
- Responses finish reason: the response `status` ("completed"), or the
  `incomplete_details.reason` (e.g. "max_output_tokens") when the response is incomplete.

Errors the proxy makes, by kind (HTTP status is chosen by the app):

| kind                 | type                  | code                 |
|----------------------|-----------------------|----------------------|
| authentication       | invalid_request_error | invalid_api_key      |
| invalid_request      | invalid_request_error | None                 |
| not_found            | invalid_request_error | not_found            |
| too_large            | invalid_request_error | request_too_large    |
| permission (policy)  | invalid_request_error | policy_blocked       |
| rate_limit           | requests              | rate_limit_exceeded  |
| upstream_unavailable | server_error          | upstream_unavailable |
| unavailable          | server_error          | service_unavailable  |
| timeout              | server_error          | upstream_timeout     |
| internal             | server_error          | internal_error       |

(`requests` is the type OpenAI itself uses for request-rate limits.) Unknown kinds get
"server_error" for statuses >= 500 and "invalid_request_error" otherwise, code None.

In a Chat Completions stream the error is a `data: {"error": {...}}` event; in a Responses
stream an `event: error` whose data is the Responses error event plus an `error` object.
The openai SDK raises `APIError(message)` on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from capsem_proxy.answer_decoding import UnreadableAnswer, parse_answer_json
from capsem_proxy.errors import ErrorKind
from capsem_proxy.exchange import Answer, Exchange, MediaPart, ToolUse, Usage, parse_arguments
from capsem_proxy.providers._decode_helpers import (
    as_list,
    as_str,
    b64decode,
    bearer_token,
    dumps,
    error_message,
    media_from_url,
    texts_of,
    to_int,
)
from capsem_proxy.providers.base import ProviderAdapter
from capsem_proxy.providers.openai_request import decode_chat, decode_embeddings, decode_responses
from capsem_proxy.streaming.events import (
    Delta,
    EchoDelta,
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

__all__ = ["OpenAIAdapter"]

_ERRORS: dict[str, tuple[str, str | None]] = {
    ErrorKind.AUTHENTICATION: ("invalid_request_error", "invalid_api_key"),
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.NOT_FOUND: ("invalid_request_error", "not_found"),
    ErrorKind.TOO_LARGE: ("invalid_request_error", "request_too_large"),
    ErrorKind.PERMISSION: ("invalid_request_error", "policy_blocked"),
    ErrorKind.RATE_LIMIT: ("requests", "rate_limit_exceeded"),
    ErrorKind.UPSTREAM_UNAVAILABLE: ("server_error", "upstream_unavailable"),
    ErrorKind.UNAVAILABLE: ("server_error", "service_unavailable"),
    ErrorKind.TIMEOUT: ("server_error", "upstream_timeout"),
    ErrorKind.INTERNAL: ("server_error", "internal_error"),
}
_SYSTEM_ROLES = frozenset({"system", "developer"})
_AUDIO_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm16": "audio/pcm"}
_CHOICE_STRIDE = 1000
# Responses events that repeat the whole text of one content part (or of one reasoning part).
_TEXT_DONE_EVENTS = frozenset(
    {"response.output_text.done", "response.reasoning_summary_text.done", "response.reasoning_text.done"}
)


# ---------------------------------------------------------------------------- content parts


def _file_media(file_data: Any, file_id: Any, filename: Any, file_url: Any = None) -> MediaPart | None:
    """A `file` (chat) / `input_file` (Responses) part: inline data, else a URL or file id."""
    mime = ""
    if isinstance(filename, str) and filename:
        found = media_from_url(filename)
        mime = found.mime_type if found else ""
    if isinstance(file_data, str) and file_data:
        if file_data.startswith("data:"):
            return media_from_url(file_data, mime)
        return MediaPart(mime_type=mime or "application/octet-stream", data=b64decode(file_data))
    for ref in (file_url, file_id):
        if isinstance(ref, str) and ref:
            return media_from_url(ref, mime)
    return None


def _audio_media(audio: Any) -> MediaPart | None:
    if not isinstance(audio, dict):
        return None
    fmt = as_str(audio.get("format"))
    return MediaPart(mime_type=_AUDIO_MIME.get(fmt) or f"audio/{fmt or 'unknown'}", data=b64decode(audio.get("data")))


def _parts(content: Any, texts: list[str], media: list[MediaPart]) -> None:
    """Collect text and media from chat or Responses content (a string or a list of parts)."""
    if isinstance(content, str):
        if content:
            texts.append(content)
        return
    for part in as_list(content):
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        found: MediaPart | None = None
        if kind in ("text", "input_text", "output_text"):
            text = part.get("text")
            if isinstance(text, str) and text:
                texts.append(text)
        elif kind == "refusal":
            text = part.get("refusal")
            if isinstance(text, str) and text:
                texts.append(text)
        elif kind == "image_url":
            image = part.get("image_url")
            found = media_from_url(image.get("url") if isinstance(image, dict) else image)
        elif kind == "input_image":
            found = media_from_url(part.get("image_url") or part.get("file_id"))
        elif kind == "input_audio":
            found = _audio_media(part.get("input_audio"))
        elif kind == "file":
            spec = part.get("file")
            if isinstance(spec, dict):
                found = _file_media(spec.get("file_data"), spec.get("file_id"), spec.get("filename"))
        elif kind == "input_file":
            found = _file_media(part.get("file_data"), part.get("file_id"), part.get("filename"), part.get("file_url"))
        if found is not None:
            media.append(found)


def _tool_call(name: Any, raw: Any, call_id: Any) -> ToolUse:
    raw_arguments = raw if isinstance(raw, str) else (dumps(raw) if raw is not None else "")
    return ToolUse(
        name=as_str(name), arguments=parse_arguments(raw), call_id=as_str(call_id), raw_arguments=raw_arguments
    )


def _reasoning_text(item: dict[str, Any]) -> str:
    return "\n".join(texts_of(item.get("summary")) + texts_of(item.get("content")))


# ---------------------------------------------------------------------------- answers


def _chat_answer(body: dict[str, Any], answer: Answer) -> None:
    # Every choice is read (a request with `n` > 1 gets several): the client receives them all.
    choices = [choice for choice in as_list(body.get("choices")) if isinstance(choice, dict)]
    texts: list[str] = []
    thinking: list[str] = []
    for choice in choices:
        message = choice.get("message")
        if not isinstance(message, dict):
            continue
        choice_texts: list[str] = []
        _parts(message.get("content"), choice_texts, answer.media)
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            choice_texts.append(refusal)
        audio = message.get("audio")
        if isinstance(audio, dict) and isinstance(audio.get("transcript"), str) and audio["transcript"]:
            choice_texts.append(audio["transcript"])
        texts.extend(choice_texts)
        for key in ("reasoning_content", "reasoning"):
            reasoning = message.get(key)
            if isinstance(reasoning, str) and reasoning:
                thinking.append(reasoning)
        for item in as_list(message.get("tool_calls")):
            function = item.get("function") or item.get("custom") if isinstance(item, dict) else None
            if isinstance(function, dict):
                raw_args = function.get("arguments", function.get("input"))
                answer.tool_calls.append(_tool_call(function.get("name"), raw_args, item.get("id")))
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            answer.tool_calls.append(_tool_call(legacy.get("name"), legacy.get("arguments"), ""))
    answer.text = "\n".join(texts)
    answer.thinking = "\n".join(thinking)
    reason = choices[0].get("finish_reason") if choices else None
    answer.finish_reason = reason if isinstance(reason, str) else None
    _chat_usage(body, answer.usage)


def _chat_usage(body: dict[str, Any], usage: Usage) -> None:
    counts = body.get("usage")
    if isinstance(counts, dict):
        usage.input_tokens = to_int(counts.get("prompt_tokens"))
        usage.output_tokens = to_int(counts.get("completion_tokens"))


def _responses_finish(response: dict[str, Any]) -> str | None:
    status = response.get("status")
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if status == "incomplete" and isinstance(reason, str):
        return reason
    return status if isinstance(status, str) else None


def _responses_usage(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None
    return to_int(usage.get("input_tokens")), to_int(usage.get("output_tokens"))


def _responses_answer(body: dict[str, Any], answer: Answer) -> None:
    texts: list[str] = []
    thinking: list[str] = []
    for item in as_list(body.get("output")):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            _parts(item.get("content"), texts, answer.media)
        elif kind == "function_call":
            answer.tool_calls.append(_tool_call(item.get("name"), item.get("arguments"), item.get("call_id")))
        elif kind == "custom_tool_call":
            answer.tool_calls.append(_tool_call(item.get("name"), item.get("input"), item.get("call_id")))
        elif kind == "reasoning":
            text = _reasoning_text(item)
            if text:
                thinking.append(text)
    answer.text = "".join(texts)
    answer.thinking = "\n".join(thinking)
    answer.finish_reason = _responses_finish(body)
    answer.usage.input_tokens, answer.usage.output_tokens = _responses_usage(body.get("usage"))


# ---------------------------------------------------------------------------- streams


def _item_echoes(item: Any, index: int, out: list[Delta]) -> None:
    """What a finished output item repeats: each text part, reasoning part, or its call's arguments."""
    if not isinstance(item, dict):
        return
    kind = item.get("type")
    if kind == "message":
        for part in as_list(item.get("content")):
            if isinstance(part, dict):
                text = part.get("refusal") if part.get("type") == "refusal" else part.get("text")
                if isinstance(text, str) and text:
                    out.append(EchoDelta(text))
    elif kind == "reasoning":
        for text in texts_of(item.get("summary")) + texts_of(item.get("content")):
            out.append(EchoDelta(text, "thinking"))
    elif kind in ("function_call", "custom_tool_call"):
        arguments = item.get("arguments") if kind == "function_call" else item.get("input")
        out.append(EchoDelta(as_str(arguments), "tool", index))


def _parse_object(data: str) -> dict[str, Any] | UnreadableDelta | None:
    """An event's JSON object; None for what the SDK skips or stops at (no data, `[DONE]`)."""
    if data[:1] != "{":
        stripped = data.strip()
        if not stripped or stripped.startswith("[DONE]"):
            return None
    try:
        value = parse_answer_json(data)
    except UnreadableAnswer as exc:
        return UnreadableDelta(f"event data is {exc}")
    return value if isinstance(value, dict) else UnreadableDelta("event data is not a JSON object")


class _ChatStreamDecoder(StreamDecoder):
    """`data: {chat.completion.chunk}` events, ending with `data: [DONE]`."""

    __slots__ = ()
    text_events_alone = True
    # Random characters of random length in every chunk (`stream_options.include_obfuscation`).
    padding_fields = ("obfuscation",)
    # The stream's end, which the SDK stops at.
    silent_events = frozenset({b"data: [DONE]\n\n"})

    def feed(self, event: StreamEvent) -> list[Delta]:
        data = event.data
        if data[:1] == "{":
            # Usual case: a JSON object, read at once (what `_parse_object` would read first).
            try:
                chunk: dict[str, Any] | UnreadableDelta | None = orjson.loads(data)
            except orjson.JSONDecodeError:
                chunk = _parse_object(data)
        else:
            chunk = _parse_object(data)
        if chunk is None:
            return []
        if type(chunk) is UnreadableDelta:
            return [chunk]
        assert isinstance(chunk, dict)
        error = chunk.get("error")
        if error:
            return [ErrorDelta(error_message(error))]
        out: list[Delta] = []
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                if isinstance(choice, dict):
                    self._choice(choice, out)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out.append(UsageDelta(to_int(usage.get("prompt_tokens")), to_int(usage.get("completion_tokens"))))
        return out

    @staticmethod
    def _choice(choice: dict[str, Any], out: list[Delta]) -> None:
        delta = choice.get("delta")
        if type(delta) is dict and len(delta) == 1 and type(text := delta.get("content")) is str:
            # Usual case: a piece of text and nothing else (what the reading below makes of it).
            if text:
                out.append(TextDelta(text))
        elif isinstance(delta, dict) and delta:  # an empty delta (the finish event's) holds nothing
            text = delta.get("content")
            if text and isinstance(text, str):
                out.append(TextDelta(text))
            text = delta.get("refusal")
            if text and isinstance(text, str):
                out.append(TextDelta(text))
            text = delta.get("reasoning_content") or delta.get("reasoning")
            if text and isinstance(text, str):
                out.append(ThinkingDelta(text))
            calls = delta.get("tool_calls")
            if calls:
                offset = choice.get("index") or 0
                offset = offset * _CHOICE_STRIDE if type(offset) is int else 0
                for call in calls:
                    if not isinstance(call, dict):
                        continue
                    function = call.get("function")
                    function = function if isinstance(function, dict) else {}
                    index = call.get("index")
                    out.append(
                        ToolCallDelta(
                            index=(index if type(index) is int else 0) + offset,
                            call_id=as_str(call.get("id")),
                            name=as_str(function.get("name")),
                            arguments_fragment=as_str(function.get("arguments")),
                        )
                    )
            legacy = delta.get("function_call")
            if isinstance(legacy, dict):
                index = choice.get("index") or 0
                out.append(
                    ToolCallDelta(
                        index=index * _CHOICE_STRIDE if type(index) is int else 0,
                        name=as_str(legacy.get("name")),
                        arguments_fragment=as_str(legacy.get("arguments")),
                    )
                )
        reason = choice.get("finish_reason")
        if reason and isinstance(reason, str):
            out.append(FinishDelta(reason))


class _ResponsesStreamDecoder(StreamDecoder):
    """Responses API semantic events (`event: response.*`).

    The SDK reads every event by its data's `type`, whatever the `event:` line says; so does the
    decoder, and an event whose line and type disagree is refused as unreadable.
    """

    __slots__ = ()

    def feed(self, event: StreamEvent) -> list[Delta]:
        data = _parse_object(event.data)
        if data is None:
            return []
        if type(data) is UnreadableDelta:
            return [data]
        assert isinstance(data, dict)
        kind = data.get("type")
        name = event.event
        if isinstance(kind, str):
            if name is not None and name != kind:
                return [UnreadableDelta(f"event {name!r} carries data of type {kind!r}")]
            name = kind
        if name in ("response.output_text.delta", "response.refusal.delta"):
            delta = data.get("delta")
            return [TextDelta(delta)] if isinstance(delta, str) and delta else []
        if name in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            delta = data.get("delta")
            return [ThinkingDelta(delta)] if isinstance(delta, str) and delta else []
        if name in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            delta = data.get("delta")
            index = data.get("output_index")
            if not isinstance(delta, str) or not delta or type(index) is not int:
                return []
            return [ToolCallDelta(index=index, arguments_fragment=delta)]
        if name in _TEXT_DONE_EVENTS:
            text = data.get("text")
            part = "text" if name == "response.output_text.done" else "thinking"
            return [EchoDelta(text, part)] if isinstance(text, str) else []
        if name == "response.refusal.done":
            text = data.get("refusal")
            return [EchoDelta(text)] if isinstance(text, str) else []
        if name in ("response.content_part.done", "response.reasoning_summary_part.done"):
            content_part = data.get("part")
            if not isinstance(content_part, dict):
                return []
            part_text = content_part.get("refusal" if content_part.get("type") == "refusal" else "text")
            kind = "text" if name == "response.content_part.done" else "thinking"
            return [EchoDelta(part_text, kind)] if isinstance(part_text, str) else []
        if name in ("response.function_call_arguments.done", "response.custom_tool_call_input.done"):
            index = data.get("output_index")
            arguments = data.get("arguments") if name == "response.function_call_arguments.done" else data.get("input")
            if type(index) is not int or not isinstance(arguments, str):
                return []
            return [EchoDelta(arguments, "tool", index)]
        if name == "response.output_item.done":
            index = data.get("output_index")
            echoes: list[Delta] = []
            _item_echoes(data.get("item"), index if type(index) is int else 0, echoes)
            return echoes
        if name in ("response.created", "response.in_progress", "response.queued"):
            response = data.get("response")
            if isinstance(response, dict) and as_list(response.get("output")):
                # Responses open empty; output here would reach the client without any delta.
                return [UnreadableDelta("the response opened with output already in it")]
            return []
        if name == "response.output_item.added":
            item = data.get("item")
            index = data.get("output_index")
            if not isinstance(item, dict) or type(index) is not int:
                return []
            kind = item.get("type")
            if kind == "message" and as_list(item.get("content")):
                return [UnreadableDelta("an output item opened with content already in it")]
            if kind not in ("function_call", "custom_tool_call"):
                return []
            fragment = item.get("arguments") if kind == "function_call" else item.get("input")
            return [
                ToolCallDelta(
                    index=index,
                    call_id=as_str(item.get("call_id")),
                    name=as_str(item.get("name")),
                    arguments_fragment=as_str(fragment),
                )
            ]
        if name in ("response.completed", "response.incomplete", "response.failed"):
            response = data.get("response")
            if not isinstance(response, dict):
                return []
            out: list[Delta] = []
            if name == "response.failed":
                error = response.get("error")
                out.append(ErrorDelta(error_message(error) if error else "response failed"))
            else:
                for index, item in enumerate(as_list(response.get("output"))):
                    _item_echoes(item, index, out)
                reason = _responses_finish(response)
                if reason:
                    out.append(FinishDelta(reason))
            usage = response.get("usage")
            if isinstance(usage, dict):
                out.append(UsageDelta(*_responses_usage(usage)))
            return out
        if name == "error":
            message = data.get("message")
            if isinstance(message, str) and message:
                return [ErrorDelta(message)]
            return [ErrorDelta(error_message(data.get("error") or data))]
        return []


# ---------------------------------------------------------------------------- adapter


class OpenAIAdapter(ProviderAdapter):
    """OpenAI Chat Completions, Responses, Embeddings and Models."""

    name = "openai"
    tool_call_markers = (b'"tool_calls"', b"function_call", b"custom_tool_call")

    def decode_request(self, operation: str, body: Any, path_model: str = "") -> Exchange:
        """Decode a request body of `operation` (see the module docstring)."""
        exchange = Exchange(self.name, operation, path_model)  # provider, operation, model
        if operation == "models":
            return exchange
        if not isinstance(body, dict):
            raise ValueError("request body must be a JSON object")
        exchange.model = as_str(body.get("model")) or path_model
        exchange.stream = body.get("stream") is True
        system: list[str] = []
        if operation == "chat":
            decode_chat(body, exchange, system)
            # `max_tokens` is the older name; the newer one wins when both are sent.
            cap = to_int(body.get("max_completion_tokens"))
            exchange.max_output_tokens = cap if cap is not None else to_int(body.get("max_tokens"))
        elif operation == "responses":
            decode_responses(body, exchange, system)
            exchange.max_output_tokens = to_int(body.get("max_output_tokens"))
        elif operation == "embeddings":
            decode_embeddings(body, exchange)
        exchange.system = "\n".join(system)
        return exchange

    def decode_answer(self, operation: str, body: Any) -> Answer:
        """Decode a non-streamed chat completion or Responses object; other operations give an empty Answer."""
        answer = Answer()
        if isinstance(body, dict):
            if operation == "chat":
                _chat_answer(body, answer)
            elif operation == "responses":
                _responses_answer(body, answer)
        return answer

    def decode_usage(self, operation: str, body: Any) -> Usage:
        """The token counts of a chat completion or Responses object, and nothing else."""
        usage = Usage()
        if isinstance(body, dict):
            if operation == "chat":
                _chat_usage(body, usage)
            elif operation == "responses":
                usage.input_tokens, usage.output_tokens = _responses_usage(body.get("usage"))
        return usage

    def stream_decoder(self, operation: str) -> StreamDecoder:
        """A decoder for a chat or Responses stream (other operations do not stream)."""
        if operation == "chat":
            return _ChatStreamDecoder()
        if operation == "responses":
            return _ResponsesStreamDecoder()
        return NullStreamDecoder()

    def error_payload(self, status: int, message: str, kind: str) -> dict[str, Any]:
        """`{"error": {"message", "type", "code", "param"}}`, type and code by kind (see module docstring)."""
        found = _ERRORS.get(kind)
        error_type, code = found or ("server_error" if status >= 500 else "invalid_request_error", None)
        return {"error": {"message": message, "type": error_type, "code": code, "param": None}}

    def stream_error_event(self, operation: str, status: int, message: str, kind: str, *, sse: bool = True) -> bytes:
        """A chat `data: {"error": ...}` event, or a Responses `event: error`; both make the SDK raise."""
        error = self.error_payload(status, message, kind)["error"]
        if operation == "responses":
            payload = {
                "type": "error",
                "code": error["code"] or error["type"],
                "message": message,
                "param": None,
                "sequence_number": 0,
                "error": error,
            }
            return encode_event("error", payload)
        return encode_event(None, {"error": error})

    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The `Authorization: Bearer` key; "" when the header is malformed, None when absent."""
        value = headers.get("authorization")
        return None if value is None else bearer_token(value)
