"""The admin query API on a real proxy process, with the audit trail in memory, SQLite and PostgreSQL:
what the proxy just did (allowed and blocked requests, two callers, named sessions and agents)
can be found by every filter, paged both ways, and only with the admin token or its session cookie."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openai
import pytest

from tests.audit.stores import drop_schema, new_schema_url
from tests.proxy_process import ProxyProcess, start_proxy

ADMIN_TOKEN = "admin-token-for-queries-0123"
BEARER = {"authorization": f"Bearer {ADMIN_TOKEN}"}
KEY_A = "sk-admin-queries-tenant-a"
KEY_B = "sk-admin-queries-tenant-b"
BLOCK_DETAILS = "Detected 'capsem_block' in prompt"


def _chat(proxy: ProxyProcess, key: str, text: str, session: str, agent: str = "") -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "x-capsem-session-id": session}
    if agent:
        headers["x-capsem-agent-id"] = agent
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{proxy.base_url}/v1/chat/completions", json=body, headers=headers)


def _admin(proxy: ProxyProcess, path: str, headers: dict[str, str] | None = None, **params) -> httpx.Response:
    return httpx.get(f"{proxy.base_url}/admin{path}", params=params, headers=BEARER if headers is None else headers)


def _eventually(read: Callable[[], list], count: int, timeout: float = 5.0) -> list:
    """`read()` once it returns at least `count` items (the audit writer works in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        items = read()
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


def _audit_url(store: str) -> str:
    if store == "memory":
        return "memory://"
    if store == "sqlite":
        # A relative path: the file lands in the proxy's own (fresh) working directory.
        return "sqlite:///audit.db"
    return new_schema_url()  # a schema of its own on the shared server


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgres"])
def traffic(request, fake_provider):
    """A proxy with the admin token and the default DebugPolicy, after a known mix of requests:
    session A (tenant A, agent planner): 3 allowed, 2 blocked; session B (tenant B): 2 allowed."""
    url = _audit_url(request.param)
    proxy = None
    try:
        proxy = start_proxy(fake_provider.base_url, {"admin": {"token": ADMIN_TOKEN}, "audit": {"url": url}})
        yield _send_known_traffic(proxy, request.param)
    finally:
        if proxy is not None:
            proxy.stop()
        if request.param == "postgres":
            drop_schema(url)


def _send_known_traffic(proxy: ProxyProcess, store: str) -> dict:
    """Send the mix `traffic` promises and wait until all of it is in the audit store."""
    started = time.time()
    session_a, session_b = f"sess-a-{store}", f"sess-b-{store}"
    client = openai.OpenAI(api_key=KEY_A, base_url=f"{proxy.base_url}/v1", max_retries=0)
    blocked_ids = []
    for index in range(5):
        text = f"capsem_block number {index}" if index in (1, 3) else f"hello number {index}"
        response = _chat(proxy, KEY_A, text, session_a, agent="planner")
        assert response.status_code == (403 if index in (1, 3) else 200)
        if index in (1, 3):
            blocked_ids.append(response.headers["x-capsem-request-id"])
    for index in range(2):
        reply = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"hi {index}"}],
            extra_headers={"x-capsem-session-id": session_b, "authorization": f"Bearer {KEY_B}"},
        )
        assert reply.http_response.status_code == 200
    rows = _eventually(lambda: _admin(proxy, "/requests", limit=100).json()["requests"], 7)
    assert len(rows) == 7, proxy.log_text()
    return {
        "proxy": proxy, "started": started, "session_a": session_a, "session_b": session_b,
        "blocked_ids": blocked_ids, "kind": store,
    }


def test_admin_routes_refuse_without_the_token(traffic):
    proxy = traffic["proxy"]
    for path in ("/requests", "/decisions", "/sessions", f"/sessions/{traffic['session_a']}", "/summary",
                 f"/requests/{traffic['blocked_ids'][0]}", "/approvals"):
        for headers in ({}, {"authorization": "Bearer wrong-token"}, {"cookie": "capsem_admin_session=v1.9.x"}):
            response = _admin(proxy, path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert traffic["session_a"] not in response.text and "capsem_block" not in response.text
            assert response.headers["cache-control"] == "no-store"


def test_the_session_cookie_reads_and_writes_only_with_the_custom_header(traffic):
    proxy = traffic["proxy"]
    with httpx.Client(base_url=proxy.base_url) as browser:
        assert browser.post("/dashboard/login", headers={"authorization": "Bearer nope"}).status_code == 401
        login = browser.post("/dashboard/login", headers=BEARER)
        assert login.status_code == 204
        assert ADMIN_TOKEN not in login.headers["set-cookie"] and "HttpOnly" in login.headers["set-cookie"]
        assert len(browser.get("/admin/requests").json()["requests"]) == 7
        assert browser.post("/admin/approvals/unknown/approve").status_code == 401
        assert browser.post("/admin/approvals/unknown/approve", headers={"x-capsem-admin": "1"}).status_code == 404
        assert browser.get("/admin/requests", headers={"sec-fetch-site": "cross-site"}).status_code == 401


def test_requests_by_session_agent_tenant_and_block(traffic):
    proxy, session_a = traffic["proxy"], traffic["session_a"]
    rows = _admin(proxy, "/requests", session_id=session_a).json()["requests"]
    assert len(rows) == 5 and {row["agent_id"] for row in rows} == {"planner"}
    assert all("prompt" not in row or row["prompt"] is None for row in rows)  # content is not stored by default
    assert [row["seq"] for row in rows] == sorted((row["seq"] for row in rows), reverse=True)
    tenant_a = rows[0]["tenant_id"]
    assert KEY_A not in str(rows)
    assert len(_admin(proxy, "/requests", tenant_id=tenant_a).json()["requests"]) == 5
    assert len(_admin(proxy, "/requests", agent_id="planner").json()["requests"]) == 5

    blocked = _admin(proxy, "/requests", blocked="true").json()["requests"]
    assert sorted(row["request_id"] for row in blocked) == sorted(traffic["blocked_ids"])
    assert all(row["status"] == 403 and row["verdict"] == "BLOCK" and row["reason"] for row in blocked)
    assert len(_admin(proxy, "/requests", blocked="false").json()["requests"]) == 5
    assert len(_admin(proxy, "/requests", verdict="block,confirm").json()["requests"]) == 2
    assert len(_admin(proxy, "/requests", provider="openai", model="gpt-4o-mini").json()["requests"]) == 7
    assert _admin(proxy, "/requests", provider="gemini").json() == {"requests": [], "next": None}


def test_requests_by_time_as_unix_seconds_or_iso(traffic):
    proxy, started = traffic["proxy"], traffic["started"]
    iso_before = datetime.fromtimestamp(started - 1, UTC).isoformat().replace("+00:00", "Z")
    assert len(_admin(proxy, "/requests", since=iso_before).json()["requests"]) == 7
    assert len(_admin(proxy, "/requests", since=str(started - 1), until=str(time.time() + 1)).json()["requests"]) == 7
    assert _admin(proxy, "/requests", until=str(started - 60)).json()["requests"] == []


def test_paging_backwards_and_the_live_tail(traffic):
    proxy = traffic["proxy"]
    page = _admin(proxy, "/requests", limit=3).json()
    seen = [row["request_id"] for row in page["requests"]]
    while page["next"]:
        page = _admin(proxy, "/requests", limit=3, before_seq=page["next"]["before_seq"]).json()
        seen.extend(row["request_id"] for row in page["requests"])
    assert len(seen) == len(set(seen)) == 7

    newest = _admin(proxy, "/requests", limit=1).json()["requests"][0]["seq"]
    assert _admin(proxy, "/requests", after_seq=newest).json() == {"requests": [], "next": {"after_seq": newest}}
    response = _chat(proxy, KEY_A, "capsem_block once more", "sess-tail-" + traffic["kind"])
    tail = _eventually(lambda: _admin(proxy, "/requests", after_seq=newest).json()["requests"], 1)
    assert [row["request_id"] for row in tail] == [response.headers["x-capsem-request-id"]]
    page = _admin(proxy, "/requests", after_seq=newest).json()
    assert page["next"] == {"after_seq": tail[0]["seq"]}


def test_decisions_by_policy_and_verdict(traffic):
    proxy = traffic["proxy"]
    blocks = _admin(proxy, "/decisions", verdict="BLOCK", session_id=traffic["session_a"]).json()["decisions"]
    assert sorted(row["request_id"] for row in blocks) == sorted(traffic["blocked_ids"])
    assert all(row["details"] == BLOCK_DETAILS and row["hook"] == "on_model_call" for row in blocks)
    policy = blocks[0]["policy"]
    assert len(_admin(proxy, "/decisions", policy=policy, blocked="true",
                      session_id=traffic["session_a"]).json()["decisions"]) == 2
    assert _admin(proxy, "/decisions", policy="NoSuchPolicy").json()["decisions"] == []


def test_one_request_with_its_decisions(traffic):
    proxy, request_id = traffic["proxy"], traffic["blocked_ids"][0]
    detail = _admin(proxy, f"/requests/{request_id}").json()
    assert detail["request"]["request_id"] == request_id and detail["request"]["status"] == 403
    assert detail["request"]["session_id"] == traffic["session_a"]
    assert [row["details"] for row in detail["decisions"] if row["verdict"] == "BLOCK"] == [BLOCK_DETAILS]
    assert _admin(proxy, "/requests/0000unknown").status_code == 404


def test_sessions_and_a_timeline(traffic):
    proxy, session_a, session_b = traffic["proxy"], traffic["session_a"], traffic["session_b"]
    sessions = {row["session_id"]: row for row in _admin(proxy, "/sessions").json()["sessions"]}
    assert sessions[session_a]["requests"] == 5 and sessions[session_a]["blocked"] == 2
    assert sessions[session_a]["agent_ids"] == ["planner"]
    assert sessions[session_b]["requests"] == 2 and sessions[session_b]["blocked"] == 0
    assert sessions[session_a]["tenant_id"] != sessions[session_b]["tenant_id"]
    only_b = _admin(proxy, "/sessions", tenant_id=sessions[session_b]["tenant_id"]).json()["sessions"]
    assert [row["session_id"] for row in only_b] == [session_b]

    timeline = _admin(proxy, f"/sessions/{session_a}").json()["timeline"]
    requests = [item for item in timeline if item["type"] == "request"]
    assert len(requests) == 5 and all(item["session_id"] == session_a for item in timeline)
    assert {item["details"] for item in timeline if item["type"] == "decision" and item["verdict"] == "BLOCK"} == {
        BLOCK_DETAILS
    }
    times = [item["started_at"] for item in requests]
    assert times == sorted(times)
    assert _admin(proxy, "/sessions/no-such-session").status_code == 404


def test_summary_counts_and_latency_buckets(traffic):
    proxy = traffic["proxy"]
    summary = _admin(proxy, "/summary", since=str(traffic["started"] - 1), bucket="5").json()
    assert summary["requests"] >= 7 and summary["blocked"] >= 2
    assert summary["by_verdict"]["BLOCK"] >= 2
    assert any(row["verdict"] == "BLOCK" and row["count"] >= 2 for row in summary["top_policies"])
    assert len(summary["top_tenants"]) == 2
    assert sum(bucket["count"] for bucket in summary["latency"]) == summary["requests"]
    for bucket in summary["latency"]:
        assert 0 < bucket["p50"] <= bucket["p95"] <= bucket["p99"]


def test_bad_queries_unknown_routes_and_wrong_methods(traffic):
    proxy = traffic["proxy"]
    for path, params, parameter in (
        ("/requests", {"limit": "1001"}, "limit"),
        ("/requests", {"since": "tuesday"}, "since"),
        ("/requests", {"before_seq": "1", "after_seq": "2"}, "after_seq"),
        ("/requests", {"colour": "red"}, "colour"),
        ("/decisions", {"verdict": "NOPE"}, "verdict"),
        ("/requests", {"blocked": "perhaps"}, "blocked"),
        ("/summary", {"bucket": "0"}, "bucket"),
    ):
        response = _admin(proxy, path, **params)
        assert response.status_code == 400, (path, params)
        assert response.json()["error"]["parameter"] == parameter
        assert parameter in response.json()["detail"]
    assert _admin(proxy, "/nothing").status_code == 404
    assert _admin(proxy, "/decisions/some-id").status_code == 404
    wrong = httpx.post(f"{proxy.base_url}/admin/requests", headers=BEARER)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
    assert httpx.delete(f"{proxy.base_url}/admin/sessions", headers=BEARER).status_code == 405


def test_admin_api_and_dashboard_are_absent_without_a_token(proxy):
    for path in ("/admin/requests", "/admin/summary", "/dashboard", "/dashboard/static/login.js"):
        assert httpx.get(f"{proxy.base_url}{path}", headers=BEARER).status_code == 404
    assert httpx.post(f"{proxy.base_url}/dashboard/login", headers=BEARER).status_code == 404


def test_replicas_sharing_a_store_answer_alike_and_accept_each_others_login(fake_provider):
    """What one replica proxied is visible from another, and a dashboard login made on one is
    accepted by the other (same token, no shared session state)."""
    shared = Path(tempfile.mkdtemp(prefix="capsem-replicas-")) / "audit.db"
    # Replicas of one deployment share the audit store and the server secret that keys its chain.
    config = {"admin": {"token": ADMIN_TOKEN}, "audit": {"url": f"sqlite:///{shared}"},
              "server": {"tenant_secret": f"replicas-{shared.parent.name}"}}
    first = start_proxy(fake_provider.base_url, config)
    second = start_proxy(fake_provider.base_url, config)
    try:
        blocked = _chat(first, KEY_A, "capsem_block through the first replica", "sess-replicas")
        assert blocked.status_code == 403
        # ...and what the second proxied is visible from the first: both write to the one chain.
        also = _chat(second, KEY_A, "capsem_block through the second replica", "sess-replicas-2")
        assert also.status_code == 403
        seen_first = _eventually(
            lambda: _admin(first, "/requests", session_id="sess-replicas-2").json()["requests"], 1
        )
        assert [row["request_id"] for row in seen_first] == [also.headers["x-capsem-request-id"]]
        with httpx.Client(base_url=first.base_url) as browser:
            assert browser.post("/dashboard/login", headers=BEARER).status_code == 204
            cookie = browser.cookies["capsem_admin_session"]
        seen = _eventually(
            lambda: _admin(second, "/requests", headers={"cookie": f"capsem_admin_session={cookie}"},
                           session_id="sess-replicas").json()["requests"],
            1,
        )
        assert [row["request_id"] for row in seen] == [blocked.headers["x-capsem-request-id"]]
        assert httpx.get(f"{second.base_url}/dashboard", cookies={"capsem_admin_session": cookie}).status_code == 200
    finally:
        first.stop()
        second.stop()
