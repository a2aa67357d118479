"""Anthropic personality: messages (JSON or SSE), count_tokens, models."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .common import (
    Api,
    Ctx,
    choose_tool,
    estimate_tokens,
    json_answer,
    rand_alnum,
    reply_text,
    split_text,
    sse,
    stream_answer,
    text_parts,
)

_STATIC_HEADERS = {
    "anthropic-organization-id": "00000000-0000-4000-8000-00000000fa4e",
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
    "anthropic-ratelimit-input-tokens-limit": "400000",
    "anthropic-ratelimit-input-tokens-remaining": "399000",
    "anthropic-ratelimit-output-tokens-limit": "80000",
    "anthropic-ratelimit-output-tokens-remaining": "79000",
}
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_MODELS = (
    ("claude-opus-4-7", "Claude Opus 4.7", "2026-04-01T00:00:00Z"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-01T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
)
_MODELS_BODY = orjson.dumps(
    {
        "data": [{"type": "model", "id": m, "display_name": d, "created_at": c} for m, d, c in _MODELS],
        "has_more": False,
        "first_id": _MODELS[0][0],
        "last_id": _MODELS[-1][0],
    }
)
_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_CACHE_CREATION = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}


def _request_id() -> str:
    return "req_011C" + rand_alnum(20)


class AnthropicApi(Api):
    """x-api-key (or Bearer) auth, ``{"type": "error", ...}`` bodies, request-id headers, 529 overloads."""

    name = "anthropic"
    json_type = "application/json"
    sse_type = "text/event-stream; charset=utf-8"
    overloaded_status = 529

    def auth_key(self, request: web.BaseRequest) -> str | None:
        key = request.headers.get("x-api-key")
        if key:
            return key
        auth = request.headers.get("Authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    def headers(self) -> dict[str, str]:
        headers = dict(_STATIC_HEADERS)
        headers["request-id"] = _request_id()
        return headers

    def rate_limited_headers(self) -> dict[str, str]:
        return {"anthropic-ratelimit-requests-remaining": "0"}

    def error_payload(self, status: int, *, missing_key: bool = False, key: str = "") -> Any:
        etype, message = _ERRORS.get(status, ("api_error", f"Fake error (status {status})."))
        if missing_key:
            message = "x-api-key header is required"
        return {"type": "error", "error": {"type": etype, "message": message}, "request_id": _request_id()}


API = AnthropicApi()


def _last_user(payload: Any) -> str | None:
    for msg in reversed(payload.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return text_parts(msg.get("content"))
    return None


def _tools(payload: dict[str, Any]) -> list[str]:
    return [t["name"] for t in payload.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)]


def _usage(prompt: int, output: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": _CACHE_CREATION,
        "output_tokens": output,
        "service_tier": "standard",
    }


async def messages(ctx: Ctx) -> web.StreamResponse:
    """POST /v1/messages (JSON or SSE)."""
    p = ctx.payload
    sc = ctx.scenario
    model = p.get("model") or "claude-sonnet-4-6"
    tool = choose_tool(sc, _tools(p))
    mid = "msg_01" + rand_alnum(22)
    prompt_tokens = estimate_tokens(len(ctx.body))
    if tool is not None:
        tool_id = "toolu_01" + rand_alnum(22)
        args = orjson.dumps(sc.tool_args).decode()
        block: dict[str, Any] = {"type": "tool_use", "id": tool_id, "name": tool, "input": sc.tool_args}
        stop_reason = "tool_use"
        out_tokens = estimate_tokens(args)
    else:
        text = reply_text(ctx, _last_user)
        block = {"type": "text", "text": text}
        stop_reason = "end_turn"
        out_tokens = estimate_tokens(text)

    if not p.get("stream"):
        return await json_answer(
            ctx,
            {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": _usage(prompt_tokens, out_tokens),
            },
        )

    events = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": _usage(prompt_tokens, 1),
                },
            },
            "message_start",
        ),
    ]
    if tool is not None:
        start_block = {"type": "tool_use", "id": tool_id, "name": tool, "input": {}}
        pieces = ["", *split_text(args, sc.chunk_size)]
        delta_head = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"input_json_delta","partial_json":'
        )
    else:
        start_block = {"type": "text", "text": ""}
        pieces = [piece for piece in split_text(text, sc.chunk_size) if piece]
        delta_head = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":'
        )
    events.append(sse({"type": "content_block_start", "index": 0, "content_block": start_block}, "content_block_start"))
    events.append(_PING)
    events.extend(delta_head + orjson.dumps(piece) + b"}}\n\n" for piece in pieces)
    events.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    events.append(
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {
                    "input_tokens": prompt_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": out_tokens,
                },
            },
            "message_delta",
        )
    )
    events.append(_STOP)
    return await stream_answer(ctx, events)


async def count_tokens(ctx: Ctx) -> web.StreamResponse:
    """POST /v1/messages/count_tokens."""
    return await json_answer(ctx, {"input_tokens": estimate_tokens(len(ctx.body))})


async def list_models(ctx: Ctx) -> web.StreamResponse:
    """GET /v1/models (Anthropic shape)."""
    return await json_answer(ctx, None, raw=_MODELS_BODY)


async def get_model(ctx: Ctx) -> web.StreamResponse:
    """GET /v1/models/{model} (Anthropic shape)."""
    model = ctx.request.match_info.get("tail", _MODELS[0][0])
    return await json_answer(
        ctx, {"type": "model", "id": model, "display_name": model, "created_at": "2025-01-01T00:00:00Z"}
    )
