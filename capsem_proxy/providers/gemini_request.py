"""Gemini request bodies (generateContent, streamGenerateContent, countTokens, embedContent,
batchEmbedContents) decoded into an Exchange.

Built from the published schema (the Generative Language API reference and the python-genai
types it generates), not from what the SDK happens to send. Keys are read in camelCase, else
snake_case, at every level. Every text the provider reads gets a place (see
`capsem_proxy.exchange`); a field not listed here goes to the catch-all and is screened as
`other`. Not texts: ids, enum values, numbers, thought signatures, base64 images, audio and video.

Every field of a `Part` is read, whichever others it holds (a part is meant to hold one, but
nothing is skipped because another came first):

- prompts (system): `systemInstruction` (a Content, a list of parts or a string).
- prompts: `text` parts, `thought` parts (thinking), `inlineData` of a text type (text/*,
  JSON, XML, source code…) decoded; embedContent `content` and `title`.
- tool_calls: `functionCall` (name, `args`), `executableCode.code`, `toolCall` (`toolType`,
  `args`).
- tool_results: `functionResponse` (`response`, and `inlineData` of a text type in its
  `parts`), `codeExecutionResult.output`, `toolResponse.response`.
- tool_definitions: `tools[].functionDeclarations[]` (name, description, `parameters`,
  `parametersJsonSchema`, `response`, `responseJsonSchema`).
- other: the other tools' settings (`googleSearch`, `fileSearch`, `mcpServers`…),
  `generationConfig.responseSchema` / `responseJsonSchema` / `stopSequences` / `speechConfig`,
  `labels`, `fileData.fileUri`, `displayName`, `partMetadata`, unknown fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from capsem_proxy.exchange import Exchange, MediaPart, ToolDefinition, ToolResult
from capsem_proxy.providers._decode_helpers import (
    Turn,
    as_list,
    as_str,
    b64decode,
    get,
    history_call,
    request_media,
    to_int,
    unread,
    unrecognised,
)
from capsem_proxy.texts import readable_texts

__all__ = ["decode_generate"]


def _spellings(*camel: str) -> frozenset[str]:
    """Each camelCase name and its snake_case twin (Gemini accepts both)."""
    names = set(camel)
    for name in camel:
        names.add("".join("_" + char.lower() if char.isupper() else char for char in name))
    return frozenset(names)


_GENERATE_FIELDS = _spellings(
    "contents", "systemInstruction", "tools", "toolConfig", "safetySettings", "generationConfig",
    "cachedContent", "model", "serviceTier", "generateContentRequest",
)
_EMBED_FIELDS = _spellings("content", "taskType", "title", "outputDimensionality", "model", "requests")
_GENERATION_CONFIG_FIELDS = _spellings(
    "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "presencePenalty", "frequencyPenalty",
    "seed", "responseLogprobs", "logprobs", "responseMimeType", "responseModalities", "mediaResolution",
    "audioTimestamp", "enableAffectiveDialog", "enableEnhancedCivicAnswers", "thinkingConfig", "imageConfig",
)
_CONTENT_FIELDS = frozenset({"role", "parts"})
_WRAPPER_FIELDS = _spellings("generateContentRequest")
_BLOB_FIELDS = _spellings("mimeType", "data")
_FILE_DATA_FIELDS = _spellings("mimeType", "fileUri")
_FUNCTION_CALL_FIELDS = _spellings("id", "name", "args", "willContinue")
_FUNCTION_RESPONSE_FIELDS = _spellings("id", "name", "response", "parts", "willContinue", "scheduling")
_TOOL_FIELDS = _spellings("functionDeclarations")
# The code Gemini's code-execution tool ran, and what it printed, read as a call and its result.
_CODE_TOOL = "code_execution"


def _inline_media(inline: dict[str, Any], exchange: Exchange) -> MediaPart:
    unread(inline, _BLOB_FIELDS, exchange)
    mime = as_str(get(inline, "mimeType", "mime_type")) or "application/octet-stream"
    return MediaPart(mime_type=mime, data=b64decode(inline.get("data")))


def _file_media(file_data: dict[str, Any], exchange: Exchange) -> MediaPart | None:
    unread(file_data, _FILE_DATA_FIELDS, exchange)
    mime = as_str(get(file_data, "mimeType", "mime_type"))
    return request_media(get(file_data, "fileUri", "file_uri"), exchange, mime)


def _function_response(response: dict[str, Any], exchange: Exchange) -> ToolResult:
    unread(response, _FUNCTION_RESPONSE_FIELDS, exchange)
    media: list[MediaPart] = []
    for inner in as_list(response.get("parts")):
        if not isinstance(inner, dict):
            unrecognised(exchange, inner)
            continue
        unread(inner, _spellings("inlineData", "fileData"), exchange)
        if isinstance(inline := get(inner, "inlineData", "inline_data"), dict):
            media.append(_inline_media(inline, exchange))
        if isinstance(file_data := get(inner, "fileData", "file_data"), dict) and (
            found := _file_media(file_data, exchange)
        ):
            media.append(found)
    return ToolResult(
        call_id=as_str(response.get("id")), name=as_str(response.get("name")), content=response.get("response"),
        media=media,
    )


def _text(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    if isinstance(value, str):
        if value:
            (turn.thinking if part.get("thought") is True else turn.texts).append(value)
    elif value is not None:
        unrecognised(exchange, value, "text")


def _inline(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    turn.media.append(_inline_media(value, exchange))


def _file(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    found = _file_media(value, exchange)
    if found is not None:
        turn.media.append(found)


def _function_call(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    unread(value, _FUNCTION_CALL_FIELDS, exchange)
    turn.tool_calls.append(history_call(value.get("name"), value.get("args"), value.get("id")))


def _function_result(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    turn.tool_results.append(_function_response(value, exchange))


def _executable_code(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    unread(value, frozenset({"code", "language", "id"}), exchange)
    turn.tool_calls.append(history_call(_CODE_TOOL, {"code": value.get("code")}, value.get("id")))


def _code_result(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    unread(value, frozenset({"outcome", "output", "id"}), exchange)
    output = value.get("output")
    turn.tool_results.append(
        ToolResult(call_id=as_str(value.get("id")), name=_CODE_TOOL, content=output if output is not None else "")
    )


def _server_call(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    unread(value, _spellings("id", "toolType", "args"), exchange)
    name = get(value, "toolType", "tool_type")
    turn.tool_calls.append(history_call(name, value.get("args"), value.get("id")))


def _server_response(part: dict[str, Any], value: Any, turn: Turn, exchange: Exchange) -> None:
    unread(value, _spellings("id", "toolType", "response"), exchange)
    texts = readable_texts(value.get("response"), "response")
    turn.tool_results.append(
        ToolResult(
            call_id=as_str(value.get("id")),
            name=as_str(get(value, "toolType", "tool_type")),
            content="\n".join(texts),
            wire=texts,
        )
    )


_PartReader = Callable[[dict[str, Any], Any, Turn, Exchange], None]
# What each field of a Part holds, by name in both spellings. Every field is read, whichever
# others the part holds; fields holding no text (flags, signatures, video offsets) map to None.
_PART_READERS: dict[str, _PartReader | None] = {
    "text": _text,
    **dict.fromkeys(_spellings("thought", "thoughtSignature", "videoMetadata", "mediaResolution")),
    **dict.fromkeys(_spellings("inlineData"), _inline),
    **dict.fromkeys(_spellings("fileData"), _file),
    **dict.fromkeys(_spellings("functionCall"), _function_call),
    **dict.fromkeys(_spellings("functionResponse"), _function_result),
    **dict.fromkeys(_spellings("executableCode"), _executable_code),
    **dict.fromkeys(_spellings("codeExecutionResult"), _code_result),
    **dict.fromkeys(_spellings("toolCall"), _server_call),
    **dict.fromkeys(_spellings("toolResponse"), _server_response),
}
# Readers that take an object; anything else in their field goes to the catch-all.
_TAKES_TEXT = frozenset({"text"})


def _add_part(part: Any, turn: Turn, exchange: Exchange) -> None:
    """Add every field of one `Part` to the turn (see the module docstring)."""
    if isinstance(part, str):
        if part:
            turn.texts.append(part)
        return
    if not isinstance(part, dict):
        unrecognised(exchange, part)
        return
    for key, value in part.items():
        if key not in _PART_READERS:
            exchange.unrecognised.append((key, value))
            continue
        reader = _PART_READERS[key]
        if reader is None:
            continue
        if key in _TAKES_TEXT or isinstance(value, dict):
            reader(part, value, turn, exchange)
        elif value is not None:
            unrecognised(exchange, value, key)


def _contents(contents: Any) -> list[Any]:
    if isinstance(contents, list):
        return contents
    if contents is None:
        return []
    return [contents]


def _content_turn(content: Any, exchange: Exchange) -> tuple[Turn, str]:
    """The turn of one Content (or a bare string or list of parts) and its role."""
    turn = Turn()
    role = "user"
    parts = content
    if type(content) is dict:
        if not _CONTENT_FIELDS.issuperset(content):
            unread(content, _CONTENT_FIELDS, exchange)
        parts = content.get("parts")
        if content.get("role") == "model":
            role = "assistant"
    texts = turn.texts
    for part in parts if type(parts) is list else _contents(parts):
        # The usual part, `{"text": "…"}`, is read here; any other goes through every reader.
        if type(part) is dict and len(part) == 1 and type(text := part.get("text")) is str:
            if text:
                texts.append(text)
        else:
            _add_part(part, turn, exchange)
    return turn, role


def _system(system: Any, exchange: Exchange) -> None:
    """System instructions: their text (and thinking) is the system text; anything else they
    hold (media, calls) joins the conversation as a system message."""
    if system is None:
        return
    turn, _ = _content_turn(system, exchange)
    texts = turn.texts
    if turn.thinking:
        texts = turn.thinking + texts
    text = texts[0] if len(texts) == 1 else "\n".join(texts)
    exchange.system = f"{exchange.system}\n{text}" if exchange.system else text
    if turn.media or turn.tool_calls or turn.tool_results:
        turn.texts, turn.thinking = [], []
        turn.flush(exchange.messages, "system")


def _tools(tools: Any, exchange: Exchange) -> None:
    for tool in _contents(tools):
        if not isinstance(tool, dict):
            unrecognised(exchange, tool)
            continue
        unread(tool, _TOOL_FIELDS, exchange)
        for spec in as_list(get(tool, "functionDeclarations", "function_declarations")):
            if not isinstance(spec, dict) or not isinstance(name := spec.get("name"), str) or not name:
                unrecognised(exchange, spec)
                continue
            parameters = spec.get("parameters")
            if not isinstance(parameters, dict):
                parameters = get(spec, "parametersJsonSchema", "parameters_json_schema")
            exchange.tools.append(
                ToolDefinition(
                    name=name,
                    description=as_str(spec.get("description")),
                    parameters=parameters if isinstance(parameters, dict) else {},
                    spec=spec,
                )
            )


def _generate(body: dict[str, Any], exchange: Exchange) -> None:
    if not _GENERATE_FIELDS.issuperset(body):
        unread(body, _GENERATE_FIELDS, exchange)
    system = body.get("systemInstruction")
    _system(system if system is not None else body.get("system_instruction"), exchange)
    contents = body.get("contents")
    messages = exchange.messages
    for content in contents if type(contents) is list else _contents(contents):
        if not isinstance(content, dict | str):
            unrecognised(exchange, content, "contents")
            continue
        turn, role = _content_turn(content, exchange)
        turn.flush(messages, role)
    if "tools" in body:
        _tools(body["tools"], exchange)
    generation_config = get(body, "generationConfig", "generation_config")
    if isinstance(generation_config, dict):
        if not _GENERATION_CONFIG_FIELDS.issuperset(generation_config):
            unread(generation_config, _GENERATION_CONFIG_FIELDS, exchange)
        cap = to_int(get(generation_config, "maxOutputTokens", "max_output_tokens"))
        if cap is not None:
            exchange.max_output_tokens = cap
    elif generation_config is not None:
        unrecognised(exchange, generation_config, "generationConfig")


def _embed(request: dict[str, Any], exchange: Exchange) -> None:
    unread(request, _EMBED_FIELDS, exchange)
    content = request.get("content")
    if content is not None:
        turn, _ = _content_turn(content, exchange)
        title = request.get("title")
        if isinstance(title, str) and title:
            turn.texts.insert(0, title)
        turn.flush(exchange.messages, "user")


def decode_generate(operation: str, body: dict[str, Any], exchange: Exchange) -> None:
    """Decode a body of `operation` (see the module docstring). countTokens may wrap a whole
    generate request in `generateContentRequest`: both it and any top-level `contents` are read."""
    if operation == "embed":
        requests = body.get("requests")
        if requests is None:
            _embed(body, exchange)
            return
        unread(body, frozenset({"requests"}), exchange)
        for request in as_list(requests):
            if isinstance(request, dict):
                _embed(request, exchange)
            else:
                unrecognised(exchange, request)
        if not isinstance(requests, list):
            unrecognised(exchange, requests, "requests")
        return
    wrapped = body.get("generateContentRequest") or body.get("generate_content_request")
    if wrapped is None:
        _generate(body, exchange)
    elif isinstance(wrapped, dict):
        rest = {key: value for key, value in body.items() if key not in _WRAPPER_FIELDS}
        _generate(rest, exchange)
        if not exchange.model:
            exchange.model = as_str(wrapped.get("model")).removeprefix("models/")
        _generate(wrapped, exchange)
    else:
        unrecognised(exchange, wrapped, "generateContentRequest")
        _generate(body, exchange)

