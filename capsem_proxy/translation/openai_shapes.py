"""The OpenAI side of every translation: reading a chat completion request's parts, and writing
chat completions, their stream chunks and errors as OpenAI's SDK parses them."""

from __future__ import annotations

import time
from os import urandom
from typing import Any

import orjson

from capsem_proxy.translation.base import TranslationError

__all__ = [
    "ChunkWriter",
    "append_turn",
    "completion",
    "image_part",
    "load_request",
    "new_completion_id",
    "openai_error",
    "text_of",
    "tool_arguments",
    "usage_of",
]

_DONE = b"data: [DONE]\n\n"
# Where a text delta's chunk splits around its text: `..."delta":{"content":` TEXT `},...`.
_TEXT_MARK = b'"delta":{"content":'
_TEXT_TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'
# OpenAI error types by HTTP status, as its SDK maps them to exceptions.
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error"}


def append_turn(turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]], key: str) -> None:
    """Add `items` as a turn of `role`, merged into the last turn when it has the same role (Anthropic
    and Gemini both want user and model turns to alternate); `key` names the turn's list of items."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def load_request(body: bytes) -> dict[str, Any]:
    """The client's chat request as a JSON object; TranslationError otherwise."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TranslationError(f"the request body is not JSON: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("messages"), list):
        raise TranslationError("a chat request needs a messages list")
    if parsed.get("n") not in (None, 1):
        raise TranslationError("only one choice (n: 1) can be asked of an upstream of another API")
    return parsed


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def image_part(part: dict[str, Any]) -> tuple[str, str, str]:
    """An `image_url` part as ("base64", media type, data) or ("url", "", url)."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise TranslationError("an image_url part has no url")
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";", 1)[0] or "image/png"
        if ";base64" not in head:
            raise TranslationError("an inline image must be base64-encoded")
        return "base64", media_type, data
    return "url", "", url


def tool_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """The parsed arguments of an assistant message's tool call (an object; {} when empty)."""
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError as exc:
        raise TranslationError(f"tool call {call.get('id')!r} has arguments that are not JSON") from exc
    return arguments if isinstance(arguments, dict) else {"value": arguments}


def new_completion_id() -> str:
    return "chatcmpl-" + urandom(12).hex()


def completion(
    completion_id: str,
    model: str,
    text: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: dict[str, int] | None,
) -> bytes:
    """A whole chat completion."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def usage_of(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def openai_error(status: int, message: str, code: str | None = None) -> bytes:
    """An OpenAI error body for an upstream's error answer."""
    error_type = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}})


class ChunkWriter:
    """Writes one streamed chat completion's chunks as SSE events.

    A text delta, the bulk of a stream, is written from a byte template of its chunk (every field
    but the text is fixed for the stream), so only the text is encoded per event; the bytes are
    those `orjson.dumps` gives the whole chunk.
    """

    __slots__ = ("_text_head", "_text_model", "completion_id", "created", "done", "include_usage", "model",
                 "tool_count")

    def __init__(self, include_usage: bool) -> None:
        self.completion_id = new_completion_id()
        self.created = int(time.time())
        self.model = ""
        self.include_usage = include_usage
        self.tool_count = 0
        self.done = False
        self._text_head = b""
        self._text_model: str | None = None  # the model `_text_head` was written for

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def text(self, text: str) -> bytes:
        """A delta of answer text: the same bytes as `delta({"content": text})`."""
        if self._text_model != self.model:
            head = self._chunk([{"index": 0, "delta": {"content": ""}, "logprobs": None, "finish_reason": None}])
            self._text_head = head[: head.rindex(_TEXT_MARK) + len(_TEXT_MARK)]
            self._text_model = self.model
        return self._text_head + orjson.dumps(text) + _TEXT_TAIL

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        if not self.include_usage:
            return b""
        return self._chunk([], usage_of(prompt_tokens, completion_tokens))

    def tool_start(self, call_id: str, name: str, arguments: str = "") -> tuple[int, bytes]:
        index = self.tool_count
        self.tool_count += 1
        call = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        return index, self.delta({"tool_calls": [call]})

    def tool_arguments(self, index: int, arguments: str) -> bytes:
        return self.delta({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def error(self, status: int, message: str) -> bytes:
        """An error event: OpenAI's SDK raises APIError on a chunk holding `error`."""
        self.done = True
        return b"data: " + openai_error(status, message) + b"\n\n"

    def finish(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        return _DONE

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"
