"""Gemini (Generative Language API) wire format.

Operations: "generate" (POST …/models/{model}:generateContent), "stream_generate"
(…:streamGenerateContent, `?alt=sse` or a JSON array), "count_tokens" (…:countTokens) and
"models" (GET …/models).

Decoding choices (requests: `gemini_request`, which lists every field and its place):
- Keys are read in camelCase, else snake_case, at every level (google-genai itself mixes
  them, e.g. `inlineData: {"mime_type": …}`), and base64 may be standard or URL-safe.
- Roles: "model" → assistant, anything else → user. `functionResponse` and
  `codeExecutionResult` parts are split out into a message of role "tool" placed before the
  rest of their content; `executableCode` is a call of the "code_execution" tool.
- The model is the one named in the URL, without a "models/" prefix (else the body's).
- countTokens bodies wrapped in `generateContentRequest` are unwrapped (top-level `contents`
  are read too).
- In streams, each `functionCall` part is one complete ToolCallDelta (its arguments as
  JSON), indexes counting up across the stream; every candidate is decoded.

Errors the proxy makes: `{"error": {"code": <HTTP status>, "message": m, "status": S}}`,
S the google.rpc status name by kind: invalid_request → INVALID_ARGUMENT,
authentication → UNAUTHENTICATED, permission → PERMISSION_DENIED, not_found → NOT_FOUND,
too_large → INVALID_ARGUMENT (what Google answers for oversized payloads),
rate_limit → RESOURCE_EXHAUSTED, internal → INTERNAL, upstream_unavailable and
unavailable → UNAVAILABLE, timeout → DEADLINE_EXCEEDED; unknown kinds by HTTP status.
In an SSE stream the error is `data: {"error": …}` framed with CRLF like Google's own
events; google-genai raises `errors.APIError` on any chunk starting with `{"error":`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from capsem_proxy.answer_decoding import BLANK_EVENT, UnreadableAnswer, event_data_json, parse_answer_json
from capsem_proxy.errors import ErrorKind
from capsem_proxy.exchange import Answer, Exchange, MediaPart, ToolUse, Usage
from capsem_proxy.providers._decode_helpers import (
    as_list,
    as_str,
    b64decode,
    bearer_token,
    dumps,
    error_message,
    get,
    media_from_url,
    to_int,
    valid_key,
)
from capsem_proxy.providers.base import ConflictingKeys, ProviderAdapter
from capsem_proxy.providers.gemini_request import decode_generate
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

__all__ = ["GeminiAdapter"]

_STATUS_BY_KIND = {
    ErrorKind.INVALID_REQUEST: "INVALID_ARGUMENT",
    ErrorKind.AUTHENTICATION: "UNAUTHENTICATED",
    ErrorKind.PERMISSION: "PERMISSION_DENIED",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.TOO_LARGE: "INVALID_ARGUMENT",
    ErrorKind.RATE_LIMIT: "RESOURCE_EXHAUSTED",
    ErrorKind.INTERNAL: "INTERNAL",
    ErrorKind.UPSTREAM_UNAVAILABLE: "UNAVAILABLE",
    ErrorKind.UNAVAILABLE: "UNAVAILABLE",
    ErrorKind.TIMEOUT: "DEADLINE_EXCEEDED",
}
_STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _inline_media(inline: dict[str, Any]) -> MediaPart:
    mime = as_str(get(inline, "mimeType", "mime_type")) or "application/octet-stream"
    return MediaPart(mime_type=mime, data=b64decode(inline.get("data")))


def _file_media(file_data: dict[str, Any]) -> MediaPart | None:
    return media_from_url(get(file_data, "fileUri", "file_uri"), as_str(get(file_data, "mimeType", "mime_type")))


def _tool_call(call: dict[str, Any]) -> ToolUse:
    args = call.get("args")
    args = args if isinstance(args, dict) else {}
    return ToolUse(
        name=as_str(call.get("name")), arguments=args, call_id=as_str(call.get("id")), raw_arguments=dumps(args)
    )


def _strip_models(name: Any) -> str:
    model = as_str(name)
    return model[7:] if model.startswith("models/") else model


def _add_response(body: dict[str, Any], answer: Answer, texts: list[str], thinking: list[str]) -> None:
    """The parts, finish reason and usage of one GenerateContentResponse, added to `answer`."""
    candidates = [candidate for candidate in as_list(body.get("candidates")) if isinstance(candidate, dict)]
    for candidate in candidates:
        for part in _parts_of(candidate):
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                (thinking if part.get("thought") is True else texts).append(text)
            elif isinstance(call := get(part, "functionCall", "function_call"), dict):
                answer.tool_calls.append(_tool_call(call))
            elif isinstance(inline := get(part, "inlineData", "inline_data"), dict):
                answer.media.append(_inline_media(inline))
            elif isinstance(file_data := get(part, "fileData", "file_data"), dict):
                found = _file_media(file_data)
                if found is not None:
                    answer.media.append(found)
    reason = get(candidates[0], "finishReason", "finish_reason") if candidates else None
    if isinstance(reason, str):
        answer.finish_reason = reason
    elif answer.finish_reason is None:
        answer.finish_reason = _block_reason(body)
    _add_usage(body, answer.usage)


def _add_usage(body: dict[str, Any], usage: Usage) -> None:
    """The counts of one GenerateContentResponse over those of the responses before it."""
    input_tokens, output_tokens = _usage(get(body, "usageMetadata", "usage_metadata"))
    usage.input_tokens = input_tokens if input_tokens is not None else usage.input_tokens
    usage.output_tokens = output_tokens if output_tokens is not None else usage.output_tokens


def _parts_of(candidate: dict[str, Any]) -> list[Any]:
    content = candidate.get("content")
    return as_list(content.get("parts")) if isinstance(content, dict) else []


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None
    return to_int(get(usage, "promptTokenCount", "prompt_token_count")), to_int(
        get(usage, "candidatesTokenCount", "candidates_token_count")
    )


def _block_reason(body: dict[str, Any]) -> str | None:
    feedback = get(body, "promptFeedback", "prompt_feedback")
    reason = get(feedback, "blockReason", "block_reason") if isinstance(feedback, dict) else None
    return reason if isinstance(reason, str) else None


class _GenerateStreamDecoder(StreamDecoder):
    """One GenerateContentResponse per event (SSE `data:` or JSON-array element)."""

    __slots__ = ("_next_index",)
    # `_next_index` numbers function calls only.
    text_events_alone = True

    def __init__(self) -> None:
        self._next_index = 0

    def feed(self, event: StreamEvent) -> list[Delta]:
        try:
            data = event_data_json(event.data)
        except UnreadableAnswer as exc:
            return [UnreadableDelta(f"event data is {exc}")]
        if data is BLANK_EVENT:
            return []
        out: list[Delta] = []
        if isinstance(data, dict):
            self._response(data, out)
        elif isinstance(data, list):
            for item in data:
                if isinstance(item, dict):
                    self._response(item, out)
                else:
                    out.append(UnreadableDelta("a stream element holds a value that is not a response object"))
        else:
            out.append(UnreadableDelta("event data is not a response object"))
        return out

    def feed_usage(self, event: StreamEvent) -> list[Delta]:
        """Gemini reports counts in every event: an ordinary response object is read for them
        alone, anything else as `feed` reads it."""
        data = event.data
        if not data.strip():
            return []
        try:
            response = parse_answer_json(data)
        except UnreadableAnswer as exc:
            return [UnreadableDelta(f"event data is {exc}")]
        if not isinstance(response, dict) or response.get("error"):
            return self.feed(event)
        usage = get(response, "usageMetadata", "usage_metadata")
        return [UsageDelta(*_usage(usage))] if isinstance(usage, dict) else []

    def _response(self, response: dict[str, Any], out: list[Delta]) -> None:
        error = response.get("error")
        if error:
            out.append(ErrorDelta(error_message(error)))
            return
        candidates = response.get("candidates")
        if isinstance(candidates, list):
            for candidate in candidates:
                if isinstance(candidate, dict):
                    self._candidate(candidate, out)
        elif (reason := _block_reason(response)) is not None:
            out.append(FinishDelta(reason))
        usage = get(response, "usageMetadata", "usage_metadata")
        if isinstance(usage, dict):
            out.append(UsageDelta(*_usage(usage)))

    def _candidate(self, candidate: dict[str, Any], out: list[Delta]) -> None:
        for part in _parts_of(candidate):
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                if text:
                    out.append(ThinkingDelta(text) if part.get("thought") is True else TextDelta(text))
            elif isinstance(call := get(part, "functionCall", "function_call"), dict):
                args = call.get("args")
                try:
                    fragment = orjson.dumps(args if isinstance(args, dict) else {}).decode()
                except TypeError:
                    fragment = "{}"
                out.append(
                    ToolCallDelta(
                        index=self._next_index,
                        call_id=as_str(call.get("id")),
                        name=as_str(call.get("name")),
                        arguments_fragment=fragment,
                    )
                )
                self._next_index += 1
        reason = get(candidate, "finishReason", "finish_reason")
        if isinstance(reason, str) and reason:
            out.append(FinishDelta(reason))


class GeminiAdapter(ProviderAdapter):
    """Gemini generateContent, streamGenerateContent, countTokens and models."""

    name = "gemini"
    tool_call_markers = (b"functionCall", b"function_call")

    def decode_request(self, operation: str, body: Any, path_model: str = "") -> Exchange:
        """Decode a generate / stream / countTokens / embed body (see `gemini_request`); the model
        comes from the URL."""
        # provider, operation, model, stream: positional (no dict of keywords)
        exchange = Exchange(self.name, operation, _strip_models(path_model), operation == "stream_generate")
        if operation == "models":
            return exchange
        if not isinstance(body, dict):
            raise ValueError("request body must be a JSON object")
        if not exchange.model:
            exchange.model = _strip_models(body.get("model"))
        decode_generate(operation, body, exchange)
        return exchange

    def decode_answer(self, operation: str, body: Any) -> Answer:
        """Decode a GenerateContentResponse (every candidate: a request may ask for several), or
        a JSON array of them (a streamed answer read whole); other operations give an empty Answer."""
        answer = Answer()
        if operation not in ("generate", "stream_generate"):
            return answer
        responses = [body] if isinstance(body, dict) else [item for item in as_list(body) if isinstance(item, dict)]
        texts: list[str] = []
        thinking: list[str] = []
        for response in responses:
            _add_response(response, answer, texts, thinking)
        answer.text = "".join(texts)
        answer.thinking = "".join(thinking)
        return answer

    def decode_usage(self, operation: str, body: Any) -> Usage:
        """The token counts of a GenerateContentResponse (or of a JSON array of them), and nothing else."""
        usage = Usage()
        if operation not in ("generate", "stream_generate"):
            return usage
        responses = [body] if isinstance(body, dict) else [item for item in as_list(body) if isinstance(item, dict)]
        for response in responses:
            _add_usage(response, usage)
        return usage

    def stream_decoder(self, operation: str) -> StreamDecoder:
        """A decoder for streamGenerateContent (SSE or JSON array: each event is one response)."""
        return _GenerateStreamDecoder() if operation in ("stream_generate", "generate") else NullStreamDecoder()

    def error_payload(self, status: int, message: str, kind: str) -> dict[str, Any]:
        """`{"error": {"code", "message", "status"}}` (see the module docstring)."""
        rpc = _STATUS_BY_KIND.get(kind) or _STATUS_BY_CODE.get(status) or ("INTERNAL" if status >= 500 else "UNKNOWN")
        return {"error": {"code": status, "message": message, "status": rpc}}

    def stream_error_event(self, operation: str, status: int, message: str, kind: str, *, sse: bool = True) -> bytes:
        """`data: {"error": …}` + CRLF CRLF for SSE, or the bare JSON object for the JSON-array stream."""
        payload = self.error_payload(status, message, kind)
        if sse:
            return encode_event(None, payload, b"\r\n")
        return orjson.dumps(payload)

    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """`x-goog-api-key`, else the `key` query parameter; "" when malformed, None when absent.
        Both with different keys, or either beside an `Authorization` bearer (Google accepts OAuth
        tokens too): ConflictingKeys, since the key the tenant is derived from might not be the one
        Google bills."""
        header = headers.get("x-goog-api-key")
        param = query.get("key")
        if header is not None and param is not None and valid_key(header) != valid_key(param):
            raise ConflictingKeys("x-goog-api-key and the key query parameter carry different keys")
        value = header if header is not None else param
        if value is None:
            return None
        authorization = headers.get("authorization")
        if authorization is not None and bearer_token(authorization) != valid_key(value):
            raise ConflictingKeys("the request carries both an API key and an Authorization credential")
        return valid_key(value)
