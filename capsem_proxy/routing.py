"""Which provider and operation a request path names, and where it goes upstream."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from operator import methodcaller
from urllib.parse import parse_qsl

__all__ = ["QueryConflict", "Route", "guess_provider", "match_route", "query_values"]


class QueryConflict(ValueError):
    """A query parameter the proxy acts on is repeated with different values, or has a value the
    proxy cannot honour (Gemini `alt=proto`)."""


@dataclass(frozen=True, slots=True)
class Route:
    """A matched route: provider, operation, model named in the path (Gemini) and upstream path."""

    provider: str
    operation: str
    upstream_path: str
    path_model: str = ""
    stream_by_path: bool = False
    sse: bool = True
    # The provider's cloud spelling of the same API: "azure" (Azure OpenAI) or "vertex" (Vertex AI).
    dialect: str = ""


# OpenAI's SDK base URL ends in /v1, so its paths are forwarded without that prefix.
_STATIC_PATHS: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("POST", "/v1/chat/completions"): ("openai", "chat", True),
    ("POST", "/v1/responses"): ("openai", "responses", True),
    ("POST", "/v1/embeddings"): ("openai", "embeddings", True),
    ("GET", "/v1/models"): ("openai", "models", True),
    ("POST", "/v1/messages"): ("anthropic", "messages", False),
    ("POST", "/v1/messages/count_tokens"): ("anthropic", "count_tokens", False),
    ("GET", "/v1beta/models"): ("gemini", "models", False),
}
# Their routes, built once (a Route is frozen: every request of a static path shares one).
_STATIC_ROUTES: dict[tuple[str, str], Route] = {
    (method, path): Route(provider, operation, path[3:] if strip_v1 else path)
    for (method, path), (provider, operation, strip_v1) in _STATIC_PATHS.items()
}

_GEMINI_METHODS = {
    "generateContent": ("generate", False),
    "streamGenerateContent": ("stream_generate", True),
    "countTokens": ("count_tokens", False),
    "embedContent": ("embed", False),
    "batchEmbedContents": ("embed", False),
}


# Model names as the providers spell them (gemini-2.0-flash, text-embedding-004, gemini-1.5-pro-001).
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def query_values(query_string: bytes, name: str) -> list[str]:
    """Every value of parameter `name`, decoded as a server decodes them (`%6Bey=` is `key=`)."""
    if not query_string:
        return []
    query = query_string.decode("latin-1")
    if "%" in query or "+" in query:
        return [value for key, value in parse_qsl(query, keep_blank_values=True) if key == name]
    # Nothing to decode (the usual `alt=sse`): parse_qsl's split, without its decoding calls per field.
    return [value for key, equals, value in map(_split_field, query.split("&")) if key == name and (key or equals)]


# A query field's name, "=" and value (no "=": the whole field is the name and the value is blank, as
# parse_qsl reads it with blank values kept; an empty field is no field).
_split_field = methodcaller("partition", "=")


def _gemini_sse(query_string: bytes) -> bool:
    """Whether a Gemini answer streams as SSE (`alt=sse`) or as a JSON array (no `alt`, or
    `alt=json`), read from the parsed query; any other `alt`, or two different ones, is refused."""
    values = set(query_values(query_string, "alt"))
    if len(values) > 1:
        raise QueryConflict("the alt query parameter is given twice with different values")
    alt = values.pop() if values else "json"
    if alt not in ("json", "sse"):
        raise QueryConflict("alt must be json or sse: the proxy reads no other answer format")
    return alt == "sse"


def match_route(method: str, path: str, query_string: bytes, auth_hint: str | None) -> Route | None:
    """The route for a request, or None when the proxy does not serve it; QueryConflict when
    the query is ambiguous about how to answer.

    `auth_hint` names the provider whose own headers the request carries ("gemini" for
    x-goog-api-key, "anthropic" for anthropic-version / x-api-key): `/v1/models` is shared by
    the three APIs, and a key must never go to another provider than its own.
    """
    if "%" in path:
        return None  # no served route needs percent-encoding; encoded paths are refused
    if path.startswith(("/openai/", "/v1/projects/", "/v1beta1/projects/")):
        return _cloud_route(method, path, query_string)
    if auth_hint is None and query_values(query_string, "key"):
        auth_hint = "gemini"
    static = _STATIC_ROUTES.get((method, path))
    if static is not None:
        if path == "/v1/models" and auth_hint is not None:
            return Route(auth_hint, "models", path)
        return static
    if path.startswith("/v1beta/models/") or path.startswith("/v1/models/"):
        prefix_length = 15 if path.startswith("/v1beta/") else 11
        name, _, gemini_method = path[prefix_length:].rpartition(":")
        if not name:
            if method != "GET" or not gemini_method or "/" in gemini_method:
                return None
            # GET /v1beta/models/{model}: Gemini's model lookup; GET /v1/models/{id}: whoever's key it is.
            if path.startswith("/v1/") and auth_hint != "gemini":
                if auth_hint == "anthropic":
                    return Route("anthropic", "models", path)
                return Route("openai", "models", path[3:])
            return Route("gemini", "models", path, path_model=gemini_method)
        if method != "POST" or not _MODEL_NAME.fullmatch(name):
            return None
        known = _GEMINI_METHODS.get(gemini_method)
        if known is None:
            return None
        operation, streams = known
        return Route(
            "gemini", operation, path, path_model=name, stream_by_path=streams, sse=_gemini_sse(query_string)
        )
    return None


# Azure OpenAI: /openai/deployments/{deployment}/{operation} and the deployment-free Responses API.
_AZURE_OPERATIONS = {"chat/completions": "chat", "embeddings": "embeddings"}
_AZURE_STATIC = {"/openai/responses": "responses", "/openai/v1/responses": "responses"}
# Vertex AI: /{v1|v1beta1}/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}
_VERTEX_PATH = re.compile(
    r"/v1(?:beta1)?/projects/[A-Za-z0-9._-]+/locations/[A-Za-z0-9-]+/publishers/google/models/([^/:]+):(\w+)"
)


def _cloud_route(method: str, path: str, query_string: bytes) -> Route | None:
    """Azure OpenAI's and Vertex AI's own paths: the same APIs as OpenAI's and Gemini's."""
    if method != "POST":
        return None
    if path.startswith("/openai/"):
        operation = _AZURE_STATIC.get(path)
        if operation is not None:
            return Route("openai", operation, path, dialect="azure")
        deployment, _, tail = path[len("/openai/deployments/") :].partition("/")
        operation = _AZURE_OPERATIONS.get(tail)
        if not path.startswith("/openai/deployments/") or operation is None or not _MODEL_NAME.fullmatch(deployment):
            return None
        return Route("openai", operation, path, path_model=deployment, dialect="azure")
    match = _VERTEX_PATH.fullmatch(path)
    if match is None:
        return None
    model, gemini_method = match.groups()
    known = _GEMINI_METHODS.get(gemini_method)
    if known is None or not _MODEL_NAME.fullmatch(model):
        return None
    operation, streams = known
    return Route(
        "gemini", operation, path, path_model=model, stream_by_path=streams, sse=_gemini_sse(query_string),
        dialect="vertex",
    )


def auth_hint(header_names: Collection[str]) -> str | None:
    """The provider whose own headers a request carries, if any."""
    if "x-goog-api-key" in header_names:
        return "gemini"
    if "anthropic-version" in header_names or "x-api-key" in header_names:
        return "anthropic"
    return None


def guess_provider(path: str, header_names: Collection[str]) -> str:
    """The provider whose error shape best fits a request no route matched."""
    if path.startswith("/v1beta") or "x-goog-api-key" in header_names or ":" in path:
        return "gemini"
    if "anthropic-version" in header_names or "x-api-key" in header_names or path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"
