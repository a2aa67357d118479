"""Which provider and operation each path names, and the upstream path it goes to."""

import random
from urllib.parse import parse_qsl

import pytest

from capsem_proxy.routing import QueryConflict, auth_hint, guess_provider, match_route, query_values


@pytest.mark.parametrize(
    ("method", "path", "query", "provider", "operation", "upstream"),
    [
        ("POST", "/v1/chat/completions", b"", "openai", "chat", "/chat/completions"),
        ("POST", "/v1/responses", b"", "openai", "responses", "/responses"),
        ("POST", "/v1/embeddings", b"", "openai", "embeddings", "/embeddings"),
        ("GET", "/v1/models", b"", "openai", "models", "/models"),
        ("GET", "/v1/models", b"key=abc", "gemini", "models", "/v1/models"),
        ("GET", "/v1beta/models", b"", "gemini", "models", "/v1beta/models"),
        ("POST", "/v1/messages", b"", "anthropic", "messages", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens", b"", "anthropic", "count_tokens", "/v1/messages/count_tokens"),
        ("POST", "/v1beta/models/gemini-2.0-flash:generateContent", b"", "gemini", "generate",
         "/v1beta/models/gemini-2.0-flash:generateContent"),
        ("POST", "/v1/models/gemini-2.0-flash:streamGenerateContent", b"alt=sse", "gemini", "stream_generate",
         "/v1/models/gemini-2.0-flash:streamGenerateContent"),
        ("POST", "/v1beta/models/gemini-2.0-flash:countTokens", b"", "gemini", "count_tokens",
         "/v1beta/models/gemini-2.0-flash:countTokens"),
    ],
)
def test_served_routes(method, path, query, provider, operation, upstream):
    route = match_route(method, path, query, None)
    assert route is not None
    assert (route.provider, route.operation, route.upstream_path) == (provider, operation, upstream)


def test_gemini_stream_framing_follows_alt_sse():
    sse = match_route("POST", "/v1beta/models/m:streamGenerateContent", b"alt=sse&key=k", None)
    array = match_route("POST", "/v1beta/models/m:streamGenerateContent", b"", None)
    assert sse.sse and sse.stream_by_path and sse.path_model == "m"
    assert not array.sse and array.stream_by_path


def test_v1_models_goes_to_the_provider_whose_headers_it_carries():
    assert match_route("GET", "/v1/models", b"", "gemini").provider == "gemini"
    anthropic = match_route("GET", "/v1/models", b"", auth_hint({"anthropic-version": "2023-06-01"}))
    assert (anthropic.provider, anthropic.upstream_path) == ("anthropic", "/v1/models")
    assert match_route("GET", "/v1/models/claude-x", b"", "anthropic").provider == "anthropic"
    assert match_route("GET", "/v1/models/gpt-4o", b"", None).upstream_path == "/models/gpt-4o"
    assert auth_hint({"authorization": "Bearer k"}) is None


def test_gemini_embeddings_are_served():
    route = match_route("POST", "/v1beta/models/text-embedding-004:batchEmbedContents", b"", None)
    assert (route.provider, route.operation) == ("gemini", "embed")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/chat/completions"), ("POST", "/v2/whatever"), ("POST", "/v1beta/models/m:unknownMethod"),
     ("DELETE", "/v1/models")],
)
def test_unknown_routes_are_not_matched(method, path):
    assert match_route(method, path, b"", None) is None


def test_guess_provider_for_error_shapes():
    assert guess_provider("/v1beta/nope", set()) == "gemini"
    assert guess_provider("/v1/nope", {"anthropic-version"}) == "anthropic"
    assert guess_provider("/v1/nope", set()) == "openai"


@pytest.mark.parametrize(
    "path",
    [
        "/v1beta/models/gemini-pro:streamGenerateContent%3Falt=sse%23:countTokens",
        "/v1/chat%2Fcompletions",
        "/v1beta/models/gemini pro:generateContent",
        "/v1beta/models/a?b:generateContent",
    ],
)
def test_encoded_or_odd_paths_are_never_routed(path):
    assert match_route("POST", path, b"", None) is None


@pytest.mark.parametrize(
    ("query", "sse"),
    [(b"alt=sse", True), (b"%61lt=sse", True), (b"key=k&alt=sse", True), (b"alt=json", False), (b"", False),
     (b"xalt=sse", False), (b"q=alt%3Dsse", False), (b"alt=sse&alt=sse", True)],
)
def test_gemini_answer_format_is_read_from_the_parsed_alt_parameter(query, sse):
    assert match_route("POST", "/v1beta/models/m:streamGenerateContent", query, None).sse is sse


@pytest.mark.parametrize("query", [b"alt=sse&alt=json", b"alt=proto", b"alt=media", b"alt=SSE", b"alt="])
def test_an_alt_the_proxy_cannot_read_is_refused(query):
    with pytest.raises(QueryConflict):
        match_route("POST", "/v1beta/models/m:generateContent", query, None)


def test_a_percent_encoded_key_parameter_names_gemini_too():
    assert match_route("GET", "/v1/models", b"%6Bey=abc", None).provider == "gemini"
    assert query_values(b"a=1&key=x&%6Bey=y&keys=z", "key") == ["x", "y"]


def test_query_values_read_every_query_as_parse_qsl_does():
    """The split that skips parse_qsl for a query with nothing to decode gives what parse_qsl gives."""
    rng = random.Random(7)
    queries = ["", "alt=sse", "key", "key=", "=x", "&&", "alt=sse&key=a&key=b", "a=b=c", "k=1;k=2", "k=a+b", "k=%41"]
    queries += ["".join(rng.choice("ak=&;+% ") for _ in range(rng.randint(1, 10))) for _ in range(3000)]
    for query in queries:
        for name in ("a", "k", "key", "alt", "", "k;k"):
            expected = [value for key, value in parse_qsl(query, keep_blank_values=True) if key == name]
            assert query_values(query.encode(), name) == expected, (query, name)
