"""Shared plumbing: request context, provider base class, JSON and SSE answers."""

from __future__ import annotations

import asyncio
import base64
import gzip
import math
import random
import time
import zlib
from array import array
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .recorder import Recorder
from .scenarios import DEFAULT_REPLY, SCENARIO_HEADER, Scenario, ScenarioError, ScenarioStore
from .spelling import answer_content_type, endless_chunks, gzip_bomb, has_spelling, respell_body, respell_events

BAD_KEY = "bad-key"
_POLL_S = 0.02
_getrandbits = random.getrandbits


@dataclass(slots=True)
class State:
    """Process-wide mutable state of one fake provider app."""

    recorder: Recorder
    scenarios: ScenarioStore


@dataclass(slots=True)
class Ctx:
    """Everything a provider handler needs about the current request."""

    request: web.Request
    state: State
    api: Api
    scenario: Scenario
    body: bytes
    payload: Any
    api_key: str


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


def rand_hex(n_bytes: int = 12) -> str:
    """Random lowercase hex id of 2*n_bytes chars (cheap, not cryptographic)."""
    return f"{_getrandbits(n_bytes * 8):0{n_bytes * 2}x}"


_B64_TO_ALNUM = bytes.maketrans(b"+/=", b"kQz")


def rand_alnum(n: int = 24) -> str:
    """Random alphanumeric id (like OpenAI / Anthropic ids), cheap."""
    return base64.b64encode(random.randbytes(n))[:n].translate(_B64_TO_ALNUM).decode("ascii")


def estimate_tokens(text_or_len: str | int) -> int:
    """Rough token estimate: ~4 chars per token, at least 1."""
    n = text_or_len if isinstance(text_or_len, int) else len(text_or_len)
    return max(1, n // 4)


def split_text(text: str, size: int) -> list[str]:
    """Split text into pieces of ``size`` chars (at least one piece)."""
    if not text:
        return [""]
    return [text[i : i + size] for i in range(0, len(text), size)]


def reply_text(ctx: Ctx, last_user_text: Callable[[Any], str | None]) -> str:
    """The answer text the scenario asks for (reply, echo, events expansion)."""
    sc = ctx.scenario
    text = sc.reply if sc.reply is not None else DEFAULT_REPLY
    if sc.echo:
        echoed = last_user_text(ctx.payload)
        if echoed is not None:
            text = echoed
    if sc.events:
        wanted = sc.events * sc.chunk_size
        base = text or DEFAULT_REPLY
        text = (base * (wanted // len(base) + 1))[:wanted]
    return text


def text_parts(value: Any) -> str | None:
    """Join the text of a string or a list of {type: ..., text: ...} parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [p.get("text") for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(texts) if texts else None
    return None


def choose_tool(sc: Scenario, offered: list[str]) -> str | None:
    """Name of the tool to call, or None for a text answer."""
    if not sc.tool_call:
        return None
    if sc.tool_name:
        return sc.tool_name
    return offered[0] if offered else None


async def pause(request: web.BaseRequest, seconds: float) -> bool:
    """Sleep ``seconds``; return False early (and promptly) if the client went away."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        remaining = deadline - loop.time()
        if remaining <= 0:
            return True
        await asyncio.sleep(min(remaining, _POLL_S))


class Api:
    """Provider personality: auth style, native error bodies, answer headers."""

    name = "base"
    json_type = "application/json"
    sse_type = "text/event-stream; charset=utf-8"
    overloaded_status = 503

    def auth_key(self, request: web.BaseRequest) -> str | None:
        """The API key sent by the client, or None when missing."""
        raise NotImplementedError

    def is_stream(self, request: web.BaseRequest, payload: Any) -> bool:
        """Whether the request asks for a streamed answer."""
        return isinstance(payload, dict) and payload.get("stream") is True

    def dumps(self, obj: Any) -> bytes:
        """Serialise a JSON body the way the provider formats it."""
        return orjson.dumps(obj)

    def headers(self) -> dict[str, str]:
        """Per-answer headers (request ids, rate-limit info)."""
        return {}

    def error_payload(self, status: int, *, missing_key: bool = False, key: str = "") -> Any:
        """The provider's native error body for ``status``."""
        raise NotImplementedError

    def error(
        self,
        status: int,
        *,
        missing_key: bool = False,
        key: str = "",
        body: Any = None,
        retry_after: float | str | None = None,
    ) -> web.Response:
        """A complete native error answer."""
        if body is None:
            body = self.error_payload(status, missing_key=missing_key, key=key)
        raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else self.dumps(body)
        headers = self.headers()
        headers["Content-Type"] = self.json_type
        if retry_after is not None:
            headers["retry-after"] = _fmt_num(retry_after)
            headers.update(self.rate_limited_headers())
        return web.Response(body=raw, status=status, headers=headers)

    def rate_limited_headers(self) -> dict[str, str]:
        """Extra headers on a 429 answer."""
        return {}


def _fmt_num(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def scenario_error(api: Api, sc: Scenario, key: str) -> web.Response:
    """The error answer a scenario asks for."""
    if sc.status is not None:
        status = sc.status
    elif sc.auth_error:
        status = 401
    elif sc.rate_limit:
        status = 429
    elif sc.overloaded:
        status = api.overloaded_status
    elif sc.server_error:
        status = 500
    else:
        status = 400
    retry_after = sc.retry_after if (status == 429 or sc.rate_limit) else None
    return api.error(status, key=key, body=sc.error_body, retry_after=retry_after)


def fake_error(status: int, message: str) -> web.Response:
    """An error about the fake provider itself (bad scenario, bad control call)."""
    return web.json_response({"fake_provider_error": message}, status=status)


def decode_body(request: web.BaseRequest, body: bytes) -> bytes:
    """Undo a request content-encoding (the server keeps bodies raw for recording)."""
    enc = request.headers.get("Content-Encoding")
    if not enc or enc == "identity":
        return body
    if enc == "gzip" and body[:2] == b"\x1f\x8b":
        return gzip.decompress(body)
    if enc == "deflate" and body[:1] == b"\x78":
        return zlib.decompress(body)
    return body


def _parse_json(request: web.BaseRequest, body: bytes) -> tuple[Any, str | None]:
    """(payload, None) or (None, reason) when the body is not a JSON object."""
    if not body:
        return {}, None
    try:
        payload = orjson.loads(decode_body(request, body))
    except (orjson.JSONDecodeError, OSError, EOFError, zlib.error) as exc:
        return None, str(exc)
    if not isinstance(payload, dict):
        return None, "body must be a JSON object"
    return payload, None


def endpoint(
    state: State, api: Api, handler: Handler, *, needs_json: bool = True
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a provider handler: record, resolve scenario, slow_ms, auth, scripted errors, JSON body."""
    recorder = state.recorder
    scenarios = state.scenarios

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorder.record(request.method, request.raw_path, request.raw_headers, body)
        try:
            sc, counter_key = scenarios.resolve(request.headers.get(SCENARIO_HEADER))
        except ScenarioError as exc:
            return fake_error(400, str(exc))
        payload, bad_json = _parse_json(request, body) if needs_json else (None, None)
        if sc.slow_ms:
            alive = False
            try:
                alive = await pause(request, sc.slow_ms / 1000)
            finally:
                if not alive and api.is_stream(request, payload):
                    recorder.stream_event(request.path, "cancelled", 0, 0)
            if not alive:
                return web.Response(status=499)
        key = api.auth_key(request)
        if not key:
            return api.error(401, missing_key=True)
        if key == BAD_KEY:
            return api.error(401, key=key)
        if scenarios.error_applies(sc, counter_key):
            return scenario_error(api, sc, key)
        if bad_json is not None:
            return api.error(400, body=_bad_json(api, bad_json))
        try:
            return await handler(Ctx(request, state, api, sc, body, payload, key))
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            # A body of the wrong shape (a list where the API wants a string…): the provider's 400.
            return api.error(400, body=_bad_shape(api, exc))

    return handle


def _bad_shape(api: Api, exc: BaseException) -> Any:
    payload = api.error_payload(400)
    _set_message(payload, f"Invalid request body: {type(exc).__name__}")
    return payload


def _bad_json(api: Api, exc: object) -> Any:
    payload = api.error_payload(400)
    _set_message(payload, f"We could not parse the JSON body of your request. ({exc})")
    return payload


def _set_message(payload: Any, message: str) -> None:
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        err["message"] = message


async def json_answer(ctx: Ctx, obj: Any, *, raw: bytes | None = None, status: int = 200) -> web.StreamResponse:
    """A non-streamed JSON answer, honouring first_byte_delay_ms, gzip and break_after."""
    body = raw if raw is not None else ctx.api.dumps(obj)
    headers = ctx.api.headers()
    sc = ctx.scenario
    headers["Content-Type"] = answer_content_type(sc, ctx.api.json_type)
    if has_spelling(sc):
        body = respell_body(body, sc)
    if sc.gzip_bomb:
        body = gzip_bomb(body, sc.gzip_bomb)
        headers["Content-Encoding"] = "gzip"
    elif sc.gzip:
        body = gzip.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    if sc.first_byte_delay_ms and not await pause(ctx.request, sc.first_byte_delay_ms / 1000):
        return web.Response(status=499)
    if sc.break_after is None:
        return web.Response(body=body, status=status, headers=headers)
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = len(body)
    await resp.prepare(ctx.request)
    # Not a stream: send the headers (with the full Content-Length) and half the body, then abort.
    await resp.write(body[: len(body) // 2])
    ctx.state.recorder.stream_event(ctx.request.path, "broken", 0, 1)
    _abort(ctx.request)
    return resp


def _abort(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def rechunked(stream: bytes, how: str, seed: int) -> list[bytes]:
    """`stream` cut into writes otherwise than at its events: one byte each, all at once, or random sizes."""
    if how == "whole":
        return [stream]
    if how == "bytes":
        return [stream[index : index + 1] for index in range(len(stream))]
    sizes = random.Random(seed)
    pieces, start = [], 0
    while start < len(stream):
        size = sizes.choice((1, 2, 3, 7, 20, 64, 200, 1000))
        pieces.append(stream[start : start + size])
        start += size
    return pieces


async def stream_answer(ctx: Ctx, events: Iterable[bytes], *, content_type: str | None = None) -> web.StreamResponse:
    """Stream pre-built events, honouring delays, break_after and client disconnects."""
    request = ctx.request
    sc = ctx.scenario
    recorder = ctx.state.recorder
    framing = content_type or ctx.api.sse_type
    is_sse = framing.startswith("text/event-stream")
    events = respell_events(events, sc, sse=is_sse) if has_spelling(sc) else list(events)
    total = len(events)
    if sc.rechunk is not None:
        events = rechunked(b"".join(events), sc.rechunk, sc.rechunk_seed)
    headers = ctx.api.headers()
    headers["Content-Type"] = answer_content_type(sc, framing)
    headers["Cache-Control"] = "no-cache"
    resp = web.StreamResponse(status=200, headers=headers)
    sent = 0
    outcome = "completed"
    try:
        if sc.first_byte_delay_ms and not await pause(request, sc.first_byte_delay_ms / 1000):
            outcome = "cancelled"
            return resp
        await resp.prepare(request)
        delay = sc.delay_ms / 1000
        limit = sc.break_after if sc.rechunk is None else None
        for event in events:
            if limit is not None and sent >= limit:
                outcome = "broken"
                _abort(request)
                return resp
            if sent and delay and not await pause(request, delay):
                outcome = "cancelled"
                return resp
            transport = request.transport
            if transport is None or transport.is_closing():
                outcome = "cancelled"
                return resp
            await resp.write(event)
            sent += 1
            if sc.endless_event:
                outcome = await _write_endless_event(request, resp, is_sse)
                return resp
        if limit is not None and sent >= limit:
            outcome = "broken"
            _abort(request)
            return resp
        await resp.write_eof()
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    except ConnectionError:
        outcome = "cancelled"
        return resp
    finally:
        recorder.stream_event(request.path, outcome, sent, total)
    return resp


async def _write_endless_event(request: web.BaseRequest, resp: web.StreamResponse, is_sse: bool) -> str:
    """Write an event that never ends until the client goes away (a hostile or broken provider)."""
    async for chunk in endless_chunks(is_sse):
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        try:
            await resp.write(chunk)
        except ConnectionError:
            break
    return "cancelled"


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event: optional ``event:`` line, ``data:`` JSON line, blank line."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


_VECTORS: dict[int, array] = {}


def embedding_vector(text: str, dims: int) -> array:
    """A deterministic unit float32 vector for ``text`` (a rotation of a fixed base vector)."""
    base = _VECTORS.get(dims)
    if base is None:
        raw = [math.sin(i * 0.7) + 0.5 * math.cos(i * 0.13) for i in range(dims)]
        norm = math.sqrt(sum(x * x for x in raw)) or 1.0
        base = _VECTORS[dims] = array("f", (x / norm for x in raw))
    shift = zlib.crc32(text.encode()) % dims if dims else 0
    return base[shift:] + base[:shift]


def now() -> int:
    """Unix time in whole seconds."""
    return int(time.time())
