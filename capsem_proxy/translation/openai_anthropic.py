"""OpenAI chat completions served by Anthropic's Messages API.

Request: system and developer messages become `system`; user content parts become text and image
blocks; an assistant's tool calls become `tool_use` blocks and `role: tool` results `tool_result`
blocks of the next user turn (consecutive turns of one role are merged, as Anthropic requires
alternation); `max_tokens` is required there (4096 when the client set none). Answer: text and
`tool_use` blocks become the message content and `tool_calls`, `stop_reason` the finish reason,
token counts the usage; streamed events become chat completion chunks.
"""

from __future__ import annotations

from typing import Any

import orjson

from capsem_proxy.streaming.sse import SSESplitter
from capsem_proxy.translation.base import Translation, TranslationError, event_json
from capsem_proxy.translation.openai_shapes import (
    ChunkWriter,
    append_turn,
    completion,
    image_part,
    load_request,
    new_completion_id,
    openai_error,
    text_of,
    tool_arguments,
    usage_of,
)

__all__ = ["OpenAIToAnthropic"]

DEFAULT_MAX_TOKENS = 4096
# Events whose name says they carry nothing for the client (Anthropic names each event by its type).
_IGNORED_EVENTS = (b"event: ping\n", b"event: content_block_stop\n")
# A text delta as Anthropic writes it: HEAD, the block's index, MARK, the text as a JSON string, TAIL.
_TEXT_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_DELTA_MARK = b',"delta":{"type":"text_delta","text":'
_TEXT_DELTA_TAIL = b"}}\n\n"
# Looked up with whatever the parsed answer holds (None when the field is missing).
_FINISH: dict[object, str] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "tool_use": "tool_calls", "refusal": "content_filter",
}


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            source_kind, media_type, data = image_part(part)
            source = (
                {"type": "base64", "media_type": media_type, "data": data}
                if source_kind == "base64"
                else {"type": "url", "url": data}
            )
            blocks.append({"type": "image", "source": source})
        else:
            raise TranslationError(f"a {kind!r} content part cannot be sent to an Anthropic upstream")
    return blocks


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = None
    if choice == "auto":
        result = {"type": "auto"}
    elif choice == "none":
        result = {"type": "none"}
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            result = {"type": "tool", "name": name}
    if parallel is False:
        result = result or {"type": "auto"}
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result


class OpenAIToAnthropic(Translation):
    """One OpenAI chat request served by an Anthropic upstream."""

    def __init__(self) -> None:
        self.include_usage = False
        self._splitter = SSESplitter()
        self._writer: ChunkWriter | None = None
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index
        self._input_tokens = 0
        self._output_tokens = 0
        self._finish: str | None = None

    def request(self, body: bytes, model: str) -> bytes:
        chat = load_request(body)
        system: list[str] = []
        messages: list[dict[str, Any]] = []

        def add(role: str, blocks: list[dict[str, Any]]) -> None:
            append_turn(messages, role, blocks, "content")

        for message in chat["messages"]:
            if not isinstance(message, dict):
                raise TranslationError("every message must be an object")
            role = message.get("role")
            content = message.get("content")
            if role in ("system", "developer"):
                system.append(text_of(content))
            elif role == "user":
                add("user", _content_blocks(content))
            elif role == "assistant":
                blocks = _content_blocks(content) if content else []
                for call in message.get("tool_calls") or []:
                    function = call.get("function") or {}
                    blocks.append(
                        {"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                         "input": tool_arguments(call)}
                    )
                add("assistant", blocks)
            elif role == "tool":
                add("user", [{"type": "tool_result", "tool_use_id": message.get("tool_call_id"),
                              "content": text_of(content)}])
            else:
                raise TranslationError(f"a {role!r} message cannot be sent to an Anthropic upstream")
        out: dict[str, Any] = {"model": model, "messages": messages}
        cap = chat.get("max_completion_tokens") or chat.get("max_tokens")
        out["max_tokens"] = cap if isinstance(cap, int) and cap > 0 else DEFAULT_MAX_TOKENS
        if system:
            out["system"] = "\n\n".join(system)
        for name in ("temperature", "top_p"):
            if chat.get(name) is not None:
                out[name] = chat[name]
        stop = chat.get("stop")
        if stop:
            out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        tools = chat.get("tools")
        if tools:
            out["tools"] = [
                {
                    "name": (tool.get("function") or {}).get("name"),
                    "description": (tool.get("function") or {}).get("description", ""),
                    "input_schema": (tool.get("function") or {}).get("parameters")
                    or {"type": "object", "properties": {}},
                }
                for tool in tools
                if isinstance(tool, dict) and tool.get("type", "function") == "function"
            ]
        choice = _tool_choice(chat.get("tool_choice"), chat.get("parallel_tool_calls"))
        if choice is not None and tools:
            out["tool_choice"] = choice
        user = chat.get("user")
        if isinstance(user, str) and user:
            out["metadata"] = {"user_id": user}
        if chat.get("stream") is True:
            self.stream = True
            out["stream"] = True
            self.include_usage = bool((chat.get("stream_options") or {}).get("include_usage"))
        return orjson.dumps(out)

    def answer(self, body: bytes) -> bytes:
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return openai_error(502, "the Anthropic upstream's answer is not JSON")
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in message.get("content") or []:
            if block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                tool_calls.append(
                    {"id": block.get("id"), "type": "function",
                     "function": {"name": block.get("name"), "arguments": arguments}}
                )
        usage = message.get("usage") or {}
        prompt = _prompt_tokens(usage)
        return completion(
            new_completion_id(), message.get("model", ""), "".join(texts) if texts else None, tool_calls,
            _FINISH.get(message.get("stop_reason"), "stop"), usage_of(prompt, usage.get("output_tokens") or 0),
        )

    def error(self, status: int, body: bytes) -> bytes:
        try:
            error = orjson.loads(body).get("error") or {}
            message = error.get("message") or f"the Anthropic upstream answered HTTP {status}"
            code = error.get("type")
        except (orjson.JSONDecodeError, AttributeError):
            message, code = f"the Anthropic upstream answered HTTP {status}", None
        return openai_error(status, message, code)

    def feed(self, chunk: bytes) -> bytes:
        events = self._splitter.feed_events(chunk)
        if len(events) == 1:
            return self._event(events[0])
        return b"".join([self._event(raw) for raw in events])

    def end(self) -> bytes:
        out = b"".join(self._event(raw) for raw in self._splitter.finish())
        writer = self._writer or ChunkWriter(self.include_usage)
        return out + writer.finish()

    def _event(self, raw: bytes) -> bytes:
        if raw.startswith(_IGNORED_EVENTS):
            return b""  # nothing an OpenAI stream says, not worth parsing
        if raw.startswith(_TEXT_DELTA_HEAD) and self._writer is not None and not self._writer.done:
            text = _delta_text(raw)
            if text is not None:
                return self._writer.text(text)
        data = event_json(raw)
        if not isinstance(data, dict):
            return b""
        kind = data.get("type")
        writer = self._writer
        if writer is None:
            writer = self._writer = ChunkWriter(self.include_usage)
        if writer.done:
            return b""
        if kind == "content_block_delta":  # the bulk of a stream: first
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return writer.text(delta.get("text", ""))
            if delta.get("type") == "input_json_delta":
                tool = self._tool_index.get(data.get("index", 0))
                partial = delta.get("partial_json", "")
                return writer.tool_arguments(tool, partial) if tool is not None and partial else b""
            return b""
        if kind == "message_start":
            message = data.get("message") or {}
            writer.model = message.get("model", "")
            usage = message.get("usage") or {}
            self._input_tokens = _prompt_tokens(usage)
            self._output_tokens = usage.get("output_tokens") or 0
            return writer.delta({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index, out = writer.tool_start(block.get("id", ""), block.get("name", ""))
                self._tool_index[data.get("index", 0)] = index
                return out
            if block.get("type") == "text" and block.get("text"):
                return writer.text(block["text"])
            return b""
        if kind == "message_delta":
            usage = data.get("usage") or {}
            self._output_tokens = usage.get("output_tokens") or self._output_tokens
            if usage.get("input_tokens"):
                self._input_tokens = _prompt_tokens(usage)
            self._finish = _FINISH.get((data.get("delta") or {}).get("stop_reason"), "stop")
            return writer.delta({}, self._finish)
        if kind == "message_stop":
            return writer.usage(self._input_tokens, self._output_tokens) + writer.finish()
        if kind == "error":
            error = data.get("error") or {}
            return writer.error(529 if error.get("type") == "overloaded_error" else 500, error.get("message", ""))
        return b""


def _delta_text(raw: bytes) -> str | None:
    """The text of a text delta event spelled exactly as Anthropic writes one, read without parsing
    the event's object; None for any other spelling (the caller parses it)."""
    mark = raw.find(_TEXT_DELTA_MARK, len(_TEXT_DELTA_HEAD))
    if mark == -1 or not raw[len(_TEXT_DELTA_HEAD) : mark].isdigit() or not raw.endswith(_TEXT_DELTA_TAIL):
        return None
    try:
        text = orjson.loads(raw[mark + len(_TEXT_DELTA_MARK) : -len(_TEXT_DELTA_TAIL)])
    except orjson.JSONDecodeError:
        return None
    return text if isinstance(text, str) else None


def _prompt_tokens(usage: dict[str, Any]) -> int:
    """Anthropic counts cached prompt tokens apart; OpenAI's prompt_tokens include them."""
    return sum(usage.get(name) or 0 for name in ("input_tokens", "cache_creation_input_tokens",
                                                 "cache_read_input_tokens"))
