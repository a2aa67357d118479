"""MCP's shapes in the proxy's neutral model: tool definitions as `ToolDefinition`, and what a
server returns (tool results, resource contents, prompts) as `ToolResult`, which every policy reads.

Content blocks (MCP 2025-03-26 and later): `text`, `image` and `audio` (base64 `data`), `resource`
(an embedded resource with `text` or base64 `blob`) and `resource_link` (`uri`, `name`,
`description`). A tool result also carries `structuredContent` (any JSON value) and `isError`.
Base64 payloads are never read as text; those of a text media type are decoded for the detectors
(and, since they cannot be rewritten in place, a redaction there blocks instead).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from capsem_proxy.exchange import MediaPart, ToolDefinition, ToolResult
from capsem_proxy.texts import b64decode, readable_texts

__all__ = ["definition_digest", "result_of", "tool_definition"]

# A tool's fields that say what it does: pinned, and read by the detectors.
_PINNED_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema")
# Base64 payloads decoded for the detectors are capped: a larger one is scanned no further.
_MAX_DECODED_BYTES = 4 * 1024 * 1024


def tool_definition(tool: dict[str, Any]) -> ToolDefinition:
    """A `tools/list` entry as a ToolDefinition: name, description, input schema; its title, output
    schema, annotations and `_meta` are read as texts too (they are shown to the model and the user)."""
    name = tool.get("name")
    description = tool.get("description")
    schema = tool.get("inputSchema")
    described: tuple[str, ...] = ("title", "inputSchema", "outputSchema", "annotations", "_meta")
    spec = {key: tool[key] for key in described if key in tool}
    return ToolDefinition(
        name=name if isinstance(name, str) else "",
        description=description if isinstance(description, str) else "",
        parameters=schema if isinstance(schema, dict) else {},
        spec=spec or None,
    )


def definition_digest(tool: dict[str, Any]) -> str:
    """The pinned hash of a tool: its name, title, description and schemas, canonical JSON, SHA-256."""
    pinned = {field: tool.get(field) for field in _PINNED_FIELDS}
    try:
        content = orjson.dumps(pinned, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # nested deeper than orjson writes
        content = repr(sorted(pinned.items())).encode("utf-8", "surrogatepass")
    return hashlib.sha256(content).hexdigest()


def _media(block: dict[str, Any], payload_key: str, media: list[MediaPart]) -> None:
    payload = block.get(payload_key)
    mime_type = block.get("mimeType")
    if not isinstance(payload, str) or len(payload) > _MAX_DECODED_BYTES * 4 // 3 + 4:
        return
    data = b64decode(payload)
    if data is not None:
        media.append(MediaPart(mime_type=mime_type if isinstance(mime_type, str) else "", data=data))


def _collect_binaries(value: Any, media: list[MediaPart]) -> set[str]:
    """Collect the inline binaries of content blocks (`data`) and resources (`blob`), wherever they
    nest, into `media`; returns the base64 texts themselves (walked without recursion)."""
    payloads: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            blob = item.get("blob")
            if isinstance(blob, str):
                payloads.add(blob)
                _media(item, "blob", media)
            data = item.get("data")
            if isinstance(data, str) and item.get("type") in ("image", "audio"):
                payloads.add(data)
                _media(item, "data", media)
            stack.extend(child for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend(child for child in item if isinstance(child, dict | list))
    return payloads


def result_of(subject: str, call_id: str, result: dict[str, Any]) -> ToolResult:
    """A server's result (of tools/call, resources/read, prompts/get…) as a ToolResult.

    `content` is the result as the server sent it (what a CAPSEM policy's `on_tool_response`
    receives); its texts are every string a client or model reads (identifiers, enum values and
    base64 payloads left out; `blob` and `data` decoded as media when they are text).
    """
    media: list[MediaPart] = []
    payloads = _collect_binaries(result, media)
    # `_meta` is addressed to the client, but a client may show it or hand it to a model: its
    # strings are read too (its keys are names, not text).
    meta = result.get("_meta")
    texts = readable_texts({key: value for key, value in result.items() if key != "_meta"}, keys=True)
    if meta is not None:
        texts.extend(readable_texts(meta))
    if payloads:
        texts = [text for text in texts if text not in payloads]
    return ToolResult(call_id=call_id, name=subject, content=result, media=media, wire=texts)
