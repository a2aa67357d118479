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
