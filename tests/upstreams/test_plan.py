"""Which upstreams a request goes to, and what each attempt sends: config validation, model globs
and aliases, Azure's and Vertex's paths, key headers, byte fidelity."""

from __future__ import annotations

import orjson
import pytest

from capsem_proxy.config import ConfigError, Settings, load_settings
from capsem_proxy.routing import match_route
from capsem_proxy.upstreams.outgoing import Outgoing, prepare
from capsem_proxy.upstreams.router import NoUpstream, Router

BODY = b'{"model":"gpt-4o", "messages":[{"role":"user","content":"hi"}], "x_unknown": 1}'
UPSTREAMS = [
    {"name": "azure-eu", "type": "azure_openai", "base_url": "https://contoso.openai.azure.com",
     "api_version": "2024-10-21"},
    {"name": "groq", "type": "openai_compatible", "base_url": "https://api.groq.com/openai/v1", "models": ["llama-*"]},
    {"name": "openai", "type": "openai", "base_url": "https://api.openai.com/v1", "headers": {"X-Team": "a"}},
    {"name": "vertex", "type": "vertex_gemini", "base_url": "https://europe-west4-aiplatform.googleapis.com",
     "project": "p", "location": "europe-west4"},
    {"name": "claude", "type": "anthropic", "base_url": "https://api.anthropic.com"},
]
MODELS = {"smart": ["azure-eu:gpt-4o", "openai:gpt-4o", "claude:claude-sonnet-4-5"], "same": ["openai:gpt-4o"]}


@pytest.fixture
def router() -> Router:
    return Router(Settings(upstreams=UPSTREAMS, models=MODELS))


def _outgoing(method: str, path: str, query: bytes = b"", body: bytes = BODY, model: str = "gpt-4o",
              headers: list[tuple[str, str]] | None = None) -> Outgoing:
    route = match_route(method, path, query, None)
    assert route is not None
    path_and_query = route.upstream_path + ("?" + query.decode() if query else "")
    return Outgoing(method, route, path_and_query, query.decode(), headers or [("authorization", "Bearer sk-c")],
                    body, False, model, "sk-c")


def test_chains_must_name_known_upstreams_and_names_are_unique(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("upstreams: [{name: a, type: openai, base_url: http://x/v1}]\nmodels: {m: [b:gpt-4o]}\n")
    with pytest.raises(ConfigError, match="names no upstream"):
        load_settings(config)
    config.write_text("upstreams: [{name: a, type: openai, base_url: http://x/v1},"
                      " {name: a, type: gemini, base_url: http://y}]\n")
    with pytest.raises(ConfigError, match="used twice"):
        load_settings(config)
    config.write_text("upstreams: [{name: a, type: bedrock, base_url: http://x}]\n")
    with pytest.raises(ConfigError, match="type"):
        load_settings(config)


def test_without_upstreams_each_api_has_its_one_provider():
    router = Router(Settings())
    for path, name in (("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic"),
                       ("/v1beta/models/gemini-2.0-flash:generateContent", "gemini")):
        [target] = router.plan(match_route("POST", path, b"", None), "any-model")
        assert target.label == name
    with pytest.raises(NoUpstream, match="azure_openai"):
        router.plan(match_route("POST", "/openai/deployments/d/chat/completions", b"", None), "d")


def test_globs_pick_the_upstream_else_the_first_without_globs(router):
    route = match_route("POST", "/v1/chat/completions", b"", None)
    assert [t.label for t in router.plan(route, "llama-3.1-8b")] == ["groq"]
    assert [t.label for t in router.plan(route, "gpt-4o")] == ["openai"]  # OpenAI's own type before Azure


def test_an_alias_keeps_its_order_and_crosses_apis_only_for_chat(router):
    chat = match_route("POST", "/v1/chat/completions", b"", None)
    assert [t.label for t in router.plan(chat, "smart")] == [
        "azure-eu:gpt-4o", "openai:gpt-4o", "claude:claude-sonnet-4-5"
    ]
    embeddings = match_route("POST", "/v1/embeddings", b"", None)
    assert [t.label for t in router.plan(embeddings, "smart")] == ["azure-eu:gpt-4o", "openai:gpt-4o"]


def test_same_api_without_alias_change_sends_the_body_byte_for_byte(router):
    [target] = router.plan(match_route("POST", "/v1/chat/completions", b"", None), "same")
    prepared = prepare(target, _outgoing("POST", "/v1/chat/completions", model="gpt-4o"))
    assert prepared.body == BODY
    assert prepared.path_and_query == "/chat/completions"
    assert ("authorization", "Bearer sk-c") in prepared.headers
    assert ("x-team", "a") in prepared.headers


def test_an_alias_rewrites_only_the_model(router):
    [target] = router.plan(match_route("POST", "/v1/chat/completions", b"", None), "same")
    prepared = prepare(target, _outgoing("POST", "/v1/chat/completions", model="same",
                                         body=BODY.replace(b"gpt-4o", b"same")))
    assert orjson.loads(prepared.body) == {**orjson.loads(BODY), "model": "gpt-4o"}


def test_openai_request_to_azure_names_the_deployment_and_sends_api_key(router):
    azure = router.plan(match_route("POST", "/v1/chat/completions", b"", None), "smart")[0]
    prepared = prepare(azure, _outgoing("POST", "/v1/chat/completions", model="smart"))
    assert prepared.path_and_query == "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    assert ("api-key", "sk-c") in prepared.headers
    assert all(name != "authorization" for name, _ in prepared.headers)


def test_azure_request_reaches_azure_as_sent(router):
    path = "/openai/deployments/gpt-4o-eu/chat/completions"
    [target] = router.plan(match_route("POST", path, b"api-version=2025-01-01", None), "gpt-4o-eu")
    outgoing = _outgoing("POST", path, b"api-version=2025-01-01", headers=[("api-key", "az")])
    prepared = prepare(target, outgoing)
    assert prepared.path_and_query == path + "?api-version=2025-01-01"
    assert prepared.headers == [("api-key", "az")]
    assert prepared.body == BODY


def test_gemini_request_to_vertex_moves_the_model_into_the_project_path(router):
    path = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    route = match_route("POST", path, b"alt=sse&key=AIza", None)
    vertex = next(u for u in router.upstreams.values() if u.name == "vertex")
    from capsem_proxy.upstreams.registry import Target

    outgoing = Outgoing("POST", route, path + "?alt=sse&key=AIza", "alt=sse&key=AIza",
                        [("x-goog-api-key", "AIza")], b"{}", True, "gemini-2.0-flash", "AIza")
    prepared = prepare(Target(vertex), outgoing)
    assert prepared.path_and_query == (
        "/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    )
    assert prepared.headers == [("authorization", "Bearer AIza")]


def test_an_upstream_key_replaces_the_callers(monkeypatch):
    monkeypatch.setenv("CAPSEM_TEST_GROQ_KEY", "gsk-held")
    router = Router(Settings(upstreams=[{**UPSTREAMS[1], "api_key_env": "CAPSEM_TEST_GROQ_KEY"}]))
    [target] = router.plan(match_route("POST", "/v1/chat/completions", b"", None), "llama-3")
    prepared = prepare(target, _outgoing("POST", "/v1/chat/completions", model="llama-3"))
    assert prepared.headers == [("authorization", "Bearer gsk-held")]


def test_an_unset_upstream_key_stops_the_start(monkeypatch):
    monkeypatch.delenv("CAPSEM_TEST_MISSING", raising=False)
    with pytest.raises(ValueError, match="CAPSEM_TEST_MISSING"):
        Router(Settings(upstreams=[{**UPSTREAMS[1], "api_key_env": "CAPSEM_TEST_MISSING"}]))


def test_cloud_paths_are_matched_exactly():
    vertex = "/v1beta1/projects/p-1/locations/us-central1/publishers/google/models/gemini-2.0-flash:countTokens"
    route = match_route("POST", vertex, b"", None)
    assert (route.provider, route.operation, route.dialect, route.path_model) == (
        "gemini", "count_tokens", "vertex", "gemini-2.0-flash"
    )
    assert match_route("POST", vertex.replace(":countTokens", ":deleteEverything"), b"", None) is None
    assert match_route("GET", "/openai/deployments/d/chat/completions", b"", None) is None
    assert match_route("POST", "/openai/deployments/d/audio/speech", b"", None) is None
    assert match_route("POST", "/openai/deployments/d/chat/completions/x", b"", None) is None
    route = match_route("POST", "/openai/deployments/d/embeddings", b"api-version=1", None)
    assert (route.provider, route.operation, route.dialect, route.path_model) == ("openai", "embeddings", "azure", "d")


def test_keys_the_gateway_holds_replace_the_callers_by_name_type_or_api(router):
    chain = router.plan(match_route("POST", "/v1/chat/completions", b"", None), "smart")
    outgoing = _outgoing("POST", "/v1/chat/completions", model="smart")
    outgoing.held_keys = {"azure-eu": "az-held", "anthropic": "ant-held"}
    azure, openai_, claude = (prepare(target, outgoing) for target in chain)
    assert ("api-key", "az-held") in azure.headers
    assert ("authorization", "Bearer sk-c") in openai_.headers
    assert ("x-api-key", "ant-held") in claude.headers


def test_a_held_gemini_key_leaves_no_caller_key_in_the_query(monkeypatch):
    monkeypatch.setenv("CAPSEM_TEST_GEMINI_KEY", "AIza-held")
    router = Router(Settings(upstreams=[{"name": "g", "type": "gemini", "base_url": "https://g.example",
                                         "api_key_env": "CAPSEM_TEST_GEMINI_KEY"}]))
    path = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    route = match_route("POST", path, b"alt=sse&key=AIza-caller", None)
    [target] = router.plan(route, "gemini-2.0-flash")
    outgoing = Outgoing("POST", route, path + "?alt=sse&key=AIza-caller", "alt=sse&key=AIza-caller", [], b"{}",
                        True, "gemini-2.0-flash", "AIza-caller")
    prepared = prepare(target, outgoing)
    assert prepared.path_and_query == path + "?alt=sse"
    assert prepared.headers == [("x-goog-api-key", "AIza-held")]
