"""Gemini personality: generateContent, streamGenerateContent (SSE or JSON array), countTokens, models."""

from __future__ import annotations

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
    rand_alnum,
    reply_text,
    split_text,
    stream_answer,
    text_parts,
)

_STATIC_HEADERS = {
    "Server": "scaffolding on HTTPServer2",
    "Vary": "Origin, X-Origin, Referer",
    "X-XSS-Protection": "0",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Server-Timing": "gfet4t7; dur=312",
}
_STATUS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_MISSING_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_MODELS = (
    ("gemini-2.5-flash", "Gemini 2.5 Flash", "2.5"),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", "2.5"),
    ("gemini-2.0-flash", "Gemini 2.0 Flash", "2.0"),
    ("text-embedding-004", "Text Embedding 004", "004"),
)
_INDENT = orjson.OPT_INDENT_2


def _model_obj(model: str, display: str, version: str) -> dict[str, Any]:
    methods = (
        ["embedContent", "batchEmbedContents"]
        if "embedding" in model
        else ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
    )
    return {
        "name": f"models/{model}",
        "version": version,
        "displayName": display,
        "description": f"Fake {display}",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": methods,
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }


_MODELS_BODY = orjson.dumps({"models": [_model_obj(*m) for m in _MODELS]}, option=_INDENT)


class GeminiApi(Api):
    """x-goog-api-key / ?key= auth, ``{"error": {code, message, status}}`` bodies, pretty-printed JSON."""

    name = "gemini"
    json_type = "application/json; charset=UTF-8"
    sse_type = "text/event-stream"
    overloaded_status = 503

    def auth_key(self, request: web.BaseRequest) -> str | None:
        key = request.headers.get("x-goog-api-key")
        if key:
            return key
        if "key=" in request.query_string:
            key = request.query.get("key")
            if key:
                return key
        auth = request.headers.get("Authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    def is_stream(self, request: web.BaseRequest, payload: Any) -> bool:
        return request.path.endswith(":streamGenerateContent")

    def dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj, option=_INDENT)

    def headers(self) -> dict[str, str]:
        return dict(_STATIC_HEADERS)

    def error_payload(self, status: int, *, missing_key: bool = False, key: str = "") -> Any:
        code, message = _STATUS.get(status, ("UNKNOWN", f"Fake error (status {status})."))
        error: dict[str, Any] = {"code": status, "message": _MISSING_KEY if missing_key else message, "status": code}
        if status == 401 and not missing_key:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
        return {"error": error}


API = GeminiApi()


def _last_user(payload: Any) -> str | None:
    for content in reversed(payload.get("contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            return text_parts(content.get("parts"))
    return None


def _tools(payload: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for tool in payload.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        for decl in tool.get("functionDeclarations") or tool.get("function_declarations") or []:
            if isinstance(decl, dict) and isinstance(decl.get("name"), str):
                names.append(decl["name"])
    return names


def _split_action(ctx: Ctx) -> tuple[str, str]:
    model, _, action = ctx.request.match_info["tail"].rpartition(":")
    return model, action


async def model_action(ctx: Ctx) -> web.StreamResponse:
    """POST /{v1beta|v1}/models/{model}:{action}."""
    model, action = _split_action(ctx)
    if action == "generateContent":
        return await _generate(ctx, model, stream=False)
    if action == "streamGenerateContent":
        return await _generate(ctx, model, stream=True)
    if action == "countTokens":
        return await _count_tokens(ctx)
    if action == "embedContent":
        return await json_answer(ctx, {"embedding": {"values": _embed_values(ctx.payload.get("content"))}})
    if action == "batchEmbedContents":
        reqs = ctx.payload.get("requests") or []
        return await json_answer(ctx, {"embeddings": [{"values": _embed_values(r.get("content"))} for r in reqs]})
    return ctx.api.error(404)


def _embed_values(content: Any) -> list[float]:
    text = text_parts((content or {}).get("parts")) or ""
    return embedding_vector(text, 768).tolist()


async def _count_tokens(ctx: Ctx) -> web.StreamResponse:
    n = estimate_tokens(len(ctx.body))
    return await json_answer(ctx, {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]})


def _usage(prompt: int, output: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if output is not None:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = prompt + (output or 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage


async def _generate(ctx: Ctx, model: str, *, stream: bool) -> web.StreamResponse:
    p = ctx.payload
    sc = ctx.scenario
    model = model.removeprefix("models/") or "gemini-2.5-flash"
    tool = choose_tool(sc, _tools(p))
    prompt_tokens = estimate_tokens(len(ctx.body))
    response_id = rand_alnum(22)
    if tool is not None:
        pieces: list[dict[str, Any]] = [{"functionCall": {"name": tool, "args": sc.tool_args}}]
        out_tokens = estimate_tokens(len(orjson.dumps(sc.tool_args)))
        text = ""
    else:
        text = reply_text(ctx, _last_user)
        pieces = [{"text": piece} for piece in split_text(text, sc.chunk_size)] if stream else [{"text": text}]
        out_tokens = estimate_tokens(text)

    def chunk(part: dict[str, Any], last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}}
        if last:
            candidate["finishReason"] = "STOP"
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": _usage(prompt_tokens, out_tokens if last else None),
            "modelVersion": model,
            "responseId": response_id,
        }

    if not stream:
        return await json_answer(ctx, chunk(pieces[0], True))
    objs = [chunk(part, i == len(pieces) - 1) for i, part in enumerate(pieces)]
    if ctx.request.query.get("alt") == "sse":
        return await stream_answer(ctx, [b"data: " + orjson.dumps(o) + b"\r\n\r\n" for o in objs])
    # JSON-array stream, written element by element: `[{...}\n,\r\n{...}\n]`.
    events = [(b"[" if i == 0 else b"\n,\r\n") + orjson.dumps(o, option=_INDENT) for i, o in enumerate(objs)]
    events[-1] += b"\n]"
    return await stream_answer(ctx, events, content_type=API.json_type)


async def list_models(ctx: Ctx) -> web.StreamResponse:
    """GET /{v1beta|v1}/models."""
    return await json_answer(ctx, None, raw=_MODELS_BODY)


async def get_model(ctx: Ctx) -> web.StreamResponse:
    """GET /{v1beta|v1}/models/{model}."""
    model = ctx.request.match_info["tail"].removeprefix("models/")
    for m in _MODELS:
        if m[0] == model:
            return await json_answer(ctx, _model_obj(*m))
    return await json_answer(ctx, _model_obj(model, model, "fake"))
