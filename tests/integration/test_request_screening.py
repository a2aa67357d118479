"""The bypass matrix: every text-bearing field of every route (tests/request_fields.py), with a
secret, an e-mail and a prompt injection in it, against the real proxy and the fake provider.

With `secrets`, `pii_detect` and `injection` set to block (their default `scan`: every place of
a request; `injection` also reads system instructions when asked, as here), each request is
refused with 403 and the provider receives nothing. With `secrets` and
`pii_detect` redacting, the provider receives the request with the value rewritten, except where
it cannot be rewritten (text sent in base64 or a data: URL, tool definitions): there the request
is refused. Either way no byte of the original, plain or base64, reaches the provider.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.proxy_process import start_proxy
from tests.request_fields import DETECTORS, MATRIX_SIZE, ROUTES, fields_of

BLOCKING = {
    "policies": [
        {"class": "secrets", "options": {"action": "block"}},
        {"class": "pii_detect", "options": {"action": "block"}},
        {"class": "injection", "options": {"scan_system": True}},
    ]
}
REDACTING = {"policies": [{"class": "secrets"}, {"class": "pii_detect"}]}
CASES = [(route, field) for route in ROUTES for field in fields_of(route)]


@pytest.fixture(scope="module")
def blocking_proxy(fake_provider) -> Iterator[str]:
    process = start_proxy(fake_provider.base_url, BLOCKING, log_level="warning")
    yield process.base_url
    process.stop()


@pytest.fixture(scope="module")
def redacting_proxy(fake_provider) -> Iterator[str]:
    process = start_proxy(fake_provider.base_url, REDACTING, log_level="warning")
    yield process.base_url
    process.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def _forms(payload: str) -> list[bytes]:
    """The payload as it could appear in a body: plain, JSON-escaped, or inside base64."""
    raw = payload.encode()
    return [raw, orjson.dumps(payload)[1:-1], base64.b64encode(raw), base64.b64encode(b"'" + raw)[4:12]]


def test_the_matrix_covers_every_field_of_every_route_with_each_detector():
    assert len(CASES) * len(DETECTORS) == MATRIX_SIZE
    assert {route.api for route in ROUTES} == {field.api for _, field in CASES}


@pytest.mark.parametrize(("route", "field"), CASES, ids=[f"{route.name}: {field.name}" for route, field in CASES])
def test_no_field_carries_a_secret_an_email_or_an_injection_to_the_provider(
    route, field, blocking_proxy, redacting_proxy, http, fake_provider
):
    sent: list[str] = []
    for detector, payload in DETECTORS.items():
        body = orjson.dumps(route.adapt(field.build(payload)))
        response = http.post(blocking_proxy + route.path, content=body, headers=route.headers)
        assert response.status_code == 403, (detector, response.status_code, response.text)
        sent.append(payload)
    assert fake_provider.requests() == [], "a blocked request reached the provider"

    for detector in ("secrets", "pii_detect"):
        payload = DETECTORS[detector]
        body = orjson.dumps(route.adapt(field.build(payload)))
        response = http.post(redacting_proxy + route.path, content=body, headers=route.headers)
        if field.encoded or not field.rewritable:
            # Text inside base64 or a data: URL, and tool definitions, cannot be rewritten: refused.
            assert response.status_code == 403, (detector, response.status_code, response.text)
        else:
            assert response.status_code < 400, (detector, response.status_code, response.text)
    forwarded = [fake_provider.body_of(record) for record in fake_provider.requests()]
    rewritten = 0 if field.encoded or not field.rewritable else 2
    assert len(forwarded) == rewritten
    for received in forwarded:
        assert b"[REDACTED:" in received
    for received in forwarded:
        for payload in sent:
            for form in _forms(payload):
                assert form not in received, (payload, received[:300])


PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(("Kq7" + "Xb9Lm2Rt5Vx9Kb3Nw7Hc1Jd4Fg6Sp0Ty2Ue8aZ3" * 2)[:64] for _ in range(8))
    + "\n-----END RSA PRIVATE KEY-----"
)


def test_a_private_key_inside_a_json_tool_result_is_rewritten_where_the_provider_reads_it(
    redacting_proxy, http, fake_provider
):
    body = {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Read the vault"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                              "function": {"name": "vault", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": json.dumps({"key": PRIVATE_KEY, "note": "rotate"})},
    ]}
    response = http.post(redacting_proxy + "/v1/chat/completions", json=body, headers=ROUTES[0].headers)
    assert response.status_code == 200, response.text
    (record,) = fake_provider.requests()
    received = orjson.loads(fake_provider.body_of(record))
    assert json.loads(received["messages"][2]["content"]) == {"key": "[REDACTED:private_key]", "note": "rotate"}


def test_a_secret_in_a_prompt_and_in_a_base64_document_is_refused_not_half_redacted(
    redacting_proxy, http, fake_provider
):
    secret = DETECTORS["secrets"]
    document = base64.b64encode(f"deploy token: {secret}".encode()).decode()
    body = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "text", "text": f"Use {secret}"},
        {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": document}},
    ]}]}
    response = http.post(redacting_proxy + "/v1/messages", json=body, headers=ROUTES[5].headers)
    assert response.status_code == 403
    assert fake_provider.requests() == []


@pytest.fixture(scope="module")
def regex_proxy(fake_provider) -> Iterator[str]:
    config = {"policies": [{"class": "regex_redact", "options": {"patterns": {"ticket": r"TCK-\d{6}"}}}]}
    process = start_proxy(fake_provider.base_url, config, log_level="warning")
    yield process.base_url
    process.stop()


def test_any_redacting_policy_is_refused_rather_than_passed_when_the_text_is_encoded(regex_proxy, http, fake_provider):
    document = base64.b64encode(b"see TCK-123456 for details").decode()
    body = {"model": "claude-x", "max_tokens": 5, "messages": [
        {"role": "user", "content": "Look it up"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "tickets", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": document}}]}]},
    ]}
    response = http.post(regex_proxy + "/v1/messages", json=body, headers=ROUTES[5].headers)
    assert response.status_code == 403
    assert fake_provider.requests() == []
    plain = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "see TCK-123456"}]}
    assert http.post(regex_proxy + "/v1/messages", json=plain, headers=ROUTES[5].headers).status_code == 200
    assert b"[REDACTED:ticket]" in fake_provider.body_of(fake_provider.last())
