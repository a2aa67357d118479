"""aiohttp application: provider routes plus the ``/_fake/`` control endpoints."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from . import anthropic_api, azure_api, gemini_api, openai_api
from .common import Api, State, endpoint, fake_error
from .recorder import Recorder
from .scenarios import ScenarioError, ScenarioStore

STATE_KEY = web.AppKey("fake_provider_state", State)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


def _pick_by_auth(openai: _Handler, anthropic: _Handler, gemini: _Handler) -> _Handler:
    """Dispatch a path shared by several providers (``GET /v1/models``) on the auth style used."""

    async def handle(request: web.Request) -> web.StreamResponse:
        headers = request.headers
        if "x-goog-api-key" in headers or "key=" in request.query_string:
            return await gemini(request)
        if "anthropic-version" in headers or "x-api-key" in headers:
            return await anthropic(request)
        return await openai(request)

    return handle


def _control_routes(state: State, started: float) -> list[web.RouteDef]:
    recorder, scenarios = state.recorder, state.scenarios

    async def health(_: web.Request) -> web.Response:
        return _json({"ok": True, "pid": os.getpid()})

    async def set_script(request: web.Request) -> web.Response:
        try:
            raw = orjson.loads(await request.read() or b"{}")
            scenarios.set_sticky(raw)
        except (orjson.JSONDecodeError, ScenarioError, TypeError) as exc:
            return fake_error(400, str(exc))
        return _json({"script": scenarios.sticky})

    async def get_script(_: web.Request) -> web.Response:
        return _json({"script": scenarios.sticky})

    async def reset(_: web.Request) -> web.Response:
        recorder.clear()
        scenarios.reset()
        return _json({"ok": True})

    async def requests(_: web.Request) -> web.Response:
        return _json(recorder.requests())

    async def last(_: web.Request) -> web.Response:
        item = recorder.last()
        return _json(item) if item is not None else fake_error(404, "no request recorded")

    async def stream_events(_: web.Request) -> web.Response:
        return _json(recorder.streams())

    async def stats(_: web.Request) -> web.Response:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return _json(
            {
                "requests_total": recorder.total_requests,
                "cpu_user_s": usage.ru_utime,
                "cpu_system_s": usage.ru_stime,
                "uptime_s": time.monotonic() - started,
                "pid": os.getpid(),
            }
        )

    return [
        web.get("/_fake/health", health),
        web.post("/_fake/script", set_script),
        web.get("/_fake/script", get_script),
        web.post("/_fake/reset", reset),
        web.get("/_fake/requests", requests),
        web.get("/_fake/last", last),
        web.get("/_fake/stream_events", stream_events),
        web.get("/_fake/stats", stats),
    ]


def create_app(*, max_recorded: int = 1000) -> web.Application:
    """Build the fake provider application (state lives in ``app[STATE_KEY]``)."""
    state = State(recorder=Recorder(max_recorded), scenarios=ScenarioStore())
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state

    def ep(api: Api, handler: Callable, **kw: bool) -> _Handler:  # type: ignore[type-arg]
        return endpoint(state, api, handler, **kw)

    oa, an, ge, az = openai_api.API, anthropic_api.API, gemini_api.API, azure_api.API
    list_models = _pick_by_auth(
        ep(oa, openai_api.list_models, needs_json=False),
        ep(an, anthropic_api.list_models, needs_json=False),
        ep(ge, gemini_api.list_models, needs_json=False),
    )
    get_model = _pick_by_auth(
        ep(oa, openai_api.get_model, needs_json=False),
        ep(an, anthropic_api.get_model, needs_json=False),
        ep(ge, gemini_api.get_model, needs_json=False),
    )
    gemini_action = ep(ge, gemini_api.model_action)

    async def not_found(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.recorder.record(request.method, request.raw_path, request.raw_headers, body)
        return oa.error(
            404,
            body={
                "error": {
                    "message": f"Unknown request URL: {request.method} {request.path}.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "unknown_url",
                }
            },
        )

    app.add_routes(_control_routes(state, time.monotonic()))
    app.add_routes(
        [
            web.post("/v1/chat/completions", ep(oa, openai_api.chat_completions)),
            web.post("/v1/responses", ep(oa, openai_api.responses)),
            web.post("/v1/embeddings", ep(oa, openai_api.embeddings)),
            web.get("/v1/models", list_models),
            web.get("/v1/models/{tail}", get_model),
            web.post("/v1/models/{tail}", gemini_action),
            web.post("/v1/messages", ep(an, anthropic_api.messages)),
            web.post("/v1/messages/count_tokens", ep(an, anthropic_api.count_tokens)),
            web.get("/{ver:v1beta|v1alpha}/models", ep(ge, gemini_api.list_models, needs_json=False)),
            web.get("/{ver:v1beta|v1alpha}/models/{tail}", ep(ge, gemini_api.get_model, needs_json=False)),
            web.post("/{ver:v1beta|v1alpha}/models/{tail}", gemini_action),
            web.post("/openai/deployments/{deployment}/chat/completions", ep(az, openai_api.chat_completions)),
            web.post("/openai/deployments/{deployment}/embeddings", ep(az, openai_api.embeddings)),
            web.post("/openai/responses", ep(az, openai_api.responses)),
            web.post(
                "/{ver:v1|v1beta1}/projects/{project}/locations/{location}/publishers/google/models/{tail}",
                gemini_action,
            ),
            web.route("*", "/{path:.*}", not_found),
        ]
    )
    return app
