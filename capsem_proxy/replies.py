"""Replies the proxy makes itself (Envoy's "local replies"): provider-shaped errors with the
seed-compatible `detail`, and the wording of policy blocks."""

from __future__ import annotations

import orjson

from capsem_proxy.asgi import Send, send_response
from capsem_proxy.decisions import CONFIRMATION_VERDICTS, Decision
from capsem_proxy.errors import ErrorKind, ProxyError
from capsem_proxy.providers.base import ProviderAdapter
from capsem_proxy.scanning import TOO_LARGE_TO_SCREEN

__all__ = ["DECISION_ID_HEADER", "JSON_CONTENT_TYPE", "block_error", "block_message", "send_error"]

DECISION_ID_HEADER = b"x-capsem-decision-id"
JSON_CONTENT_TYPE = (b"content-type", b"application/json")

_BLOCK_PREFIXES = {
    "on_model_call": "Request blocked by security policy: ",
    "on_tool_response": "Request blocked by security policy: ",
    "on_tool_call": "Tool blocked by security policy: ",
    "on_model_response": "Response blocked by security policy: ",
}


def block_message(decision: Decision) -> str:
    """The caller-facing message for a blocking decision (the seed's wording)."""
    prefix = _BLOCK_PREFIXES.get(decision.hook, "Request blocked by security policy: ")
    details = decision.details or decision.reason
    if decision.hook == "on_tool_call" and decision.extra.get("emitted") and decision.subject:
        details = f"{details} (tool call '{decision.subject}')"
    if decision.verdict in CONFIRMATION_VERDICTS:
        details = f"{decision.verdict.value.lower()} required ({details}); decision id {decision.decision_id}"
    return prefix + details


def block_error(decision: Decision) -> ProxyError:
    """The 403 a blocking decision answers with; 413 for a request with more text than the
    detectors screen (its size, not its content, stopped it: a smaller request would pass)."""
    answer_side = decision.hook == "on_model_response" or bool(decision.extra.get("emitted"))
    if decision.reason == TOO_LARGE_TO_SCREEN and not answer_side:
        return ProxyError(block_message(decision), status=413, kind=ErrorKind.TOO_LARGE)
    return ProxyError(block_message(decision), status=403, kind=ErrorKind.PERMISSION)


async def send_error(
    send: Send, adapter: ProviderAdapter, error: ProxyError, extra_headers: list[tuple[bytes, bytes]]
) -> None:
    """Answer with `error` in the provider's own error shape plus `detail`."""
    payload = {"detail": error.message, **adapter.error_payload(error.status, error.message, error.kind)}
    await send_response(send, error.status, [JSON_CONTENT_TYPE, *extra_headers], orjson.dumps(payload))
