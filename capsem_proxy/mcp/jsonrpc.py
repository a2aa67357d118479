"""JSON-RPC 2.0 framing as MCP uses it: classify messages, build error responses.

The proxy speaks JSON-RPC itself rather than through the `mcp` SDK: it must forward every message
it does not change byte for byte, keep unknown fields and methods, and read any protocol revision
(2025-03-26 batches, 2025-06-18 and 2025-11-25 sessions, 2026-07-28 stateless requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "POLICY_BLOCKED",
    "UPSTREAM_ERROR",
    "Message",
    "error_response",
    "parse_messages",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Implementation-defined server errors (-32000 to -32019): the proxy's own.
UPSTREAM_ERROR = -32000
POLICY_BLOCKED = -32001
# MCP 2026-07-28: an Mcp-Method / Mcp-Name header that disagrees with the body.
HEADER_MISMATCH = -32020

# Revisions whose HTTP transport allows a JSON array of messages in one POST (batching was
# removed in 2025-06-18). Clients of 2025-03-26 send no MCP-Protocol-Version header.
BATCH_REVISIONS = frozenset({"", "2024-11-05", "2025-03-26"})


class InvalidMessage(ValueError):
    """A JSON value that is no JSON-RPC 2.0 message; `request_id` when one could be read."""

    def __init__(self, reason: str, request_id: Any = None) -> None:
        super().__init__(reason)
        self.request_id = request_id


@dataclass(slots=True)
class Message:
    """One JSON-RPC message: a request (method and id), a notification (method, no id) or a
    response (id and result or error). `body` is the parsed object, changed in place by a redaction."""

    body: dict[str, Any]

    @property
    def method(self) -> str:
        method = self.body.get("method")
        return method if isinstance(method, str) else ""

    @property
    def id(self) -> Any:
        return self.body.get("id")

    @property
    def is_request(self) -> bool:
        return "method" in self.body and "id" in self.body

    @property
    def is_notification(self) -> bool:
        return "method" in self.body and "id" not in self.body

    @property
    def is_response(self) -> bool:
        return "method" not in self.body

    @property
    def params(self) -> dict[str, Any]:
        params = self.body.get("params")
        return params if isinstance(params, dict) else {}

    @property
    def result(self) -> dict[str, Any] | None:
        result = self.body.get("result")
        return result if isinstance(result, dict) else None


def _valid_id(value: Any) -> bool:
    # JSON-RPC ids are strings or numbers (null only in an error answering an unreadable request).
    return isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))


def check_message(value: Any) -> Message:
    """`value` as a Message; InvalidMessage when it is not a JSON-RPC 2.0 message."""
    if not isinstance(value, dict):
        raise InvalidMessage("a JSON-RPC message must be an object")
    request_id = value.get("id")
    readable_id = request_id if _valid_id(request_id) else None
    if value.get("jsonrpc") != "2.0":
        raise InvalidMessage("the message is not JSON-RPC 2.0 (jsonrpc must be \"2.0\")", readable_id)
    if "id" in value and not _valid_id(request_id) and not (request_id is None and "error" in value):
        raise InvalidMessage("a JSON-RPC id must be a string or a number", None)
    if "method" in value:
        if not isinstance(value["method"], str) or not value["method"]:
            raise InvalidMessage("the method must be a non-empty string", readable_id)
        if "params" in value and not isinstance(value["params"], dict | list):
            raise InvalidMessage("params must be an object or an array", readable_id)
    elif ("result" in value) == ("error" in value) or "id" not in value:
        raise InvalidMessage("a response needs an id and either a result or an error", readable_id)
    return Message(value)


def parse_messages(body: bytes) -> tuple[list[Message | InvalidMessage], bool]:
    """The messages of a POST body and whether it was a batch (a JSON array).

    ValueError (with the JSON-RPC code in `args[1]`) when the body is no JSON or an empty batch;
    a member that is no message is returned as its InvalidMessage, so the others still go on.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not valid JSON ({exc.msg})", PARSE_ERROR) from None
    if isinstance(document, list):
        if not document:
            raise ValueError("an empty batch is not a JSON-RPC request", INVALID_REQUEST)
        messages: list[Message | InvalidMessage] = []
        for member in document:
            try:
                messages.append(check_message(member))
            except InvalidMessage as exc:
                messages.append(exc)
        return messages, True
    try:
        return [check_message(document)], False
    except InvalidMessage as exc:
        return [exc], False


def error_response(request_id: Any, code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def encode(value: Any) -> bytes:
    """A message (or list of messages) as JSON bytes."""
    return orjson.dumps(value)
