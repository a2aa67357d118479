"""CONFIRM: the request is held (403 with a decision id), an admin approves it, and the same
client retrying the same request with `x-capsem-approval` passes once, and only that request."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.proxy_process import start_proxy

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "admin-token-for-tests-0123"
RISKY = b'{"model":"m","messages":[{"role":"user","content":"please transfer money to Bob"}]}'
KEY = {"authorization": "Bearer sk-confirm-tenant"}


@pytest.fixture(scope="module")
def confirm_proxy(fake_provider):
    config = {"policies": [{"class": "tests.integration.policies.ConfirmPolicy"}], "admin": {"token": ADMIN_TOKEN}}
    process = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    yield process
    process.stop()


def _admin(proxy, method, path, token=ADMIN_TOKEN):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{proxy.base_url}/admin{path}", headers=headers)


def _send(proxy, body=RISKY, approval=None, key=KEY):
    headers = dict(key)
    if approval:
        headers["x-capsem-approval"] = approval
    return httpx.post(f"{proxy.base_url}/v1/chat/completions", content=body, headers=headers)


def test_confirm_then_approve_then_retry_passes_once(confirm_proxy, fake_provider):
    held = _send(confirm_proxy)
    assert held.status_code == 403
    decision_id = held.headers["x-capsem-decision-id"]
    assert decision_id in held.json()["detail"]
    assert "confirm required (money transfer)" in held.json()["detail"]

    assert _send(confirm_proxy, approval=decision_id).status_code == 403  # not approved yet
    pending = _admin(confirm_proxy, "GET", "/approvals").json()["approvals"]
    assert decision_id in [item["decision_id"] for item in pending]
    approved = _admin(confirm_proxy, "POST", f"/approvals/{decision_id}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"

    other_body = RISKY.replace(b"Bob", b"Eve")
    assert _send(confirm_proxy, body=other_body, approval=decision_id).status_code == 403
    assert _send(confirm_proxy, approval=decision_id, key={"authorization": "Bearer sk-other"}).status_code == 403
    assert fake_provider.requests() == []

    passed = _send(confirm_proxy, approval=decision_id)
    assert passed.status_code == 200
    assert passed.headers["x-capsem-decision-id"] == decision_id
    assert len(fake_provider.requests()) == 1
    assert _send(confirm_proxy, approval=decision_id).status_code == 403  # once only


def test_denied_request_never_passes(confirm_proxy):
    decision_id = _send(confirm_proxy).headers["x-capsem-decision-id"]
    assert _admin(confirm_proxy, "POST", f"/approvals/{decision_id}/deny").json()["status"] == "denied"
    assert _admin(confirm_proxy, "POST", f"/approvals/{decision_id}/approve").status_code == 409
    assert _send(confirm_proxy, approval=decision_id).status_code == 403


def test_admin_api_needs_the_token(confirm_proxy):
    assert _admin(confirm_proxy, "GET", "/approvals", token=None).status_code == 401
    assert _admin(confirm_proxy, "GET", "/approvals", token="wrong").status_code == 401
    assert _admin(confirm_proxy, "POST", "/approvals/nope/approve").status_code == 404


def test_admin_api_is_off_without_a_token(proxy):
    response = httpx.get(f"{proxy.base_url}/admin/approvals", headers={"authorization": "Bearer anything"})
    assert response.status_code == 404


def test_confirm_as_log_when_configured(fake_provider):
    config = {"policies": [{"class": "tests.integration.policies.ConfirmPolicy"}], "confirm": {"mode": "log"}}
    process = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    try:
        response = _send(process)
        assert response.status_code == 200
        assert response.headers["x-capsem-decision-id"]
    finally:
        process.stop()


def test_replicas_sharing_redis_share_approvals(fake_provider):
    import uuid

    from tests.services import REDIS_URL, require_service

    require_service("Redis", "127.0.0.1", 6379)
    config = {"policies": [{"class": "tests.integration.policies.ConfirmPolicy"}], "admin": {"token": ADMIN_TOKEN},
              "confirm": {"store_url": REDIS_URL}}
    env = {"PYTHONPATH": str(REPO_ROOT), "CAPSEM_PROXY_SERVER__TENANT_SECRET": f"shared-{uuid.uuid4().hex}"}
    first = start_proxy(fake_provider.base_url, config, env=env)
    second = start_proxy(fake_provider.base_url, config, env=env)
    try:
        decision_id = _send(first).headers["x-capsem-decision-id"]
        assert _admin(second, "POST", f"/approvals/{decision_id}/approve").status_code == 200
        assert _send(second, approval=decision_id).status_code == 200
        assert _send(first, approval=decision_id).status_code == 403  # used once, across replicas
    finally:
        first.stop()
        second.stop()


def test_readyz_reports_an_unreachable_approval_store(fake_provider):
    from tests.proxy_process import free_port

    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    process = start_proxy(fake_provider.base_url, {"confirm": {"store_url": unreachable}})
    try:
        answer = httpx.get(f"{process.base_url}/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"status": "not ready", "reason": "approval store unreachable (ConnectionError)"}
        assert httpx.get(f"{process.base_url}/healthz").status_code == 200
    finally:
        process.stop()


def test_readyz_with_a_reachable_redis(fake_provider):
    from tests.services import REDIS_URL, require_service

    require_service("Redis", "127.0.0.1", 6379)
    process = start_proxy(fake_provider.base_url, {"confirm": {"store_url": REDIS_URL}})
    try:
        assert httpx.get(f"{process.base_url}/readyz").json() == {"status": "ready"}
    finally:
        process.stop()
