"""Small tolerant helpers shared by the provider adapters.

Everything here accepts any input and answers something sensible (None, "", {}) instead of
raising: adapters decode untrusted JSON and must never fail on an odd nested shape.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from capsem_proxy.exchange import Exchange, MediaPart, Message, ToolResult, ToolUse, parse_arguments
from capsem_proxy.texts import b64decode

__all__ = [
    "Turn",
    "as_list",
    "as_str",
    "b64decode",
    "bearer_token",
    "dumps",
    "error_message",
    "get",
    "history_call",
    "loads",
    "media_from_url",
    "request_media",
    "texts_in",
    "texts_of",
    "to_int",
    "tool_content",
    "unread",
    "unrecognised",
    "valid_key",
]


def as_str(value: Any) -> str:
    """The value if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def as_list(value: Any) -> list[Any]:
    """The value if it is a list, else []."""
    return value if isinstance(value, list) else []


def texts_of(items: Any, key: str = "text") -> list[str]:
    """The string `key` values of the dicts in a list (e.g. the texts of content blocks)."""
    if not isinstance(items, list):
        return []
    return [text for item in items if isinstance(item, dict) and isinstance(text := item.get(key), str) and text]


def loads(data: str | bytes) -> Any:
    """Parse JSON, or None when it is not JSON."""
    try:
        return orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError):
        return None


def dumps(value: Any) -> str:
    """Serialise to compact JSON text, or "" when the value cannot be serialised."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return ""


def get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """`obj[camel]`, else `obj[snake]` (Gemini accepts both spellings at every level)."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def to_int(value: Any) -> int | None:
    """An int token count, or None (bools and other types are not counts)."""
    return value if type(value) is int else None


def tool_content(text: str) -> Any:
    """A tool's output text, parsed when it is a JSON object."""
    if text.lstrip()[:1] == "{":
        value = loads(text)
        if isinstance(value, dict):
            return value
    return text


def _guess_mime(uri: str, default: str) -> str:
    return mimetypes.guess_type(uri.split("?", 1)[0], strict=False)[0] or default


def media_from_url(url: Any, mime_type: str = "") -> MediaPart | None:
    """A MediaPart from a `data:` URL (decoded bytes) or any other URL / file id (kept as uri)."""
    if not isinstance(url, str) or not url:
        return None
    if url.startswith("data:"):
        header, _, payload = url[5:].partition(",")
        mime, _, params = header.partition(";")
        data = b64decode(payload) if "base64" in params else unquote_to_bytes(payload)
        return MediaPart(mime_type=mime or mime_type or "text/plain", data=data)
    return MediaPart(mime_type=mime_type or _guess_mime(url, "application/octet-stream"), uri=url)


def unread(obj: dict[str, Any], known: frozenset[str], exchange: Exchange) -> None:
    """Hand the fields of `obj` the adapter does not read to the catch-all (`other`).

    `known` holds the fields an adapter decodes or knows hold no text (ids, enums, numbers); one
    set comparison settles the usual case where there is nothing else (hot paths make it inline).
    """
    if not known.issuperset(obj):
        exchange.unrecognised.extend((key, value) for key, value in obj.items() if key not in known)


def unrecognised(exchange: Exchange, value: Any, key: str = "") -> None:
    """Hand a whole value the adapter does not recognise (an unknown block type…) to the catch-all."""
    exchange.unrecognised.append((key, value))


def request_media(url: Any, exchange: Exchange, mime_type: str = "") -> MediaPart | None:
    """Media named by a URL in a request: a `data:` URL is decoded (its text is read when it is
    text); any other URL or file id is kept as a uri, and the URL itself is screened as `other`
    (a query string can carry data to whoever serves it)."""
    found = media_from_url(url, mime_type)
    if found is not None and found.uri is not None:
        exchange.unrecognised.append(("", url))  # the URL is the text, not its field's name
    return found


def history_call(name: Any, wire: Any, call_id: Any = "") -> ToolUse:
    """A tool call carried in a request's history, its arguments as the request spells them: a
    JSON text (OpenAI), an object, or whatever a provider's own tool takes."""
    raw = wire if isinstance(wire, str) else dumps(wire) if wire is not None else ""
    return ToolUse(
        name=as_str(name), arguments=parse_arguments(wire), call_id=as_str(call_id), raw_arguments=raw, wire=wire
    )


def texts_in(values: Iterable[Any]) -> list[str]:
    """The non-empty strings among `values`."""
    return [value for value in values if isinstance(value, str) and value]


def error_message(error: Any) -> str:
    """The message of a provider error object (a dict with `message`, or a string)."""
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
        return dumps(error)
    return error if isinstance(error, str) else dumps(error)


def valid_key(value: str) -> str:
    """The stripped key, or "" when it is empty or holds spaces, control or non-ASCII chars."""
    key = value.strip()
    if key and key.isascii() and key.isprintable() and " " not in key:
        return key
    return ""


def bearer_token(value: str) -> str:
    """The token of an `Authorization: Bearer <token>` value, or "" when malformed."""
    scheme, _, token = value.strip().partition(" ")
    return valid_key(token) if scheme.lower() == "bearer" else ""


class Turn:
    """Collects the parts of one provider message, then appends neutral Messages.

    Tool results are split out into a message of role "tool" placed first (providers put
    them first in the turn); the rest of the turn, if any, follows with the given role.
    """

    __slots__ = ("media", "texts", "thinking", "tool_calls", "tool_results")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.thinking: list[str] = []
        self.media: list[MediaPart] = []
        self.tool_calls: list[ToolUse] = []
        self.tool_results: list[ToolResult] = []

    def flush(self, messages: list[Message], role: str) -> None:
        """Append this turn's messages to `messages`."""
        if self.tool_results:
            media = [part for result in self.tool_results for part in result.media]
            messages.append(Message(role="tool", tool_results=self.tool_results, media=media))
            if not (self.texts or self.media or self.tool_calls or self.thinking):
                return
        # role, text, media, tool calls, tool results, thinking: positional (no dict of keywords per turn)
        messages.append(
            Message(role, "\n".join(self.texts), self.media, self.tool_calls, [], "\n".join(self.thinking))
        )
