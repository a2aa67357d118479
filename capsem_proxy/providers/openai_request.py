"""OpenAI request bodies (Chat Completions, Responses, Embeddings) decoded into an Exchange.

Built from the published schema (openai-openapi, and the openai-python `*Param` types generated
from it), not from what the SDK happens to send. Every text the provider reads gets a place (see
`capsem_proxy.exchange`); a field not listed here goes to the catch-all and is screened as
`other`. Not texts: ids, enum values, numbers, booleans, base64 images and audio.

Chat Completions (`POST /v1/chat/completions`), field by field:

- prompts (system): `messages[]` of role system / developer, `content` (string or text parts).
- prompts: user `content` (string, `text` parts); assistant `content` (`text` and `refusal`
  parts), `refusal`, `reasoning_content`; `prediction.content`; `image_url.url` and
  `file.file_data` (a data: URL or base64) of a text type, decoded.
- tool_calls: assistant `tool_calls[].function` (name, `arguments`) and `.custom` (name,
  `input`); the legacy `function_call`.
- tool_results: `content` of `tool` and `function` messages.
- tool_definitions: `tools[]` of type `function` or `custom` (name, description, parameters,
  grammar), the legacy `functions[]`.
- other: a participant's `name`, `metadata`, `user`, `safety_identifier`, `prompt_cache_key`,
  `stop`, `response_format`, `web_search_options`, image and file URLs, `filename`.

Responses (`POST /v1/responses`):

- prompts (system): `instructions`; `input` messages of role system / developer.
- prompts: `input` as a string; user and assistant messages (`input_text`, `output_text`,
  `refusal` parts); `input_image.image_url` and `input_file.file_data` of a text type, decoded;
  `reasoning` items (`summary[].text`, `content[].text`); `prompt.variables` (strings and
  input parts); `mcp_approval_response.reason`.
- tool_calls: `function_call.arguments`, `custom_tool_call.input`; the provider's own tools:
  `mcp_call.arguments`, `mcp_approval_request.arguments`, `tool_search_call.arguments`,
  `local_shell_call.action`, `shell_call.action`, `apply_patch_call.operation`,
  `computer_call.action(s)`, `web_search_call.action`, `file_search_call.queries`,
  `code_interpreter_call.code`, `program.code`.
- tool_results: `function_call_output.output` and `custom_tool_call_output.output` (a string
  or text / image / file parts); `mcp_call.output` and `.error`, `local_shell_call_output`,
  `shell_call_output`, `apply_patch_call_output`, `computer_call_output` (a screenshot),
  `file_search_call.results`, `code_interpreter_call.outputs`, `program_output.result`.
- tool_definitions: `tools[]` of type `function` or `custom`, the tools of a `namespace`,
  `mcp_list_tools.tools`, `additional_tools.tools`, `tool_search_output.tools`.
- other: built-in tool configurations (`mcp` headers and descriptions, `web_search`
  locations…), `text.format` schemas, `metadata`, `user`, annotations, unknown item types.

Embeddings (`POST /v1/embeddings`): `input` (a string or a list of strings) is prompts; token
arrays (lists of integers) are not decoded; `user` is other.
"""

from __future__ import annotations

from typing import Any

from capsem_proxy.exchange import Exchange, MediaPart, Message, ToolDefinition, ToolResult
from capsem_proxy.providers._decode_helpers import (
    as_list,
    as_str,
    b64decode,
    history_call,
    media_from_url,
    request_media,
    tool_content,
    unread,
    unrecognised,
)
from capsem_proxy.texts import readable_texts

__all__ = ["decode_chat", "decode_embeddings", "decode_responses"]

_SYSTEM_ROLES = frozenset({"system", "developer"})
_AUDIO_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm16": "audio/pcm"}

# Fields read (or known to hold no text) at each level; the rest go to the catch-all.
_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "stream", "max_tokens", "max_completion_tokens", "n", "temperature", "top_p",
        "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "seed", "store",
        "parallel_tool_calls", "service_tier", "reasoning_effort", "verbosity", "modalities", "stream_options",
        "prompt_cache_retention", "prompt_cache_options", "logit_bias", "tool_choice", "function_call", "audio",
        "moderation", "tools", "functions", "prediction",
    }
)
_RESPONSES_FIELDS = frozenset(
    {
        "model", "input", "instructions", "stream", "max_output_tokens", "max_tool_calls", "temperature",
        "top_p", "top_logprobs", "parallel_tool_calls", "store", "background", "service_tier", "truncation",
        "include", "previous_response_id", "conversation", "reasoning", "tool_choice", "tools", "stream_options",
        "prompt_cache_retention", "prompt_cache_options", "context_management", "moderation", "prompt",
    }
)
_EMBEDDINGS_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format"})
_MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content"}),
    "developer": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "refusal", "tool_calls", "function_call", "audio", "reasoning_content"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}
_USER_FIELDS = _MESSAGE_FIELDS["user"]
_INPUT_MESSAGE_FIELDS = frozenset({"type", "role", "content", "id", "status", "phase"})
_BREAKPOINT = "prompt_cache_breakpoint"
_PART_FIELDS: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text", _BREAKPOINT}),
    "input_text": frozenset({"type", "text", _BREAKPOINT}),
    "output_text": frozenset({"type", "text"}),
    "refusal": frozenset({"type", "refusal"}),
    "image_url": frozenset({"type", "image_url", _BREAKPOINT}),
    "input_image": frozenset({"type", "image_url", "file_id", "detail", _BREAKPOINT}),
    "input_audio": frozenset({"type", "input_audio", _BREAKPOINT}),
    "file": frozenset({"type", "file", _BREAKPOINT}),
    "input_file": frozenset({"type", "file_data", "file_id", "file_url", "detail", _BREAKPOINT}),
}
_TOOL_CALL_FIELDS = frozenset({"id", "type", "function", "custom"})
_TOOL_WRAPPER_FIELDS = frozenset({"type", "function", "custom"})
_CALLED_FUNCTION_FIELDS = frozenset({"name", "arguments", "input"})
_FUNCTION_SPEC_FIELDS = frozenset(
    {"type", "name", "description", "parameters", "strict", "format", "output_schema", "allowed_callers",
     "defer_loading", "function", "custom"}
)
_REASONING_FIELDS = frozenset({"type", "id", "summary", "content", "encrypted_content", "status"})
_CALL_ITEM_FIELDS = frozenset({"type", "id", "call_id", "name", "arguments", "input", "status", "namespace", "caller"})
_OUTPUT_ITEM_FIELDS = frozenset({"type", "id", "call_id", "output", "status", "name", "namespace", "caller"})
_ITEM_TOOLS_FIELDS = frozenset({"type", "id", "tools", "server_label", "role", "call_id", "execution", "status"})

# The provider's own tools in the history: item type -> (call fields, result fields, other fields
# holding no text). Each becomes a tool call and / or a tool result named after the tool.
_SERVER_ITEMS: dict[str, tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]] = {
    "file_search_call": (("queries",), ("results",), frozenset({"type", "id", "status"})),
    "web_search_call": (("action",), (), frozenset({"type", "id", "status"})),
    "computer_call": (("action", "actions"), (), frozenset({"type", "id", "call_id", "status"})),
    "computer_call_output": ((), ("output",), frozenset({"type", "id", "call_id", "status"})),
    "code_interpreter_call": (("code",), ("outputs",), frozenset({"type", "id", "container_id", "status"})),
    "image_generation_call": ((), (), frozenset({"type", "id", "status", "result"})),  # result: base64 image
    "local_shell_call": (("action",), (), frozenset({"type", "id", "call_id", "status"})),
    "local_shell_call_output": ((), ("output",), frozenset({"type", "id", "call_id", "status"})),
    "shell_call": (("action",), (), frozenset({"type", "id", "call_id", "status", "caller", "environment"})),
    "shell_call_output": (
        (), ("output",), frozenset({"type", "id", "call_id", "status", "caller", "max_output_length"})
    ),
    "apply_patch_call": (("operation",), (), frozenset({"type", "id", "call_id", "status", "caller"})),
    "apply_patch_call_output": ((), ("output",), frozenset({"type", "id", "call_id", "status", "caller"})),
    "mcp_call": (
        ("arguments",), ("output", "error"),
        frozenset({"type", "id", "name", "server_label", "approval_request_id", "status"}),
    ),
    "mcp_approval_request": (("arguments",), (), frozenset({"type", "id", "name", "server_label"})),
    "tool_search_call": (("arguments",), (), frozenset({"type", "id", "call_id", "execution", "status"})),
    "program": (("code",), (), frozenset({"type", "id", "call_id", "fingerprint"})),
    "program_output": ((), ("result",), frozenset({"type", "id", "call_id", "status"})),
    "compaction": ((), (), frozenset({"type", "id", "encrypted_content"})),
    "compaction_trigger": ((), (), frozenset({"type"})),
    "item_reference": ((), (), frozenset({"type", "id"})),
}


# ---------------------------------------------------------------------------- content parts


def _file_media(
    file_data: Any, file_id: Any, filename: Any, exchange: Exchange, file_url: Any = None
) -> MediaPart | None:
    """A `file` (chat) / `input_file` (Responses) part: inline data, else a URL or file id."""
    mime = ""
    if isinstance(filename, str) and filename:
        found = media_from_url(filename)
        mime = found.mime_type if found else ""
    if isinstance(file_data, str) and file_data:
        if file_data.startswith("data:"):
            return media_from_url(file_data, mime)
        return MediaPart(mime_type=mime or "application/octet-stream", data=b64decode(file_data))
    if isinstance(file_url, str) and file_url:
        return request_media(file_url, exchange, mime)
    if isinstance(file_id, str) and file_id:
        return MediaPart(mime_type=mime or "application/octet-stream", uri=file_id)
    return None


def _audio_media(audio: Any) -> MediaPart | None:
    if not isinstance(audio, dict):
        return None
    fmt = as_str(audio.get("format"))
    return MediaPart(mime_type=_AUDIO_MIME.get(fmt) or f"audio/{fmt or 'unknown'}", data=b64decode(audio.get("data")))


def _part(part: Any, exchange: Exchange, texts: list[str], media: list[MediaPart]) -> None:
    """One content part of a chat message, a Responses message or a tool output."""
    if not isinstance(part, dict):
        unrecognised(exchange, part)
        return
    kind = part.get("type")
    known = _PART_FIELDS.get(kind) if isinstance(kind, str) else None
    if known is None:
        unrecognised(exchange, part)
        return
    unread(part, known, exchange)
    found: MediaPart | None = None
    if kind in ("text", "input_text", "output_text"):
        text = part.get("text")
        if isinstance(text, str):
            if text:
                texts.append(text)
        elif text is not None:
            unrecognised(exchange, text, "text")
    elif kind == "refusal":
        text = part.get("refusal")
        if isinstance(text, str) and text:
            texts.append(text)
    elif kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, dict):
            unread(image, frozenset({"url", "detail"}), exchange)
            image = image.get("url")
        found = request_media(image, exchange)
    elif kind == "input_image":
        found = request_media(part.get("image_url"), exchange)
        if found is None and isinstance(file_id := part.get("file_id"), str) and file_id:
            found = MediaPart(mime_type="application/octet-stream", uri=file_id)
    elif kind == "input_audio":
        audio = part.get("input_audio")
        if isinstance(audio, dict):
            unread(audio, frozenset({"data", "format"}), exchange)
        found = _audio_media(audio)
    elif kind == "file":
        spec = part.get("file")
        if isinstance(spec, dict):
            unread(spec, frozenset({"file_data", "file_id"}), exchange)
            found = _file_media(spec.get("file_data"), spec.get("file_id"), spec.get("filename"), exchange)
    else:  # input_file
        found = _file_media(
            part.get("file_data"), part.get("file_id"), part.get("filename"), exchange, part.get("file_url")
        )
    if found is not None:
        media.append(found)


def _content_parts(content: Any, exchange: Exchange) -> tuple[list[str], list[MediaPart]]:
    """The texts (each as carried) and media of message content: a string, parts, or null."""
    if isinstance(content, str):
        return ([content] if content else []), []
    texts: list[str] = []
    media: list[MediaPart] = []
    if isinstance(content, list):
        for part in content:
            _part(part, exchange, texts, media)
    elif content is not None:
        unrecognised(exchange, content, "content")
    return texts, media


def _content(content: Any, exchange: Exchange) -> tuple[str, list[MediaPart]]:
    """Text (joined) and media of message content."""
    if type(content) is str:
        return content, []
    texts, media = _content_parts(content, exchange)
    return "\n".join(texts), media


def _tool_output(output: Any, exchange: Exchange, call_id: str, name: str) -> ToolResult:
    """A tool's output (a string or parts): its text parsed when a JSON object, the texts as
    carried kept for screening."""
    texts, media = _content_parts(output, exchange)
    text = "\n".join(texts)
    return ToolResult(call_id=call_id, name=name, content=tool_content(text), media=media, wire=texts)


# ---------------------------------------------------------------------------- tool definitions


def _tool_definition(spec: dict[str, Any], exchange: Exchange) -> ToolDefinition | None:
    """A function or custom tool (flat, or under `function` / `custom`), or None for another kind."""
    inner = spec.get("function") or spec.get("custom")
    if isinstance(inner, dict):
        if not _TOOL_WRAPPER_FIELDS.issuperset(spec):
            unread(spec, _TOOL_WRAPPER_FIELDS, exchange)
        spec = inner
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        return None
    parameters = spec.get("parameters", spec.get("input_schema"))
    return ToolDefinition(
        name=name,
        description=as_str(spec.get("description")),
        parameters=parameters if isinstance(parameters, dict) else {},
        spec=spec,
    )


def _add_tool(spec: Any, exchange: Exchange) -> None:
    kind = spec.get("type") if isinstance(spec, dict) else None
    function_like = isinstance(spec, dict) and kind in (None, "function", "custom")
    tool = _tool_definition(spec, exchange) if function_like else None
    if tool is None:
        unrecognised(exchange, spec)
    else:
        exchange.tools.append(tool)


def add_tools(tools: Any, exchange: Exchange) -> None:
    """Function and custom tools become tool definitions (a namespace's tools too); built-in
    tools (web_search, file_search, mcp, code_interpreter…) are configuration, screened as `other`."""
    if tools is None:
        return
    if not isinstance(tools, list):
        unrecognised(exchange, tools, "tools")
        return
    for spec in tools:
        if isinstance(spec, dict) and spec.get("type") == "namespace" and isinstance(spec.get("tools"), list):
            unread(spec, frozenset({"type", "tools"}), exchange)  # its name and description: other
            for inner in spec["tools"]:
                _add_tool(inner, exchange)
        else:
            _add_tool(spec, exchange)


# ---------------------------------------------------------------------------- chat


def _tool_result_message(messages: list[Message], result: ToolResult) -> None:
    """Add a tool result to the "tool" message being built (consecutive results share one)."""
    if messages and messages[-1].role == "tool":
        messages[-1].tool_results.append(result)
        messages[-1].media.extend(result.media)
    else:
        messages.append(Message(role="tool", tool_results=[result], media=list(result.media)))


def decode_chat(body: dict[str, Any], exchange: Exchange, system: list[str]) -> None:
    """Decode a Chat Completions body (see the module docstring)."""
    if not _CHAT_FIELDS.issuperset(body):
        unread(body, _CHAT_FIELDS, exchange)
    messages = exchange.messages
    names: dict[str, str] = {}
    raw_messages = body.get("messages")
    if raw_messages is not None and not isinstance(raw_messages, list):
        unrecognised(exchange, raw_messages, "messages")
    for raw in as_list(raw_messages):
        if not isinstance(raw, dict):
            unrecognised(exchange, raw)
            continue
        role = raw.get("role")
        known = _MESSAGE_FIELDS.get(role, _USER_FIELDS) if isinstance(role, str) else _USER_FIELDS
        if not known.issuperset(raw):
            unread(raw, known, exchange)
        if role in ("tool", "function"):
            call_id = as_str(raw.get("tool_call_id"))
            name = as_str(raw.get("name")) or names.get(call_id, "")
            result = _tool_output(raw.get("content"), exchange, call_id, name)
            messages.append(Message(role="tool", tool_results=[result], media=list(result.media)))
            continue
        text, media = _content(raw.get("content"), exchange)
        if role in _SYSTEM_ROLES:
            if text:
                system.append(text)
            if media:
                messages.append(Message(role="system", media=media))
            continue
        message = Message("assistant" if role == "assistant" else "user", text, media)  # role, text, media
        if role == "assistant":
            refusal = raw.get("refusal")
            if isinstance(refusal, str) and refusal:
                message.text = f"{message.text}\n{refusal}" if message.text else refusal
            for item in as_list(raw.get("tool_calls")):
                if not isinstance(item, dict):
                    unrecognised(exchange, item)
                    continue
                if not _TOOL_CALL_FIELDS.issuperset(item):
                    unread(item, _TOOL_CALL_FIELDS, exchange)
                function = item.get("function") or item.get("custom")
                if not isinstance(function, dict):
                    unrecognised(exchange, function)
                    continue
                if not _CALLED_FUNCTION_FIELDS.issuperset(function):
                    unread(function, _CALLED_FUNCTION_FIELDS, exchange)
                wire = function.get("arguments", function.get("input"))
                call = history_call(function.get("name"), wire, item.get("id"))
                names[call.call_id] = call.name
                message.tool_calls.append(call)
            legacy = raw.get("function_call")
            if isinstance(legacy, dict):
                unread(legacy, _CALLED_FUNCTION_FIELDS, exchange)
                message.tool_calls.append(history_call(legacy.get("name"), legacy.get("arguments")))
            message.thinking = as_str(raw.get("reasoning_content"))
        messages.append(message)
    prediction = body.get("prediction")
    if prediction is None:
        pass
    elif isinstance(prediction, dict):
        unread(prediction, frozenset({"type", "content"}), exchange)
        text, media = _content(prediction.get("content"), exchange)
        if text or media:
            messages.append(Message(role="assistant", text=text, media=media))
    else:
        unrecognised(exchange, prediction, "prediction")
    if "tools" in body:
        add_tools(body["tools"], exchange)
    if "functions" in body:
        add_tools(body["functions"], exchange)


# ---------------------------------------------------------------------------- responses


def _assistant(messages: list[Message]) -> Message:
    """The assistant message being built (the last one), or a new one."""
    if messages and messages[-1].role == "assistant":
        return messages[-1]
    message = Message(role="assistant")
    messages.append(message)
    return message


def _reasoning(item: dict[str, Any], exchange: Exchange) -> str:
    unread(item, _REASONING_FIELDS, exchange)
    texts = []
    for key in ("summary", "content"):
        for entry in as_list(item.get(key)):
            if isinstance(entry, dict):
                unread(entry, frozenset({"type", "text"}), exchange)
                text = entry.get("text")
                if isinstance(text, str) and text:
                    texts.append(text)
            else:
                unrecognised(exchange, entry)
    return "\n".join(texts)


def _server_item(item: dict[str, Any], kind: str, exchange: Exchange) -> None:
    """An item of one of the provider's own tools: its call and / or its result (see _SERVER_ITEMS)."""
    call_fields, result_fields, others = _SERVER_ITEMS[kind]
    unread(item, frozenset(call_fields + result_fields) | others, exchange)
    messages = exchange.messages
    name = as_str(item.get("name")) or kind.removesuffix("_output").removesuffix("_call")
    call_id = as_str(item.get("call_id")) or as_str(item.get("id"))
    present = [key for key in call_fields if item.get(key) is not None]
    if present:
        wire = item[present[0]] if len(present) == 1 else {key: item[key] for key in present}
        _assistant(messages).tool_calls.append(history_call(name, wire, call_id))
    texts: list[str] = []
    media: list[MediaPart] = []
    for key in result_fields:
        value = item.get(key)
        if value is None:
            continue
        if kind == "computer_call_output" and isinstance(value, dict):
            # A screenshot: {"type": "computer_screenshot", "image_url": <data: URL>, "file_id": …}
            unread(value, frozenset({"type", "image_url", "file_id"}), exchange)
            found = request_media(value.get("image_url"), exchange)
            if found is not None:
                media.append(found)
            continue
        texts.extend(readable_texts(value, key))
    if result_fields and (texts or media or kind.endswith("_output")):
        result = ToolResult(call_id=call_id, name=name, content="\n".join(texts), media=media, wire=texts)
        _tool_result_message(messages, result)


def _input_item(item: Any, exchange: Exchange, system: list[str], names: dict[str, str]) -> None:
    messages = exchange.messages
    if not isinstance(item, dict):
        unrecognised(exchange, item)
        return
    kind = item.get("type")
    if kind is None or kind == "message":
        unread(item, _INPUT_MESSAGE_FIELDS, exchange)
        role = item.get("role")
        text, media = _content(item.get("content"), exchange)
        if role in _SYSTEM_ROLES:
            if text:
                system.append(text)
            if media:
                messages.append(Message(role="system", media=media))
        elif role == "assistant":
            message = _assistant(messages)
            message.text = f"{message.text}\n{text}" if message.text and text else message.text or text
            message.media.extend(media)
        else:
            messages.append(Message(role="user", text=text, media=media))
    elif kind in ("function_call", "custom_tool_call"):
        unread(item, _CALL_ITEM_FIELDS, exchange)
        wire = item.get("arguments") if kind == "function_call" else item.get("input")
        call = history_call(item.get("name"), wire, item.get("call_id"))
        names[call.call_id] = call.name
        _assistant(messages).tool_calls.append(call)
    elif kind in ("function_call_output", "custom_tool_call_output"):
        unread(item, _OUTPUT_ITEM_FIELDS, exchange)
        call_id = as_str(item.get("call_id"))
        _tool_result_message(messages, _tool_output(item.get("output"), exchange, call_id, names.get(call_id, "")))
    elif kind == "reasoning":
        thinking = _reasoning(item, exchange)
        if thinking:
            message = _assistant(messages)
            message.thinking = f"{message.thinking}\n{thinking}" if message.thinking else thinking
    elif kind in ("mcp_list_tools", "additional_tools", "tool_search_output"):
        unread(item, _ITEM_TOOLS_FIELDS, exchange)
        if kind == "mcp_list_tools":
            for spec in as_list(item.get("tools")):
                tool = _tool_definition(spec, exchange) if isinstance(spec, dict) else None
                if tool is None:
                    unrecognised(exchange, spec)
                else:
                    exchange.tools.append(tool)
            error = item.get("error")
            if error is not None:
                unrecognised(exchange, error, "error")
        else:
            add_tools(item.get("tools"), exchange)
    elif kind == "mcp_approval_response":
        unread(item, frozenset({"type", "id", "approval_request_id", "approve", "reason"}), exchange)
        reason = item.get("reason")
        if isinstance(reason, str) and reason:
            messages.append(Message(role="user", text=reason))
    elif isinstance(kind, str) and kind in _SERVER_ITEMS:
        _server_item(item, kind, exchange)
    else:
        unrecognised(exchange, item)


def _prompt_variables(prompt: Any, exchange: Exchange) -> None:
    """`prompt: {id, version, variables}`: each variable is a string or an input part."""
    if not isinstance(prompt, dict):
        if prompt is not None:
            unrecognised(exchange, prompt, "prompt")
        return
    unread(prompt, frozenset({"id", "version", "variables"}), exchange)
    variables = prompt.get("variables")
    if not isinstance(variables, dict):
        if variables is not None:
            unrecognised(exchange, variables, "variables")
        return
    texts: list[str] = []
    media: list[MediaPart] = []
    for value in variables.values():
        if isinstance(value, str):
            if value:
                texts.append(value)
        else:
            _part(value, exchange, texts, media)
    if texts or media:
        exchange.messages.append(Message(role="user", text="\n".join(texts), media=media))


def decode_responses(body: dict[str, Any], exchange: Exchange, system: list[str]) -> None:
    """Decode a Responses body (see the module docstring)."""
    unread(body, _RESPONSES_FIELDS, exchange)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions:
            system.append(instructions)
    elif instructions is not None:
        unrecognised(exchange, instructions, "instructions")
    items = body.get("input")
    if isinstance(items, str):
        exchange.messages.append(Message(role="user", text=items))
    elif isinstance(items, list):
        names: dict[str, str] = {}
        for item in items:
            _input_item(item, exchange, system, names)
    elif items is not None:
        unrecognised(exchange, items, "input")
    # After the input, so that the conversation's first message (which names a derived session)
    # stays the same from turn to turn.
    _prompt_variables(body.get("prompt"), exchange)
    add_tools(body.get("tools"), exchange)


def decode_embeddings(body: dict[str, Any], exchange: Exchange) -> None:
    """Decode an Embeddings body: each input string is one user message."""
    unread(body, _EMBEDDINGS_FIELDS, exchange)
    inputs = body.get("input")
    for text in [inputs] if isinstance(inputs, str) else as_list(inputs):
        if isinstance(text, str):
            exchange.messages.append(Message(role="user", text=text))
        elif not (isinstance(text, int) or (isinstance(text, list) and all(type(t) is int for t in text))):
            unrecognised(exchange, text, "input")
    if not isinstance(inputs, str | list | type(None)):
        unrecognised(exchange, inputs, "input")
