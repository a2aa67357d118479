"""Finding the texts a provider reads inside JSON values and inline media, without recursion.

A request body may nest as deep as the JSON parser allows (about a thousand levels), so every
walk here keeps its own stack. Three walks, for three kinds of JSON:

- `json_texts`: free-form JSON written by the caller's own code (tool-call arguments, tool
  results): every string is text, keys too when asked.
- `readable_texts`: JSON whose shape the provider defines but the adapter did not recognise (the
  catch-all, server-tool results): identifiers, enum values and binary payloads are skipped.
- `schema_texts`: JSON Schema (tool parameters): descriptions, titles, enum values, property
  names, but not keywords such as `type: string`.

`media_text` turns inline media of a text type (or bytes that are plainly text) into the text
the model will read.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from typing import Any

__all__ = [
    "b64decode",
    "decode_text",
    "is_identifier_key",
    "is_text_mime",
    "json_texts",
    "media_text",
    "readable_texts",
    "schema_texts",
]

# Keys whose string values name things (ids, enum values, types) rather than say anything.
_IDENTIFIER_KEYS = frozenset(
    {
        "type", "role", "model", "id", "object", "status", "mime_type", "mimeType", "media_type", "format",
        "detail", "encoding", "language", "outcome", "effort", "voice", "phase", "execution", "mode",
        "syntax", "behavior", "scheduling", "toolType", "tool_type", "taskType", "task_type", "stop_reason",
        "error_code", "finishReason", "finish_reason", "file_type", "version",
    }
)
# Keys of opaque binary or encrypted payloads (base64): never text, whatever the adapter knows.
_BINARY_KEYS = frozenset(
    {
        "data", "bytes", "b64_json", "encrypted_content", "encrypted_index", "encrypted_stdout", "signature",
        "thought_signature", "thoughtSignature", "partial_image_b64",
    }
)
# JSON Schema keywords (and the tool-spec keys around a schema): structure, not text.
_SCHEMA_KEYWORDS = frozenset(
    {
        "type", "properties", "items", "required", "description", "title", "enum", "const", "default",
        "examples", "example", "additionalProperties", "patternProperties", "anyOf", "oneOf", "allOf", "not",
        "$ref", "$defs", "definitions", "$schema", "$id", "$anchor", "$comment", "$dynamicRef", "$dynamicAnchor",
        "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
        "pattern", "minItems", "maxItems", "uniqueItems", "nullable", "prefixItems", "contains", "propertyNames",
        "if", "then", "else", "dependentRequired", "dependentSchemas", "unevaluatedProperties",
        "unevaluatedItems", "multipleOf", "minProperties", "maxProperties", "readOnly", "writeOnly",
        "deprecated", "contentEncoding", "contentMediaType", "contentSchema", "propertyOrdering", "minContains",
        "maxContains", "strict", "name", "parameters", "parameters_json_schema", "parametersJsonSchema",
        "input_schema", "output_schema", "response", "response_json_schema", "responseJsonSchema", "function",
        "custom", "behavior", "input_examples", "allowed_callers", "defer_loading", "eager_input_streaming",
        "cache_control", "grammar", "syntax", "definition",
    }
)
# Schema keywords whose string values are keywords too (`"type": "string"`).
_SCHEMA_VALUE_KEYWORDS = frozenset(
    {"type", "format", "$ref", "$schema", "$id", "$anchor", "$dynamicRef", "contentEncoding", "syntax", "behavior"}
)
# An identifier or enum value: short, no whitespace. Longer or spaced values are read as text even
# under an identifier key, so a sentence cannot hide in an `id`.
_IDENTIFIER = re.compile(r"\S{1,256}")
# A base64 payload (standard or URL-safe, padded or not), at least 64 characters long.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{64,}={0,2}")


# Ids the caller chooses for its own users: often an e-mail or a name, so read as text.
_CALLER_CHOSEN_IDS = frozenset({"user_id", "userId", "end_user_id", "endUserId", "customer_id", "customerId"})


def is_identifier_key(key: str) -> bool:
    """True for keys whose values are identifiers or enum values (`type`, `role`, `call_id`…)."""
    if key in _IDENTIFIER_KEYS:
        return True
    return key.endswith(("_id", "Id", "_ids", "Ids")) and key not in _CALLER_CHOSEN_IDS


def json_texts(value: Any, *, keys: bool = False) -> list[str]:
    """Every non-empty string inside a JSON value (object keys too with `keys`), in document order."""
    texts: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item:
                texts.append(item)
        elif isinstance(item, dict):
            if keys:
                texts.extend(key for key in item if isinstance(key, str) and key)
            stack.extend(reversed(item.values()))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
    return texts


def readable_texts(value: Any, key: str = "", *, keys: bool = False) -> list[str]:
    """The strings of a provider-shaped JSON value a model reads: identifiers and enum values
    (short values under `type`, `id`, `*_id`…) and base64 payloads are skipped. With `keys`, keys
    that are not structure (identifier keys, schema keywords) are texts too. `key` is the name
    the value itself sits under."""
    texts: list[str] = []
    stack: list[tuple[str, Any]] = [(key, value)]
    while stack:
        name, item = stack.pop()
        if isinstance(item, str):
            if not item:
                continue
            if is_identifier_key(name) and _IDENTIFIER.fullmatch(item):
                continue
            if name in _BINARY_KEYS and _BASE64.fullmatch(item):
                continue
            texts.append(item)
        elif isinstance(item, dict):
            children = list(item.items())
            if keys:
                texts.extend(
                    child for child, _ in children
                    if isinstance(child, str) and child and not is_identifier_key(child)
                    and child not in _SCHEMA_KEYWORDS and child not in _BINARY_KEYS
                )
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend((name, child) for child in reversed(item))
    return texts


def schema_texts(schema: Any) -> list[str]:
    """The texts of a JSON Schema a model reads: descriptions, titles, enum and default values,
    property names, patterns. Keywords and their keyword values (`"type": "string"`) are skipped."""
    texts: list[str] = []
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        name, item = stack.pop()
        if isinstance(item, str):
            if item and name not in _SCHEMA_VALUE_KEYWORDS:
                texts.append(item)
        elif isinstance(item, dict):
            texts.extend(child for child in item if isinstance(child, str) and child and child not in _SCHEMA_KEYWORDS)
            stack.extend(reversed(item.items()))
        elif isinstance(item, list | tuple):
            stack.extend((name, child) for child in reversed(item))
    return texts


def b64decode(data: Any) -> bytes | None:
    """Decode standard or URL-safe base64, padded or not; None when it is not base64 text."""
    if not isinstance(data, str):
        return None
    if "-" in data or "_" in data:
        data = data.replace("-", "+").replace("_", "/")
    missing = -len(data) % 4
    if missing:
        data += "=" * missing
    try:
        return base64.b64decode(data)
    except (binascii.Error, ValueError):
        return None


# Media types a model reads as text (Gemini's and OpenAI's documented text inputs, and the usual
# structured-text types), besides every text/*.
_TEXT_MIMES = frozenset(
    {
        "application/json", "application/xml", "application/x-yaml", "application/yaml", "application/javascript",
        "application/x-javascript", "application/ecmascript", "application/x-typescript", "application/typescript",
        "application/x-python", "application/x-python-code", "application/x-sh", "application/sql",
        "application/rtf", "application/x-tex", "application/toml", "application/graphql", "application/csv",
        "application/x-ndjson", "application/jsonl", "application/ld+json", "application/x-httpd-php",
    }
)
# Media the model reads as pictures, sound or layout, never as the bytes' text: not decoded.
_NON_TEXT_PREFIXES = ("image/", "audio/", "video/", "font/", "model/")
_NON_TEXT_MIMES = frozenset({"application/pdf", "application/zip", "application/gzip", "application/x-tar"})


def is_text_mime(mime_type: str) -> bool:
    """True for media types whose bytes are text (text/*, JSON, XML, YAML, source code…)."""
    base = mime_type.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in _TEXT_MIMES or base.endswith(("+json", "+xml", "+yaml"))


def decode_text(data: bytes) -> str:
    """Bytes as the text a reader would see: UTF-16/32 by their byte order mark, else UTF-8
    (undecodable bytes replaced, never dropped)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return data.decode("utf-32", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def media_text(mime_type: str, data: bytes | None) -> str | None:
    """The text inline media holds, or None when the model reads it as something else.

    Text types are decoded. So are bytes of a generic or unknown type that are plainly UTF-8 text
    (a `.txt` sent as application/octet-stream): the provider may sniff and read them as text.
    Pictures, sound, video and PDFs are not text here (a PDF's text is not extracted).
    """
    if not data:
        return None
    base = mime_type.split(";", 1)[0].strip().lower()
    if is_text_mime(base):
        return decode_text(data)
    if base.startswith(_NON_TEXT_PREFIXES) or base in _NON_TEXT_MIMES:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text
