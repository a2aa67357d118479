"""What one attempt sends to one upstream: the path, headers and body of the client's request as
the target upstream's API spells it.

When the client's API and the upstream's agree, the body goes byte for byte (only an alias
rewrites its `model`), and the caller's key headers are left alone when the upstream reads the
same ones. Azure OpenAI names the model in the path (the deployment) and reads `api-key`; Vertex
AI names project, region and model in the path and reads a bearer token. An OpenAI chat request
served by an Anthropic or Gemini upstream is translated (capsem_proxy.translation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import orjson

from capsem_proxy.routing import Route
from capsem_proxy.translation import Translation, translation_for
from capsem_proxy.upstreams.registry import Target, Upstream

__all__ = ["Outgoing", "Prepared", "can_serve", "prepare"]

# Headers that carry a provider key, whoever's: replaced when the upstream reads another one.
_KEY_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "x-goog-api-key"})
# The dialect each upstream type reads natively (its key header and path layout).
_NATIVE_DIALECT = {
    "openai": "openai",
    "openai_compatible": "openai",
    "azure_openai": "azure",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "vertex_gemini": "vertex",
}
_ANTHROPIC_VERSION = "2023-06-01"


@dataclass(slots=True)
class Outgoing:
    """The client's request, once policies have passed it, as every attempt starts from it."""

    method: str
    route: Route
    path_and_query: str  # the upstream path the client's own provider would get, with the query
    query_string: str
    headers: list[tuple[str, str]]
    body: bytes
    stream: bool
    model: str  # the model the client asked for ("" when none)
    caller_key: str
    # Keys the proxy holds for this caller (gateway mode), by upstream name, else by upstream type,
    # else by API (openai, anthropic, gemini); one found replaces the caller's.
    held_keys: Mapping[str, str] | None = None

    @property
    def dialect(self) -> str:
        return self.route.dialect or self.route.provider


@dataclass(slots=True)
class Prepared:
    """One attempt's request, ready for the upstream's client."""

    path_and_query: str
    headers: list[tuple[str, str]]
    body: bytes | None
    translation: Translation | None = None


def can_serve(upstream: Upstream, route: Route) -> bool:
    """Whether `upstream` can answer a request of `route` (same API, or an OpenAI chat it translates)."""
    if upstream.wire == route.provider:
        # A Gemini-API request reaches Vertex AI only when the upstream names its project.
        return not (upstream.type == "vertex_gemini" and route.dialect != "vertex" and not upstream.project)
    if route.provider != "openai" or route.operation != "chat":
        return False
    return upstream.wire == "anthropic" or (upstream.type != "vertex_gemini" or bool(upstream.project))


def prepare(target: Target, outgoing: Outgoing) -> Prepared:
    """The request one attempt sends to `target`."""
    upstream = target.upstream
    route = outgoing.route
    model = target.model
    held = _held_key(outgoing.held_keys, upstream) if outgoing.held_keys else None
    key = held or upstream.held_key
    native = _NATIVE_DIALECT[upstream.type]
    if upstream.wire != route.provider:
        return _translated(target, outgoing, key or outgoing.caller_key)
    dialect = outgoing.dialect
    body: bytes | None = outgoing.body or None
    headers = outgoing.headers
    if dialect == native:
        path = outgoing.path_and_query
        if model is not None and model != outgoing.model:
            path, body = _renamed(dialect, route, path, body, model)
    else:
        path, body = _respelled(upstream, outgoing, model or outgoing.model, body)
    if key is not None or dialect != native:
        headers = _with_key(headers, upstream.type, key or outgoing.caller_key)
        if key is not None and "?" in path:
            path = _without_query_key(path)  # Gemini's `?key=` would name the caller's key beside it
    if upstream.headers:
        headers = _with_extra(headers, upstream.headers)
    return Prepared(path, headers, body)


def _held_key(held_keys: Mapping[str, str], upstream: Upstream) -> str | None:
    return held_keys.get(upstream.name) or held_keys.get(upstream.type) or held_keys.get(upstream.wire)


def _translated(target: Target, outgoing: Outgoing, key: str) -> Prepared:
    upstream = target.upstream
    model = target.model or outgoing.model
    translation = translation_for(upstream.wire)
    body = translation.request(outgoing.body, model)
    stream = translation.stream
    if upstream.wire == "anthropic":
        path = "/v1/messages"
        extra = [("anthropic-version", _ANTHROPIC_VERSION)]
    else:
        method = "streamGenerateContent" if stream else "generateContent"
        path = _gemini_path(upstream, model, method) + ("?alt=sse" if stream else "")
        extra = []
    headers = [
        (name, value)
        for name, value in outgoing.headers
        if name not in _KEY_HEADERS and name != "content-type" and not name.startswith(("openai-", "x-stainless"))
    ]
    headers.append(("content-type", "application/json"))
    headers.extend(extra)
    headers = _with_key(headers, upstream.type, key)
    if upstream.headers:
        headers = _with_extra(headers, upstream.headers)
    return Prepared(path, headers, body, translation)


def _gemini_path(upstream: Upstream, model: str, method: str) -> str:
    if upstream.type == "vertex_gemini":
        return (
            f"/v1/projects/{upstream.project}/locations/{upstream.location}/publishers/google/models/{model}:{method}"
        )
    return f"/v1beta/models/{model}:{method}"


def _renamed(dialect: str, route: Route, path: str, body: bytes | None, model: str) -> tuple[str, bytes | None]:
    """The same request asking for `model`: in the path (Gemini, Vertex, Azure) or the body."""
    if route.path_model:
        separator = "/deployments/" if dialect == "azure" else "/models/"
        path = path.replace(f"{separator}{route.path_model}", f"{separator}{model}", 1)
        if dialect == "azure" and body:
            body = _with_body_model(body, model, only_if_present=True)
        return path, body
    if body:
        body = _with_body_model(body, model)
    return path, body


def _respelled(upstream: Upstream, outgoing: Outgoing, model: str, body: bytes | None) -> tuple[str, bytes | None]:
    """The path (and body) of a request for another spelling of the same API."""
    route = outgoing.route
    query = outgoing.query_string
    if upstream.wire == "openai":
        # Azure: the deployment in the path, the api-version in the query; others: the model in the body.
        if upstream.type == "azure_openai":
            tail = _openai_tail(route)
            if route.operation in ("chat", "embeddings"):
                path = f"/openai/deployments/{model}{tail}"
            else:
                path = f"/openai{tail}"
            return path + "?" + urlencode({"api-version": upstream.api_version or ""}), body
        if body and model:
            body = _with_body_model(body, model)
        return _openai_tail(route), body
    # Gemini's API on Vertex AI, or the reverse: the same body, the model and method in another path.
    method = route.upstream_path.rpartition(":")[2]
    kept = [(name, value) for name, value in parse_qsl(query, keep_blank_values=True) if name != "key"]
    path = _gemini_path(upstream, model, method)
    return (path + "?" + urlencode(kept)) if kept else path, body


def _without_query_key(path_and_query: str) -> str:
    path, _, query = path_and_query.partition("?")
    kept = [(name, value) for name, value in parse_qsl(query, keep_blank_values=True) if name != "key"]
    return (path + "?" + urlencode(kept)) if kept else path


def _openai_tail(route: Route) -> str:
    """The path below an OpenAI base URL (`/chat/completions`) whatever spelling the client used."""
    if route.dialect != "azure":
        return route.upstream_path
    if route.operation == "chat":
        return "/chat/completions"
    if route.operation == "embeddings":
        return "/embeddings"
    return "/" + route.upstream_path.rpartition("/")[2]


def _with_body_model(body: bytes, model: str, *, only_if_present: bool = False) -> bytes:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(parsed, dict) or (only_if_present and "model" not in parsed):
        return body
    parsed["model"] = model
    return orjson.dumps(parsed)


def _with_key(headers: list[tuple[str, str]], upstream_type: str, key: str) -> list[tuple[str, str]]:
    """`headers` with the provider key in the header `upstream_type` reads, and in no other."""
    kept = [(name, value) for name, value in headers if name not in _KEY_HEADERS]
    if upstream_type in ("openai", "openai_compatible", "vertex_gemini"):
        kept.append(("authorization", f"Bearer {key}"))
    elif upstream_type == "azure_openai":
        kept.append(("api-key", key))
    elif upstream_type == "anthropic":
        kept.append(("x-api-key", key))
    else:
        kept.append(("x-goog-api-key", key))
    return kept


def _with_extra(headers: list[tuple[str, str]], extra: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    names = {name for name, _ in extra}
    return [(name, value) for name, value in headers if name not in names] + list(extra)
