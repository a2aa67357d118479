"""Anthropic request bodies (Messages and count_tokens) decoded into an Exchange.

Built from the published schema (the anthropic-sdk-python `*Param` types, beta blocks included),
not from what the SDK happens to send. Every text the provider reads gets a place (see
`capsem_proxy.exchange`); a field not listed here goes to the catch-all and is screened as
`other`. Not texts: ids, enum values, numbers, signatures, base64 images and PDFs,
`redacted_thinking` and other encrypted content.

- prompts (system): `system` (a string or text blocks).
- prompts: `text` blocks; `document` blocks (`title`, `context`, a `text` source, the blocks of
  a `content` source, a `base64` source of a text type, decoded); `search_result` blocks
  (`title`, `source`, `content[].text`); `thinking` blocks; `mid_conv_system` and `compaction`
  content.
- tool_calls: `tool_use`, `server_tool_use` and `mcp_tool_use` blocks (name, `input`).
- tool_results: `tool_result` and `mcp_tool_result` content (a string, or `text`, `document`,
  `search_result`, `tool_reference` and `image` blocks); the provider's own tools' results:
  `web_search_tool_result` (titles, URLs), `web_fetch_tool_result` (the URL and the fetched
  document), `code_execution_tool_result`, `bash_code_execution_tool_result`,
  `text_editor_code_execution_tool_result`, `tool_search_tool_result`, `advisor_tool_result`.
- tool_definitions: `tools[]` (name, description, `input_schema`, `input_examples`; the
  provider's own tools with their settings), `tool_addition` blocks.
- other: `metadata`, `stop_sequences`, `output_config` / `output_format` schemas,
  `mcp_servers`, citations, image and document URLs, unknown blocks.
"""

from __future__ import annotations

from typing import Any

from capsem_proxy.exchange import Exchange, MediaPart, ToolDefinition, ToolResult
from capsem_proxy.providers._decode_helpers import (
    Turn,
    as_list,
    as_str,
    b64decode,
    history_call,
    request_media,
    tool_content,
    unread,
    unrecognised,
)
from capsem_proxy.texts import readable_texts

__all__ = ["decode_messages"]

_BODY_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "stream", "system", "temperature", "top_k", "top_p", "tools",
        "tool_choice", "thinking", "service_tier", "container", "inference_geo", "cache_control",
        "context_management", "speed",
    }
)
_CACHE = "cache_control"
_MESSAGE_FIELDS = frozenset({"role", "content"})
_TEXT_BLOCK_FIELDS = frozenset({"type", "text", _CACHE})
_DOCUMENT_FIELDS = frozenset({"type", "source", _CACHE, "citations", "context", "title"})
_SEARCH_RESULT_FIELDS = frozenset({"type", "content", "source", "title", _CACHE, "citations"})
_TOOL_USE_FIELDS = frozenset({"type", "id", "name", "input", _CACHE, "caller", "server_name"})
_TOOL_RESULT_FIELDS = frozenset({"type", "tool_use_id", "content", "is_error", _CACHE, "caller"})
_TOOL_USE_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
_CLIENT_RESULT_BLOCKS = frozenset({"tool_result", "mcp_tool_result"})
# Results of the provider's own tools: their content's readable texts are the result.
_SERVER_RESULT_BLOCKS = frozenset(
    {
        "web_search_tool_result", "code_execution_tool_result", "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result", "tool_search_tool_result", "advisor_tool_result",
    }
)


def _text_block(block: dict[str, Any], exchange: Exchange, texts: list[str]) -> None:
    unread(block, _TEXT_BLOCK_FIELDS, exchange)
    text = block.get("text")
    if isinstance(text, str):
        if text:
            texts.append(text)
    elif text is not None:
        unrecognised(exchange, text, "text")


def _source(source: Any, exchange: Exchange, texts: list[str], media: list[MediaPart]) -> None:
    """An image or document `source`: base64 (media; read when of a text type), text (read as
    text), content (its blocks), url (media; the URL screened as other) or file (a file id)."""
    if not isinstance(source, dict):
        if source is not None:
            unrecognised(exchange, source, "source")
        return
    kind = source.get("type")
    mime = as_str(source.get("media_type"))
    if kind == "base64":
        unread(source, frozenset({"type", "media_type", "data"}), exchange)
        media.append(MediaPart(mime_type=mime or "application/octet-stream", data=b64decode(source.get("data"))))
    elif kind == "text":
        unread(source, frozenset({"type", "media_type", "data"}), exchange)
        data = source.get("data")
        if isinstance(data, str):
            if data:
                texts.append(data)
            media.append(MediaPart(mime_type=mime or "text/plain", data=data.encode(), as_text=True))
        elif data is not None:
            unrecognised(exchange, data, "data")
    elif kind == "content":
        unread(source, frozenset({"type", "content"}), exchange)
        content = source.get("content")
        found: list[str] = []
        if isinstance(content, str):
            if content:
                found.append(content)
        else:
            for block in as_list(content):
                _content_block(block, exchange, found, media)
        if found:
            texts.extend(found)
            media.append(MediaPart(mime_type="text/plain", data="\n".join(found).encode(), as_text=True))
    elif kind == "url":
        unread(source, frozenset({"type", "url"}), exchange)
        fetched = request_media(source.get("url"), exchange, mime)
        if fetched is not None:
            media.append(fetched)
    elif kind == "file":
        unread(source, frozenset({"type", "file_id"}), exchange)
        file_id = source.get("file_id")
        if isinstance(file_id, str) and file_id:
            media.append(MediaPart(mime_type=mime or "application/octet-stream", uri=file_id))
    else:
        unrecognised(exchange, source, "source")


def _named_texts(block: dict[str, Any], keys: tuple[str, ...], texts: list[str]) -> None:
    for key in keys:
        value = block.get(key)
        if isinstance(value, str) and value:
            texts.append(value)


def _content_block(block: Any, exchange: Exchange, texts: list[str], media: list[MediaPart]) -> None:
    """A block that carries content (text, image, document, search result, tool reference), in a
    message, a tool result or a content source."""
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        _text_block(block, exchange, texts)
    elif kind == "image":
        unread(block, frozenset({"type", "source", _CACHE}), exchange)
        _source(block.get("source"), exchange, texts, media)
    elif kind == "document":
        unread(block, _DOCUMENT_FIELDS, exchange)
        _named_texts(block, ("title", "context"), texts)
        _source(block.get("source"), exchange, texts, media)
    elif kind == "search_result":
        unread(block, _SEARCH_RESULT_FIELDS, exchange)
        _named_texts(block, ("title", "source"), texts)
        for inner in as_list(block.get("content")):
            if isinstance(inner, dict) and inner.get("type") == "text":
                _text_block(inner, exchange, texts)
            else:
                unrecognised(exchange, inner)
    elif kind == "tool_reference":
        unread(block, frozenset({"type", "tool_name", _CACHE}), exchange)
        _named_texts(block, ("tool_name",), texts)
    else:
        unrecognised(exchange, block)


def _tool_result(block: dict[str, Any], names: dict[str, str], exchange: Exchange) -> ToolResult:
    """A `tool_result` / `mcp_tool_result`: its content as text (parsed when a JSON object)."""
    unread(block, _TOOL_RESULT_FIELDS, exchange)
    content = block.get("content")
    media: list[MediaPart] = []
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            _content_block(part, exchange, texts, media)
    elif content is not None:
        unrecognised(exchange, content, "content")
    value = tool_content("\n".join(texts))
    if block.get("is_error") is True:
        value = {"content": value, "is_error": True}
    call_id = as_str(block.get("tool_use_id"))
    return ToolResult(call_id=call_id, name=names.get(call_id, ""), content=value, media=media, wire=texts)


def _server_result(block: dict[str, Any], kind: str, names: dict[str, str], exchange: Exchange) -> ToolResult:
    """The result of one of the provider's own tools (web search, web fetch, code execution…)."""
    unread(block, _TOOL_RESULT_FIELDS, exchange)
    call_id = as_str(block.get("tool_use_id"))
    content = block.get("content")
    texts: list[str] = []
    media: list[MediaPart] = []
    if kind == "web_fetch_tool_result" and isinstance(content, dict) and content.get("type") == "web_fetch_result":
        # {"type": "web_fetch_result", "url", "retrieved_at", "content": <document block>}
        unread(content, frozenset({"type", "url", "retrieved_at", "content"}), exchange)
        _named_texts(content, ("url",), texts)
        document = content.get("content")
        if document is not None:
            _content_block(document, exchange, texts, media)
    else:
        texts.extend(readable_texts(content, "content"))
    name = names.get(call_id, "") or kind.removesuffix("_tool_result")
    return ToolResult(call_id=call_id, name=name, content="\n".join(texts), media=media, wire=texts)


def _add_block(block: Any, turn: Turn, names: dict[str, str], exchange: Exchange) -> None:
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        unrecognised(exchange, block)
        return
    if kind == "text" and type(text := block.get("text")) is str and _TEXT_BLOCK_FIELDS.issuperset(block):
        if text:  # the usual block, read here
            turn.texts.append(text)
    elif kind in ("text", "image", "document", "search_result"):
        _content_block(block, exchange, turn.texts, turn.media)
    elif kind in _TOOL_USE_BLOCKS:
        unread(block, _TOOL_USE_FIELDS, exchange)
        call = history_call(block.get("name"), block.get("input"), block.get("id"))
        names[call.call_id] = call.name
        turn.tool_calls.append(call)
    elif kind in _CLIENT_RESULT_BLOCKS:
        turn.tool_results.append(_tool_result(block, names, exchange))
    elif kind in _SERVER_RESULT_BLOCKS or kind == "web_fetch_tool_result":
        turn.tool_results.append(_server_result(block, kind, names, exchange))
    elif kind == "thinking":
        unread(block, frozenset({"type", "thinking", "signature"}), exchange)
        _named_texts(block, ("thinking",), turn.thinking)
    elif kind in ("redacted_thinking", "container_upload"):
        unread(block, frozenset({"type", "data", "file_id", _CACHE}), exchange)  # encrypted / a file id
    elif kind == "mid_conv_system":
        unread(block, frozenset({"type", "content", _CACHE}), exchange)
        for inner in as_list(block.get("content")):
            _content_block(inner, exchange, turn.texts, turn.media)
    elif kind == "compaction":
        unread(block, frozenset({"type", "content", "encrypted_content", _CACHE}), exchange)
        _named_texts(block, ("content",), turn.texts)
    elif kind == "tool_addition" and isinstance(block.get("tool"), dict):
        unread(block, frozenset({"type", "tool", _CACHE}), exchange)
        add_tool(block["tool"], exchange)
    else:
        unrecognised(exchange, block)


def _system_text(system: Any, exchange: Exchange) -> str:
    if isinstance(system, str):
        return system
    texts: list[str] = []
    if isinstance(system, list):
        for block in system:
            if isinstance(block, dict) and block.get("type") == "text":
                _text_block(block, exchange, texts)
            else:
                unrecognised(exchange, block)
    elif system is not None:
        unrecognised(exchange, system, "system")
    return "\n".join(texts)


def add_tool(spec: Any, exchange: Exchange) -> None:
    """A tool definition: a custom tool (name, description, input_schema…), or one of the
    provider's own tools (its name and settings); a tool without a name goes to the catch-all."""
    name = spec.get("name") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not name:
        unrecognised(exchange, spec)
        return
    schema = spec.get("input_schema")
    exchange.tools.append(
        ToolDefinition(
            name=name,
            description=as_str(spec.get("description")),
            parameters=schema if isinstance(schema, dict) else {},
            spec=spec,
        )
    )


def decode_messages(body: dict[str, Any], exchange: Exchange) -> None:
    """Decode a Messages or count_tokens body (see the module docstring)."""
    if not _BODY_FIELDS.issuperset(body):
        unread(body, _BODY_FIELDS, exchange)
    exchange.system = _system_text(body.get("system"), exchange)
    names: dict[str, str] = {}
    raw_messages = body.get("messages")
    if raw_messages is not None and not isinstance(raw_messages, list):
        unrecognised(exchange, raw_messages, "messages")
    for raw in as_list(raw_messages):
        if not isinstance(raw, dict):
            unrecognised(exchange, raw)
            continue
        if not _MESSAGE_FIELDS.issuperset(raw):
            unread(raw, _MESSAGE_FIELDS, exchange)
        role = "assistant" if raw.get("role") == "assistant" else "user"
        turn = Turn()
        content = raw.get("content")
        if isinstance(content, str):
            if content:
                turn.texts.append(content)
        elif isinstance(content, list):
            for block in content:
                _add_block(block, turn, names, exchange)
        elif content is not None:
            unrecognised(exchange, content, "content")
        turn.flush(exchange.messages, role)
    tools = body.get("tools")
    if tools is None:
        return
    if isinstance(tools, list):
        for spec in tools:
            add_tool(spec, exchange)
    else:
        unrecognised(exchange, tools, "tools")
