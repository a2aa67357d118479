"""The caller's provider key never leaks: not into the proxy's log (debug level, access log on), not into
any answer or header the proxy makes itself, not into an x-capsem-* header, not into its data files.

Each test sends requests with fresh distinctive keys (`sk-LEAKCHECK-<hex>` …) covering success, streams,
provider errors, errors the proxy makes (malformed key, malformed JSON, unknown route, broken upstream
answer), policy blocks and Gemini's `?key=`. Provider-made errors are passed through as the provider sent
them: the fake provider, like OpenAI, echoes a rejected key in its 401 message, so for provider-made
answers the key may appear in the body only where the provider itself put it."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import orjson
import pytest
from google import genai
from google.genai import errors, types

GEMINI_MODEL = "gemini-2.5-flash"


@dataclass
class Exchange:
    """One request through the proxy and what came back."""

    label: str
    response: httpx.Response
    provider_made: bool
    direct: httpx.Response | None = None  # the same request sent straight to the fake provider


def _new_key(provider: str) -> str:
    prefix = {"openai": "sk-", "anthropic": "sk-ant-", "gemini": "AIza"}[provider]
    return f"{prefix}LEAKCHECK-{secrets.token_hex(12)}"


def _secret_parts(key: str) -> list[str]:
    """The key and its random part (a masked or truncated echo would still show the latter)."""
    return [key, key.rsplit("-", 1)[-1]]


def _scenario(**fields) -> dict[str, str]:
    return {"x-fake-scenario": orjson.dumps(fields).decode()}


def _auth(provider: str, key: str) -> dict[str, str]:
    if provider == "openai":
        return {"authorization": f"Bearer {key}"}
    if provider == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return {"x-goog-api-key": key}


def _request(provider: str, *, text: str = "hello", stream: bool = False) -> tuple[str, bytes]:
    """Path and body of a generate request."""
    if provider == "openai":
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "stream": stream}
        return "/v1/chat/completions", orjson.dumps(body)
    if provider == "anthropic":
        body = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": text}],
                "stream": stream}
        return "/v1/messages", orjson.dumps(body)
    path = f"/v1beta/models/{GEMINI_MODEL}:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
    return path, orjson.dumps({"contents": [{"role": "user", "parts": [{"text": text}]}]})


class Run:
    """Sends requests through the proxy (and, for provider-made answers, straight to the provider)."""

    def __init__(self, proxy, fake_provider) -> None:
        self.proxy = proxy
        self.fake_provider = fake_provider
        self.exchanges: list[Exchange] = []
        self.http = httpx.Client(timeout=10)

    def send(
        self, label: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None,
        *, provider_made: bool = False, compare_direct: bool = False,
    ) -> httpx.Response:
        response = self.http.request(method, self.proxy.base_url + path, content=body, headers=headers)
        direct = None
        if compare_direct:
            direct = self.http.request(method, self.fake_provider.base_url + path, content=body, headers=headers)
        self.exchanges.append(Exchange(label, response, provider_made, direct))
        return response

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def run(proxy, fake_provider):
    runner = Run(proxy, fake_provider)
    yield runner
    runner.close()


def _wait_for_access_log(proxy, request_ids: list[str], timeout: float = 5.0) -> str:
    """The proxy's log once every request id has its access-log line (so nothing is still unwritten)."""
    deadline = time.monotonic() + timeout
    while True:
        text = proxy.log_text()
        missing = [rid for rid in request_ids if rid not in text]
        if not missing:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"access log lines missing for {missing}")
        time.sleep(0.05)


def _assert_no_leak(proxy, keys: list[str], exchanges: list[Exchange]) -> None:
    secrets_ = [part for key in keys for part in _secret_parts(key)]
    request_ids = []
    for exchange in exchanges:
        response = exchange.response
        label = f"{exchange.label} ({response.status_code})"
        request_id = response.headers.get("x-capsem-request-id")
        assert request_id, label
        request_ids.append(request_id)
        capsem_headers = [(n, v) for n, v in response.headers.multi_items() if n.startswith("x-capsem-")]
        assert capsem_headers, label
        for name, value in capsem_headers:
            assert not any(secret in value for secret in secrets_), f"{label}: {name}={value!r} holds the key"
        for name, value in response.headers.multi_items():
            for secret in secrets_:
                assert secret not in name and secret not in value, f"{label}: header {name} leaks the key"
        body = response.text
        if not exchange.provider_made:
            for secret in secrets_:
                assert secret not in body, f"{label}: the proxy's own answer leaks the key: {body[:300]}"
        else:
            direct = exchange.direct.text if exchange.direct is not None else ""
            for secret in secrets_:
                assert body.count(secret) <= direct.count(secret), f"{label}: more key than the provider sent"
    log = _wait_for_access_log(proxy, request_ids)
    for secret in secrets_:
        assert secret not in log, f"the proxy log contains {secret!r}"
    decision_ids = [e.response.headers["x-capsem-decision-id"] for e in exchanges
                    if "x-capsem-decision-id" in e.response.headers]
    for path, data in _data_files(proxy, decision_ids).items():
        for secret in secrets_:
            assert secret.encode() not in data, f"{path} contains the key"


def _data_files(proxy, decision_ids: list[str], timeout: float = 2.0) -> dict[Path, bytes]:
    """Every file the proxy wrote besides its log (audit database, secrets), read once the audit
    store shows the given decisions (it writes in batches), or after `timeout` if it never does."""
    log_name = Path(proxy.log_path).name
    deadline = time.monotonic() + timeout
    while True:
        files = {
            path: path.read_bytes()
            for path in Path(proxy.workdir).rglob("*")
            if path.is_file() and path.name != log_name
        }
        blob = b"".join(files.values())
        if all(did.encode() in blob for did in decision_ids) or time.monotonic() > deadline:
            return files
        time.sleep(0.05)


def _statuses(run: Run) -> dict[str, int]:
    return {exchange.label: exchange.response.status_code for exchange in run.exchanges}


def _exchange(run: Run, label: str) -> Exchange:
    [found] = [exchange for exchange in run.exchanges if exchange.label == label]
    return found


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_no_key_leaks_over_raw_http(proxy, fake_provider, run, provider):
    key = _new_key(provider)
    auth = _auth(provider, key)
    path, body = _request(provider)
    stream_path, stream_body = _request(provider, stream=True)
    blocked_path, blocked_body = _request(provider, text="please capsem_block this")

    run.send("success", "POST", path, auth, body)
    run.send("stream", "POST", stream_path, auth, stream_body)
    run.send("provider 401", "POST", path, {**auth, **_scenario(auth_error=True)}, body,
             provider_made=True, compare_direct=True)
    run.send("provider 429", "POST", path, {**auth, **_scenario(rate_limit=True, retry_after=1)}, body,
             provider_made=True, compare_direct=True)
    malformed = {name: f"{value} trailing-garbage" for name, value in auth.items() if name != "anthropic-version"}
    run.send("proxy 401 malformed key", "POST", path, {**auth, **malformed}, body)
    run.send("policy block", "POST", blocked_path, auth, blocked_body)
    run.send("malformed JSON", "POST", path, auth, b'{"model": "x", "messages": [}')
    run.send("broken stream", "POST", stream_path, {**auth, **_scenario(events=10, break_after=2)}, stream_body)
    run.send("broken answer", "POST", path, {**auth, **_scenario(break_after=1)}, body)
    run.send("unknown route", "POST", "/v1beta/models/m:doMagic" if provider == "gemini" else "/v1/nothing",
             auth, b"{}")
    models_path = "/v1beta/models" if provider == "gemini" else "/v1/models"
    if provider != "anthropic":
        run.send("model list", "GET", models_path, auth)

    statuses = _statuses(run)
    assert statuses["success"] == 200 and statuses["stream"] == 200 and statuses["broken stream"] == 200
    assert statuses["provider 401"] == 401 and statuses["proxy 401 malformed key"] == 401
    assert statuses["provider 429"] == 429
    assert statuses["policy block"] == 403
    assert statuses["malformed JSON"] == 400
    assert statuses["broken answer"] == 502
    assert statuses["unknown route"] == 404
    assert "malformed" in _exchange(run, "proxy 401 malformed key").response.json()["detail"]
    assert "blocked by security policy" in _exchange(run, "policy block").response.json()["detail"]
    if provider == "openai":
        # The provider's own 401 echoes the key (OpenAI does too); the proxy hands it on unchanged.
        provider_401 = _exchange(run, "provider 401")
        assert key in provider_401.direct.text
        assert provider_401.response.content == provider_401.direct.content
    _assert_no_leak(proxy, [key], run.exchanges)


def test_no_key_leaks_with_gemini_query_key(proxy, fake_provider, run):
    key = _new_key("gemini")
    body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]})
    blocked = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "capsem_block it"}]}]})
    generate = f"/v1beta/models/{GEMINI_MODEL}:generateContent?key={key}"
    stream = f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse&key={key}"
    array_stream = f"/v1/models/{GEMINI_MODEL}:streamGenerateContent?key={key}"

    run.send("success", "POST", generate, {}, body)
    run.send("sse stream", "POST", stream, {}, body)
    run.send("json-array stream", "POST", array_stream, {}, body)
    run.send("count tokens", "POST", f"/v1beta/models/{GEMINI_MODEL}:countTokens?key={key}", {}, body)
    run.send("model list", "GET", f"/v1/models?key={key}", {})
    run.send("provider 401", "POST", generate, _scenario(auth_error=True), body,
             provider_made=True, compare_direct=True)
    run.send("policy block", "POST", generate, {}, blocked)
    run.send("policy block streamed", "POST", stream, {}, blocked)
    run.send("proxy 401 malformed key", "POST", f"/v1beta/models/{GEMINI_MODEL}:generateContent?key={key}%20x",
             {}, body)
    run.send("malformed JSON", "POST", generate, {}, b"{oops")
    run.send("broken stream", "POST", stream, _scenario(events=10, break_after=2), body)
    run.send("broken array stream", "POST", array_stream, _scenario(events=10, break_after=2), body)

    statuses = _statuses(run)
    assert [statuses[label] for label in ("success", "sse stream", "json-array stream", "count tokens",
                                          "model list")] == [200] * 5
    assert statuses["provider 401"] == 401
    assert statuses["policy block"] == statuses["policy block streamed"] == 403
    assert statuses["proxy 401 malformed key"] == 401
    assert statuses["malformed JSON"] == 400
    assert statuses["broken stream"] == statuses["broken array stream"] == 200
    assert orjson.loads(_exchange(run, "json-array stream").response.content)[0]["candidates"]
    # The key reached the provider in the query string, untouched.
    recorded = [r for r in fake_provider.requests() if r["path"].endswith(":generateContent")]
    assert recorded and recorded[0]["query_string"] == f"key={key}"
    _assert_no_leak(proxy, [key], run.exchanges)


def test_no_key_leaks_through_the_sdks(proxy, fake_provider):
    keys = {provider: _new_key(provider) for provider in ("openai", "anthropic", "gemini")}
    seen_ids: list[str] = []
    messages: list[str] = []

    with openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=keys["openai"], max_retries=1) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
            extra_headers={**_scenario(rate_limit=True, fail_times=1, retry_after=0.05)},
        )
        assert raw.parse().choices[0].message.content
        seen_ids.append(raw.headers["x-capsem-request-id"])
        with pytest.raises(openai.PermissionDeniedError) as blocked:
            list(client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "capsem_block"}], stream=True
            ))
        messages.append(str(blocked.value))
        seen_ids.append(blocked.value.response.headers["x-capsem-request-id"])

    with anthropic.Anthropic(base_url=proxy.base_url, api_key=keys["anthropic"], max_retries=0) as client:
        with client.messages.stream(
            model="claude-x", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            assert stream.get_final_text()
        with pytest.raises(anthropic.PermissionDeniedError) as blocked:
            client.messages.create(model="claude-x", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
                                   tools=[{"name": "capsem_block_tool", "input_schema": {"type": "object"}}])
        messages.append(str(blocked.value))
        seen_ids.append(blocked.value.response.headers["x-capsem-request-id"])

    with genai.Client(api_key=keys["gemini"], http_options=types.HttpOptions(base_url=proxy.base_url)) as client:
        chunks = list(client.models.generate_content_stream(model=GEMINI_MODEL, contents="hi"))
        assert "".join(chunk.text for chunk in chunks)
        with pytest.raises(errors.ClientError) as blocked:
            client.models.generate_content(model=GEMINI_MODEL, contents="capsem_block")
        messages.append(str(blocked.value))
        seen_ids.append(blocked.value.response.headers["x-capsem-request-id"])

    assert len(fake_provider.requests()) == 4  # openai 429 + retry, anthropic stream, gemini stream
    secrets_ = [part for key in keys.values() for part in _secret_parts(key)]
    for message in messages:
        assert "blocked by security policy" in message
        assert not any(secret in message for secret in secrets_), message
    log = _wait_for_access_log(proxy, seen_ids)
    assert not any(secret in log for secret in secrets_)
