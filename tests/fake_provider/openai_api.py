"""OpenAI personality: chat completions, responses, embeddings, models."""

from __future__ import annotations

import base64
import random
from typing import Any

import orjson
from aiohttp import web

from .common import (
    Api,
    Ctx,
    choose_tool,
    embedding_vector,
    estimate_tokens,
    json_answer,
    now,
    rand_alnum,
    rand_hex,
    reply_text,
    split_text,
    sse,
    stream_answer,
    text_parts,
)

_STATIC_HEADERS = {
    "openai-version": "2020-10-01",
    "openai-organization": "fake-org",
    "openai-processing-ms": "7",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-tokens": "29999000",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-reset-tokens": "0s",
}
_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (i.e. YOUR_KEY) if you're accessing "
    "the API from your browser and are prompted for a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    403: ("You are not allowed to perform this request.", "invalid_request_error", "unsupported_country_region"),
    404: ("The requested resource does not exist.", "invalid_request_error", "not_found"),
    429: (
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}
_FINGERPRINT = "fp_fake0001"
_MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
_MODEL_CREATED = 1715367049
_MODELS_BODY = orjson.dumps(
    {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"} for m in _MODELS],
    }
)
_USAGE_PROMPT_DETAILS = {"cached_tokens": 0, "audio_tokens": 0}
_USAGE_COMPLETION_DETAILS = {
    "reasoning_tokens": 0,
    "audio_tokens": 0,
    "accepted_prediction_tokens": 0,
    "rejected_prediction_tokens": 0,
}
_DONE = b"data: [DONE]\n\n"


class OpenAIApi(Api):
    """Bearer auth, ``{"error": {...}}`` bodies, x-request-id and x-ratelimit-* headers."""

    name = "openai"
    json_type = "application/json"
    sse_type = "text/event-stream; charset=utf-8"
    overloaded_status = 503

    def auth_key(self, request: web.BaseRequest) -> str | None:
        auth = request.headers.get("Authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    def headers(self) -> dict[str, str]:
        headers = dict(_STATIC_HEADERS)
        headers["x-request-id"] = "req_" + rand_hex(16)
        return headers

    def rate_limited_headers(self) -> dict[str, str]:
        return {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"}

    def error_payload(self, status: int, *, missing_key: bool = False, key: str = "") -> Any:
        if status == 401:
            if missing_key:
                return {
                    "error": {"message": _MISSING_KEY, "type": "invalid_request_error", "param": None, "code": None}
                }
            message = (
                f"Incorrect API key provided: {key or 'unknown'}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return {
                "error": {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
            }
        message, etype, code = _ERRORS.get(status, (f"Fake error (status {status}).", "api_error", None))
        return {"error": {"message": message, "type": etype, "param": None, "code": code}}


API = OpenAIApi()


# --- chat completions -------------------------------------------------------------------------


def _last_user_chat(payload: Any) -> str | None:
    for msg in reversed(payload.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return text_parts(msg.get("content"))
    return None


def _chat_tools(payload: dict[str, Any]) -> list[str]:
    names = []
    for tool in payload.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": _USAGE_PROMPT_DETAILS,
        "completion_tokens_details": _USAGE_COMPLETION_DETAILS,
    }


async def chat_completions(ctx: Ctx) -> web.StreamResponse:
    """POST /v1/chat/completions (JSON or SSE)."""
    p = ctx.payload
    sc = ctx.scenario
    model = p.get("model") or "gpt-4o-mini"
    tool = choose_tool(sc, _chat_tools(p))
    prompt_tokens = estimate_tokens(len(ctx.body))
    cid = "chatcmpl-" + rand_alnum(29)
    created = now()
    if tool is not None:
        args = orjson.dumps(sc.tool_args).decode()
        call_id = "call_" + rand_alnum(24)
        text = ""
        completion_tokens = estimate_tokens(args)
    else:
        args = call_id = ""
        text = reply_text(ctx, _last_user_chat)
        completion_tokens = estimate_tokens(text)
    usage = _usage(prompt_tokens, completion_tokens)

    if p.get("stream"):
        stream_options = p.get("stream_options") or {}
        include_usage = bool(stream_options.get("include_usage"))
        # OpenAI pads every chunk with random characters (`obfuscation`, against size side
        # channels) unless the caller turns it off.
        padded = stream_options.get("include_obfuscation", True) is not False
        head = (
            orjson.dumps(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "service_tier": "default",
                    "system_fingerprint": _FINGERPRINT,
                }
            )[:-1]
            + b',"choices":[{"index":0,"delta":'
        )
        usage_null = b',"usage":null' if include_usage else b""
        tail_open = b',"logprobs":null,"finish_reason":null}]' + usage_null

        def end() -> bytes:
            return b',"obfuscation":"' + rand_alnum(random.randint(1, 12)).encode() + b'"}' if padded else b"}"

        def chunk(delta: dict[str, Any]) -> bytes:
            return b"data: " + head + orjson.dumps(delta) + tail_open + end() + b"\n\n"

        def final(reason: str) -> bytes:
            return (b"data: " + head + b'{},"logprobs":null,"finish_reason":"' + reason.encode() + b'"}]' + usage_null
                    + end() + b"\n\n")

        events: list[bytes] = []
        if tool is not None:
            events.append(
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"index": 0, "id": call_id, "type": "function", "function": {"name": tool, "arguments": ""}}
                        ],
                        "refusal": None,
                    }
                )
            )
            events.extend(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in split_text(args, sc.chunk_size)
            )
            events.append(final("tool_calls"))
        else:
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            events.extend(chunk({"content": piece}) for piece in split_text(text, sc.chunk_size) if piece)
            events.append(final("stop"))
        if include_usage:
            events.append(
                sse(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "service_tier": "default",
                        "system_fingerprint": _FINGERPRINT,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        events.append(_DONE)
        return await stream_answer(ctx, events)

    if tool is not None:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": tool, "arguments": args}}],
            "refusal": None,
            "annotations": [],
        }
        finish = "tool_calls"
    else:
        message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        finish = "stop"
    return await json_answer(
        ctx,
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        },
    )


# --- responses --------------------------------------------------------------------------------


def _last_user_responses(payload: Any) -> str | None:
    data = payload.get("input")
    if isinstance(data, str):
        return data
    for item in reversed(data or []):
        if isinstance(item, dict) and item.get("role") == "user":
            return text_parts(item.get("content"))
    return None


def _response_tools(payload: dict[str, Any]) -> list[str]:
    names = []
    for tool in payload.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("name"), str):
            names.append(tool["name"])
    return names


def _response_obj(
    p: dict[str, Any], rid: str, created: int, status: str, output: list[Any], usage: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": p.get("instructions"),
        "max_output_tokens": p.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": p.get("model") or "gpt-4o-mini",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": p.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": p.get("store", True),
        "temperature": p.get("temperature", 1.0),
        "text": p.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": p.get("tool_choice", "auto"),
        "tools": p.get("tools") or [],
        "top_logprobs": 0,
        "top_p": p.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": p.get("metadata") or {},
    }


async def responses(ctx: Ctx) -> web.StreamResponse:
    """POST /v1/responses (Response object or the typed SSE event sequence)."""
    p = ctx.payload
    sc = ctx.scenario
    tool = choose_tool(sc, _response_tools(p))
    hexid = rand_hex(24)
    rid, created = "resp_" + hexid, now()
    prompt_tokens = estimate_tokens(len(ctx.body))
    if tool is not None:
        args = orjson.dumps(sc.tool_args).decode()
        item_id = "fc_" + hexid
        call_id = "call_" + rand_alnum(24)
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "completed",
            "arguments": args,
            "call_id": call_id,
            "name": tool,
        }
        out_tokens = estimate_tokens(args)
    else:
        text = reply_text(ctx, _last_user_responses)
        item_id = "msg_" + hexid
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        item = {"id": item_id, "type": "message", "status": "completed", "content": [part], "role": "assistant"}
        out_tokens = estimate_tokens(text)
    usage = {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt_tokens + out_tokens,
    }
    final = _response_obj(p, rid, created, "completed", [item], usage)
    if not p.get("stream"):
        return await json_answer(ctx, final)

    events: list[bytes] = []

    def emit(etype: str, **fields: Any) -> None:
        events.append(sse({"type": etype, "sequence_number": len(events), **fields}, etype))

    pending = _response_obj(p, rid, created, "in_progress", [], None)
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    if tool is not None:
        emit("response.output_item.added", output_index=0, item={**item, "status": "in_progress", "arguments": ""})
        for piece in split_text(item["arguments"], sc.chunk_size):
            emit("response.function_call_arguments.delta", item_id=item_id, output_index=0, delta=piece)
        emit(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=0,
            name=tool,
            arguments=item["arguments"],
        )
    else:
        emit(
            "response.output_item.added",
            output_index=0,
            item={"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"},
        )
        empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        emit("response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=empty_part)
        for piece in split_text(text, sc.chunk_size):
            if piece:
                emit(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=0,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
        emit("response.output_text.done", item_id=item_id, output_index=0, content_index=0, text=text, logprobs=[])
        emit("response.content_part.done", item_id=item_id, output_index=0, content_index=0, part=part)
    emit("response.output_item.done", output_index=0, item=item)
    emit("response.completed", response=final)
    return await stream_answer(ctx, events)


# --- embeddings and models --------------------------------------------------------------------

_DIMS = {"text-embedding-3-large": 3072}


def _embed(text: str, dims: int, as_base64: bool) -> str | list[float]:
    vec = embedding_vector(text, dims)
    if as_base64:
        return base64.b64encode(vec.tobytes()).decode("ascii")
    return vec.tolist()


async def embeddings(ctx: Ctx) -> web.StreamResponse:
    """POST /v1/embeddings (float lists or base64 float32, as the SDK asks)."""
    p = ctx.payload
    model = p.get("model") or "text-embedding-3-small"
    dims = int(p.get("dimensions") or _DIMS.get(model, 1536))
    raw = p.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        inputs: list[Any] = [raw]
    else:
        inputs = list(raw or [])
    as_b64 = p.get("encoding_format") == "base64"
    texts = [x if isinstance(x, str) else orjson.dumps(x).decode() for x in inputs]
    data = [{"object": "embedding", "index": i, "embedding": _embed(t, dims, as_b64)} for i, t in enumerate(texts)]
    tokens = sum(estimate_tokens(t) for t in texts)
    return await json_answer(
        ctx,
        {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
    )


async def list_models(ctx: Ctx) -> web.StreamResponse:
    """GET /v1/models."""
    return await json_answer(ctx, None, raw=_MODELS_BODY)


async def get_model(ctx: Ctx) -> web.StreamResponse:
    """GET /v1/models/{model}."""
    model = ctx.request.match_info.get("tail", "gpt-4o-mini")
    return await json_answer(ctx, {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"})
