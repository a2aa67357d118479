"""Generated bodies on every route, against the real proxy, the fake provider and the fake MCP
server (hypothesis, a fixed number of examples so the file stays well under 30 seconds).

For every body, well formed or not: no 500, no traceback in the answer, and an error in the shape
of the route's API. Bodies built from the field table of the bypass matrix (tests/request_fields.py)
carry a secret and an e-mail in a text field and in extra fields added anywhere in the document,
with `secrets` and `pii_detect` set to block: whatever the proxy answers, the provider's record of
what it received never holds them. On the MCP route, `tools/call` arguments carry them and the
fake server's record of the calls it ran never does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsem_proxy.texts import json_texts
from tests.fake_mcp.process import FakeMcpProcess, start_fake_mcp
from tests.proxy_process import ProxyProcess, start_proxy
from tests.request_fields import DETECTORS, ROUTES, Route, fields_of

SECRET, EMAIL = DETECTORS["secrets"], DETECTORS["pii_detect"]
LEAKS = (SECRET, EMAIL)
POLICIES = [
    {"class": "secrets", "options": {"action": "block"}},
    # An MCP tools/call is a call the model emitted: pii_detect reads those when asked to.
    {"class": "pii_detect", "options": {"action": "block", "entities": ["email"], "emitted_tool_calls": True}},
]
# A fixed number of examples: bounded time in CI, and the same examples there on every run.
FUZZ = settings(
    max_examples=int(os.environ.get("CAPSEM_FUZZ_EXAMPLES", "100")), deadline=None, database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
RAN: dict[str, int] = {}

# Readable text around the leaks: letters, digits, punctuation and spaces of any script.
_TEXT = st.text(st.characters(categories=["L", "N", "P", "Zs"]), max_size=40)
# Extra keys no API defines ("x_" and lowercase letters): never an identifier-like or a known field.
_KEY = st.from_regex(r"x_[a-z]{1,8}", fullmatch=True)
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                    st.floats(allow_nan=False, allow_infinity=False), _TEXT)


def _json(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaf, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_KEY, children, max_size=4)), max_leaves=12)


def _leaky(text: str, leak: str, tail: str) -> str:
    return f"{text} {leak} {tail}".strip()


_LEAKY_TEXT = st.builds(_leaky, _TEXT, st.sampled_from(LEAKS), _TEXT)


@pytest.fixture(scope="module")
def fake_mcp() -> Iterator[FakeMcpProcess]:
    server = start_fake_mcp("--json", "--stateless")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzzed_proxy(fake_provider, fake_mcp) -> Iterator[ProxyProcess]:
    """One proxy for every route: the providers' (the fake provider) and an MCP server's (the fake one)."""
    config = {"policies": POLICIES, "mcp": {"servers": {"files": {"url": fake_mcp.url}}}}
    process = start_proxy(fake_provider.base_url, config, log_level="warning")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\nfuzz examples run: {RAN}")


# --------------------------------------------------------------------------- answers


def _assert_shaped(route_api: str, response: httpx.Response) -> None:
    """No 500, no traceback; an error is in the shape of the route's API."""
    assert response.status_code != 500 and response.status_code < 600, response.text[:500]
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text[:500]
    if response.status_code < 400:
        return
    document = response.json()
    if route_api.startswith("openai"):
        assert isinstance(document["error"]["message"], str) and document["error"]["type"], document
    elif route_api == "anthropic":
        assert document["type"] == "error" and document["error"]["type"], document
    else:
        assert isinstance(document["error"]["code"], int) and document["error"]["status"], document


def _leaked(received: bytes) -> list[str]:
    """The leaks a body the provider received holds, as bytes or in any decoded string."""
    found = [leak for leak in LEAKS if leak.encode() in received]
    try:
        texts = json_texts(orjson.loads(received), keys=True)
    except orjson.JSONDecodeError:
        texts = []
    found += [leak for leak in LEAKS for text in texts if leak in text]
    return found


def _post(http: httpx.Client, proxy: ProxyProcess, route: Route, content: bytes) -> httpx.Response:
    return http.post(proxy.base_url + route.path, content=content, headers={**route.headers,
                                                                             "content-type": "application/json"})


# --------------------------------------------------------------------------- bodies


@st.composite
def _planted(draw: st.DrawFn, route: Route) -> dict[str, Any]:
    """A body of `route` from the field table with a leak in the field, and extra fields (some
    leaking) added to objects anywhere in the document."""
    field = draw(st.sampled_from(fields_of(route)))
    # A copy: the table's builders share constant parts between bodies.
    body = orjson.loads(orjson.dumps(route.adapt(field.build(draw(_LEAKY_TEXT)))))
    objects: list[dict[str, Any]] = []
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            objects.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(objects))
        key = draw(_KEY)
        if key not in target:
            target[key] = draw(_json(st.one_of(_SCALAR, _LEAKY_TEXT)))
    return body


_ROUTE = st.sampled_from(ROUTES)


@FUZZ
@given(data=st.data())
def test_generated_bodies_with_leaks_never_reach_the_provider(fuzzed_proxy, http, fake_provider, data):
    route = data.draw(_ROUTE, label="route")
    body = data.draw(_planted(route), label="body")
    seen = len(fake_provider.requests())
    response = _post(http, fuzzed_proxy, route, orjson.dumps(body))
    _assert_shaped(route.api, response)
    for record in fake_provider.requests()[seen:]:
        leaked = _leaked(fake_provider.body_of(record))
        assert not leaked, (route.name, leaked, response.status_code, body)
    RAN["planted"] = RAN.get("planted", 0) + 1


_DOCUMENT = _json(_SCALAR)


@st.composite
def _malformed(draw: st.DrawFn) -> bytes:
    """A body that is anything but the API's: random JSON, a valid body with a random value in
    place of a member, truncated or garbled bytes."""
    kind = draw(st.sampled_from(["json", "replaced", "bytes", "truncated"]))
    if kind == "json":
        return orjson.dumps(draw(_DOCUMENT))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    route = draw(_ROUTE)
    body = orjson.loads(orjson.dumps(route.adapt(draw(st.sampled_from(fields_of(route))).build("hello"))))
    if kind == "replaced":
        key = draw(st.sampled_from(sorted(body)))
        body[key] = draw(_DOCUMENT)
        return orjson.dumps(body)
    encoded = orjson.dumps(body)
    return encoded[: draw(st.integers(0, len(encoded) - 1))]


@FUZZ
@given(route=_ROUTE, content=_malformed())
def test_malformed_bodies_get_provider_shaped_errors(fuzzed_proxy, http, route, content):
    response = _post(http, fuzzed_proxy, route, content)
    _assert_shaped(route.api, response)
    RAN["malformed"] = RAN.get("malformed", 0) + 1


# --------------------------------------------------------------------------- MCP


_METHOD = st.one_of(st.sampled_from(["tools/call", "tools/list", "resources/read", "prompts/get", "ping",
                                     "initialize", "notifications/initialized"]), _TEXT)
_MESSAGE = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0"]), "method": _METHOD},
    optional={"id": st.one_of(st.integers(-5, 2**40), _TEXT, st.none()), "params": _DOCUMENT},
)


@st.composite
def _mcp_body(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A body for the MCP route and whether it plants a leak in a tools/call's arguments."""
    kind = draw(st.sampled_from(["call", "call", "message", "batch", "bytes"]))
    if kind == "call":
        arguments: dict[str, Any] = {"text": draw(_LEAKY_TEXT)}
        arguments.update(draw(st.dictionaries(_KEY, _json(st.one_of(_SCALAR, _LEAKY_TEXT)), max_size=2)))
        message = {"jsonrpc": "2.0", "id": draw(st.integers(1, 1000)), "method": "tools/call",
                   "params": {"name": draw(st.sampled_from(["echo", "add", "contact"])), "arguments": arguments}}
        return orjson.dumps(message), True
    if kind == "message":
        return orjson.dumps(draw(_MESSAGE)), False
    if kind == "batch":
        return orjson.dumps(draw(st.lists(_MESSAGE, max_size=3))), False
    return draw(st.binary(max_size=120)), False


@FUZZ
@given(generated=_mcp_body())
def test_generated_mcp_messages_never_carry_leaks_to_the_server(fuzzed_proxy, fake_mcp, http, generated):
    content, leaky = generated
    seen = len(fake_mcp.calls())
    response = http.post(f"{fuzzed_proxy.base_url}/mcp/files", content=content, headers={
        "accept": "application/json, text/event-stream", "content-type": "application/json",
        "mcp-protocol-version": "2025-11-25"})
    assert response.status_code != 500 and response.status_code < 600, response.text[:500]
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text[:500]
    if response.status_code >= 400 and response.content:
        document = response.json()
        assert document.get("jsonrpc") == "2.0" and isinstance(document["error"]["code"], int), document
    for call in fake_mcp.calls()[seen:]:
        assert not any(leak in orjson.dumps(call).decode() for leak in LEAKS), (call, content)
    if leaky:  # refused before the server, and the refusal does not echo what it refused
        assert not any(leak in response.text for leak in LEAKS), response.text[:500]
    RAN["mcp"] = RAN.get("mcp", 0) + 1
