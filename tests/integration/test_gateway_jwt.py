"""JWT bearer tokens: RS256 and ES256 tokens from a JWKS (file or URL) map to a tenant and get the held
provider key; bad signature, issuer, audience, expiry or algorithm are refused with 401; roles from the
token decide what the admin API allows (viewer reads, operator approves, admin manages keys)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from tempfile import mkdtemp

import anthropic
import jwt
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.integration.gateway_helpers import admin, header, start_gateway

ISSUER = "https://idp.example.test/"
AUDIENCE = "capsem-proxy"
HELD_ENV = {"GATEWAY_TEST_OPENAI_KEY": "sk-held-for-jwt-callers-0123", "GATEWAY_TEST_ANTHROPIC_KEY": "sk-ant-jwt-0123"}

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(private, kid: str, alg: str) -> dict:
    algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    document = json.loads(algorithm.to_jwk(private.public_key()))
    return {**document, "kid": kid, "alg": alg, "use": "sig"}


JWKS = {"keys": [_jwk(RSA_KEY, "rsa-1", "RS256"), _jwk(EC_KEY, "ec-1", "ES256")]}


def token(*, key=RSA_KEY, kid="rsa-1", alg="RS256", **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now, "sub": "user-1", "tenant": "team-jwt",
               **claims}
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def gateway(fake_provider) -> Iterator:
    jwks = Path(mkdtemp(prefix="capsem-jwks-")) / "jwks.json"
    jwks.write_text(json.dumps(JWKS))
    process = start_gateway(fake_provider, {"auth": {
        "mode": "gateway",
        "jwt": {"jwks_file": str(jwks), "issuer": ISSUER, "audience": AUDIENCE, "clock_skew_s": 5},
        "provider_key_env": {"openai": "GATEWAY_TEST_OPENAI_KEY", "anthropic": "GATEWAY_TEST_ANTHROPIC_KEY"},
    }}, env=HELD_ENV)
    yield process
    process.stop()


def _openai(proxy, bearer: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=bearer, max_retries=0, timeout=10)


def _chat(client: openai.OpenAI):
    return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize(("key", "kid", "alg"), [(RSA_KEY, "rsa-1", "RS256"), (EC_KEY, "ec-1", "ES256")])
def test_a_valid_token_reaches_the_provider_with_the_held_key(gateway, fake_provider, key, kid, alg):
    bearer = token(key=key, kid=kid, alg=alg)
    assert _chat(_openai(gateway, bearer)).choices
    record = fake_provider.requests()[0]
    assert header(record, "authorization") == [f"Bearer {HELD_ENV['GATEWAY_TEST_OPENAI_KEY']}"]
    assert bearer not in json.dumps(record["headers"])


def test_anthropic_sdk_with_a_token(gateway, fake_provider):
    client = anthropic.Anthropic(base_url=gateway.base_url, auth_token=token(), max_retries=0, timeout=10)
    client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert header(fake_provider.requests()[0], "x-api-key") == [HELD_ENV["GATEWAY_TEST_ANTHROPIC_KEY"]]


def _hs256() -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "tenant": "t"}
    return jwt.encode(claims, "shared-secret-that-is-long-enough-0123456789", algorithm="HS256",
                      headers={"kid": "rsa-1"})


# Tokens are made when the test runs (made at collection, they could expire before it in a long run).
BAD_TOKENS = {
    "signature": lambda: token(key=STRANGER),
    "unknown key": lambda: token(kid="unknown-kid"),
    "issuer": lambda: token(iss="https://evil.example.test/"),
    "audience": lambda: token(aud="someone-else"),
    "expired": lambda: token(exp=int(time.time()) - 60),
    "exp": lambda: token(exp=None),
    "algorithm": _hs256,
    "tenant": lambda: token(tenant=None),
}


@pytest.mark.parametrize("why", list(BAD_TOKENS))
def test_bad_tokens_are_refused(gateway, fake_provider, why):
    with pytest.raises(openai.AuthenticationError) as caught:
        _chat(_openai(gateway, BAD_TOKENS[why]()))
    assert why in caught.value.response.json()["detail"]
    assert fake_provider.requests() == []


def test_skew_is_bounded(gateway, fake_provider):
    assert _chat(_openai(gateway, token(exp=int(time.time()) - 2))).choices  # within the 5 s leeway
    with pytest.raises(openai.AuthenticationError):
        _chat(_openai(gateway, token(exp=int(time.time()) - 30)))


def test_admin_roles_from_the_token(gateway):
    viewer, operator, boss = token(roles=["viewer"]), token(roles=["operator"]), token(roles=["admin"])
    assert admin(gateway, "GET", "/admin/whoami", token=viewer).json() == {"role": "viewer"}
    assert admin(gateway, "GET", "/admin/keys", token=viewer).status_code == 200
    assert admin(gateway, "GET", "/admin/requests", token=viewer).status_code == 200
    assert admin(gateway, "POST", "/admin/keys", {"tenant": "x"}, token=viewer).status_code == 403
    assert admin(gateway, "POST", "/admin/approvals/nope/approve", token=viewer).status_code == 403
    assert admin(gateway, "POST", "/admin/approvals/nope/approve", token=operator).status_code == 404  # allowed
    assert admin(gateway, "POST", "/admin/keys", {"tenant": "x"}, token=operator).status_code == 403
    made = admin(gateway, "POST", "/admin/keys", {"tenant": "x"}, token=boss)
    assert made.status_code == 201
    assert admin(gateway, "DELETE", f"/admin/keys/{made.json()['id']}", token=operator).status_code == 403
    assert admin(gateway, "GET", "/admin/keys", token=token(roles=["nobody"])).status_code == 401
    assert admin(gateway, "GET", "/admin/keys", token=token(key=STRANGER, roles=["admin"])).status_code == 401


def test_jwks_from_a_url(fake_provider):
    class Jwks(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(JWKS).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    proxy = start_gateway(fake_provider, {"auth": {
        "mode": "both", "jwt": {"jwks_url": url, "issuer": ISSUER, "audience": AUDIENCE},
        "provider_key_env": {"openai": "GATEWAY_TEST_OPENAI_KEY"},
    }}, env=HELD_ENV)
    try:
        assert _chat(_openai(proxy, token(key=EC_KEY, kid="ec-1", alg="ES256"))).choices
        # mode both: a caller's own provider key still passes through unchanged
        assert _chat(_openai(proxy, "sk-callers-own-key-0123456789")).choices
        assert header(fake_provider.requests()[-1], "authorization") == ["Bearer sk-callers-own-key-0123456789"]
    finally:
        proxy.stop()
        server.shutdown()


def test_a_token_opens_a_dashboard_session_of_its_role(gateway):
    import httpx

    with httpx.Client(base_url=gateway.base_url, timeout=10) as browser:
        login = browser.post("/dashboard/login", headers={"authorization": f"Bearer {token(roles=['viewer'])}"})
        assert login.status_code == 204
        assert browser.get("/admin/whoami").json() == {"role": "viewer"}
        assert browser.get("/dashboard").status_code == 200
        write = browser.post("/admin/approvals/nope/approve", headers={"x-capsem-admin": "1"})
        assert write.status_code == 403
    with httpx.Client(base_url=gateway.base_url, timeout=10) as browser:
        refused = browser.post("/dashboard/login", headers={"authorization": f"Bearer {token(key=STRANGER)}"})
        assert refused.status_code == 401
