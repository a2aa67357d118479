"""OpenAI chat completions served by Gemini's generateContent (Gemini API or Vertex AI).

Request: system and developer messages become `systemInstruction`; user parts become text,
`inlineData` (data URLs) or `fileData` (other URLs) parts; an assistant's tool calls become
`functionCall` parts and `role: tool` results `functionResponse` parts, named after the call they
answer (Gemini matches results by name). Answer: text parts (thoughts left out) and function calls
become the message content and `tool_calls` (ids made up when Gemini gives none), `finishReason`
the finish reason, `usageMetadata` the usage; streamed answers are asked for as SSE (`alt=sse`)
and each event becomes chat completion chunks.
"""

from __future__ import annotations

from os import urandom
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

__all__ = ["OpenAIToGemini"]

# Looked up with whatever the parsed answer holds (None when the field is missing), as _STATUS_BY_GOOGLE is.
_FINISH: dict[object, str] = {
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_STATUS_BY_GOOGLE: dict[object, str] = {"RESOURCE_EXHAUSTED": "rate_limit_exceeded", "UNAVAILABLE": "unavailable"}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            source_kind, media_type, data = image_part(part)
            if source_kind == "base64":
                parts.append({"inlineData": {"mimeType": media_type, "data": data}})
            else:
                parts.append({"fileData": {"mimeType": _guess_image_type(data), "fileUri": data}})
        else:
            raise TranslationError(f"a {kind!r} content part cannot be sent to a Gemini upstream")
    return parts


def _guess_image_type(url: str) -> str:
    lowered = url.lower().split("?", 1)[0]
    for suffix, media_type in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp")):
        if lowered.endswith(suffix):
            return media_type
    return "image/jpeg"


def _call_id(part: dict[str, Any]) -> str:
    given = (part.get("functionCall") or {}).get("id")
    return given if isinstance(given, str) and given else "call_" + urandom(12).hex()


class OpenAIToGemini(Translation):
    """One OpenAI chat request served by a Gemini upstream."""

    def __init__(self) -> None:
        self.include_usage = False
        self._splitter = SSESplitter()
        self._writer: ChunkWriter | None = None
        self._usage = (0, 0)
        self._called = False
        self._finished = False

    def request(self, body: bytes, model: str) -> bytes:
        chat = load_request(body)
        system: list[str] = []
        contents: list[dict[str, Any]] = []
        call_names: dict[str, str] = {}

        def add(role: str, parts: list[dict[str, Any]]) -> None:
            append_turn(contents, role, parts, "parts")

        for message in chat["messages"]:
            if not isinstance(message, dict):
                raise TranslationError("every message must be an object")
            role = message.get("role")
            content = message.get("content")
            if role in ("system", "developer"):
                system.append(text_of(content))
            elif role == "user":
                add("user", _parts(content))
            elif role == "assistant":
                parts = _parts(content) if content else []
                for call in message.get("tool_calls") or []:
                    name = (call.get("function") or {}).get("name", "")
                    call_names[call.get("id", "")] = name
                    parts.append({"functionCall": {"name": name, "args": tool_arguments(call)}})
                add("model", parts)
            elif role == "tool":
                result_text = text_of(content)
                try:
                    result = orjson.loads(result_text)
                except orjson.JSONDecodeError:
                    result = result_text
                name = call_names.get(message.get("tool_call_id", ""), message.get("name") or "tool")
                response = result if isinstance(result, dict) else {"content": result}
                add("user", [{"functionResponse": {"name": name, "response": response}}])
            else:
                raise TranslationError(f"a {role!r} message cannot be sent to a Gemini upstream")
        out: dict[str, Any] = {"contents": contents}
        if system:
            out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        config: dict[str, Any] = {}
        cap = chat.get("max_completion_tokens") or chat.get("max_tokens")
        if isinstance(cap, int) and cap > 0:
            config["maxOutputTokens"] = cap
        for name, gemini_name in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed")):
            if chat.get(name) is not None:
                config[gemini_name] = chat[name]
        stop = chat.get("stop")
        if stop:
            config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        if (chat.get("response_format") or {}).get("type") == "json_object":
            config["responseMimeType"] = "application/json"
        if config:
            out["generationConfig"] = config
        tools = chat.get("tools")
        if tools:
            declarations = []
            for tool in tools:
                function = tool.get("function") if isinstance(tool, dict) else None
                if not isinstance(function, dict):
                    continue
                declaration: dict[str, Any] = {
                    "name": function.get("name"), "description": function.get("description", "")
                }
                if function.get("parameters"):
                    declaration["parameters"] = function["parameters"]
                declarations.append(declaration)
            out["tools"] = [{"functionDeclarations": declarations}]
            choice = chat.get("tool_choice")
            if choice in _TOOL_MODES:
                out["toolConfig"] = {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
            elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
                out["toolConfig"] = {
                    "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
                }
        if chat.get("stream") is True:
            self.stream = True
            self.include_usage = bool((chat.get("stream_options") or {}).get("include_usage"))
        return orjson.dumps(out)

    def answer(self, body: bytes) -> bytes:
        try:
            response = orjson.loads(body)
        except orjson.JSONDecodeError:
            return openai_error(502, "the Gemini upstream's answer is not JSON")
        candidate = (response.get("candidates") or [{}])[0]
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for part in (candidate.get("content") or {}).get("parts") or []:
            if "text" in part and not part.get("thought"):
                texts.append(part["text"])
            elif "functionCall" in part:
                call = part["functionCall"]
                arguments = orjson.dumps(call.get("args") or {}).decode()
                tool_calls.append(
                    {"id": _call_id(part), "type": "function",
                     "function": {"name": call.get("name", ""), "arguments": arguments}}
                )
        finish = self._finish_reason(candidate, response, bool(tool_calls))
        prompt, output = _usage(response.get("usageMetadata") or {})
        return completion(
            new_completion_id(), response.get("modelVersion", ""), "".join(texts) if texts else None, tool_calls,
            finish, usage_of(prompt, output),
        )

    def error(self, status: int, body: bytes) -> bytes:
        try:
            error = orjson.loads(body)
            if isinstance(error, list) and error:
                error = error[0]
            error = error.get("error") or {}
            message = error.get("message") or f"the Gemini upstream answered HTTP {status}"
            code = _STATUS_BY_GOOGLE.get(error.get("status"), error.get("status"))
        except (orjson.JSONDecodeError, AttributeError):
            message, code = f"the Gemini upstream answered HTTP {status}", None
        return openai_error(status, message, code)

    def feed(self, chunk: bytes) -> bytes:
        events = self._splitter.feed_events(chunk)
        if len(events) == 1:
            return self._event(events[0])
        return b"".join([self._event(raw) for raw in events])

    def end(self) -> bytes:
        out = b"".join(self._event(raw) for raw in self._splitter.finish())
        writer = self._writer or ChunkWriter(self.include_usage)
        if writer.done:
            return out
        if not self._finished:
            out += writer.delta({}, "tool_calls" if self._called else "stop")
        return out + writer.usage(*self._usage) + writer.finish()

    def _event(self, raw: bytes) -> bytes:
        response = event_json(raw)
        if not isinstance(response, dict):
            return b""
        writer = self._writer
        out = b""
        if writer is None:
            writer = self._writer = ChunkWriter(self.include_usage)
            writer.model = response.get("modelVersion", "")
            out += writer.delta({"role": "assistant", "content": ""})
        if writer.done:
            return b""
        if "error" in response:
            error = response.get("error") or {}
            return out + writer.error(error.get("code") or 500, error.get("message", ""))
        if response.get("usageMetadata"):
            self._usage = _usage(response["usageMetadata"])
        candidate = (response.get("candidates") or [{}])[0]
        for part in (candidate.get("content") or {}).get("parts") or []:
            if "text" in part and not part.get("thought"):
                if part["text"]:
                    out += writer.text(part["text"])
            elif "functionCall" in part:
                call = part["functionCall"]
                self._called = True
                arguments = orjson.dumps(call.get("args") or {}).decode()
                out += writer.tool_start(_call_id(part), call.get("name", ""), arguments)[1]
        if candidate.get("finishReason") or (response.get("promptFeedback") or {}).get("blockReason"):
            self._finished = True
            out += writer.delta({}, self._finish_reason(candidate, response, self._called))
        return out

    @staticmethod
    def _finish_reason(candidate: dict[str, Any], response: dict[str, Any], called: bool) -> str:
        if (response.get("promptFeedback") or {}).get("blockReason"):
            return "content_filter"
        reason = _FINISH.get(candidate.get("finishReason"), "stop")
        return "tool_calls" if called and reason == "stop" else reason


def _usage(metadata: dict[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens; Gemini counts thinking apart, OpenAI within completion tokens."""
    output = (metadata.get("candidatesTokenCount") or 0) + (metadata.get("thoughtsTokenCount") or 0)
    return metadata.get("promptTokenCount") or 0, output
