"""The admin API and dashboard in process: query-string parsing, the login cookie, and every route's
answer (auth, filters, paging, errors) against a real in-memory audit store and approval store."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from capsem_proxy.admin import AdminAPI
from capsem_proxy.admin.params import BadParameter, parse_audit_query, parse_params, parse_time
from capsem_proxy.audit.memory import MemoryAuditSink
from capsem_proxy.confirm.store import HeldRequest, MemoryApprovalStore
from capsem_proxy.dashboard import COOKIE_NAME, DashboardAssets, DashboardSessions
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.records import RequestRecord

TOKEN = "unit-admin-token-0123456789"
BEARER = {"authorization": f"Bearer {TOKEN}"}
ALL = frozenset({"tenant_id", "verdict", "blocked", "since", "until", "limit", "before_seq", "after_seq"})


# --- query parsing -----------------------------------------------------------------------------


def test_times_are_unix_seconds_or_iso_8601():
    assert parse_time("since", "1700000000.5") == 1700000000.5
    assert parse_time("since", "2024-01-01T00:00:00Z") == 1704067200.0
    assert parse_time("since", "2024-01-01T01:00:00+01:00") == 1704067200.0
    assert parse_time("since", "2024-01-01T01:00:00 01:00") == 1704067200.0  # '+' decoded as a space
    assert parse_time("since", "2024-01-01T00:00:00") == 1704067200.0  # no offset: UTC
    for bad in ("yesterday", "-5", "nan", "inf", "2024-13-01T00:00:00Z"):
        with pytest.raises(BadParameter) as caught:
            parse_time("until", bad)
        assert caught.value.parameter == "until"


def test_params_refuse_unknown_repeated_empty_and_oversized_values():
    assert parse_params(b"tenant_id=t1&limit=5", ALL) == {"tenant_id": "t1", "limit": "5"}
    assert parse_params(b"tenant_id=a%20b", ALL) == {"tenant_id": "a b"}
    cases = {
        b"tenant=t1": "tenant",
        b"limit=1&limit=2": "limit",
        b"tenant_id=": "tenant_id",
        b"tenant_id=" + b"x" * 300: "tenant_id",
        b"tenant_id=%ff": "query",
        b"&".join(b"tenant_id=%d" % i for i in range(50)): "query",
    }
    for query_string, parameter in cases.items():
        with pytest.raises(BadParameter) as caught:
            parse_params(query_string, ALL)
        assert caught.value.parameter == parameter, query_string


def test_audit_query_from_params():
    query = parse_audit_query(
        {"tenant_id": "t1", "verdict": "block, confirm", "blocked": "FALSE", "since": "10", "until": "20",
         "limit": "1000", "after_seq": "7"}
    )
    assert (query.tenant_id, query.verdict, query.blocked) == ("t1", ["BLOCK", "CONFIRM"], False)
    assert (query.since, query.until, query.limit, query.after_seq, query.before_seq) == (10.0, 20.0, 1000, 7, None)
    bad = [
        ({"verdict": "BLOK"}, "verdict"),
        ({"verdict": ","}, "verdict"),
        ({"blocked": "yes"}, "blocked"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"before_seq": "x"}, "before_seq"),
        ({"before_seq": "1", "after_seq": "2"}, "after_seq"),
        ({"since": "20", "until": "10"}, "until"),
    ]
    for params, parameter in bad:
        with pytest.raises(BadParameter) as caught:
            parse_audit_query(params)
        assert caught.value.parameter == parameter, params


# --- login cookie ------------------------------------------------------------------------------


def test_session_cookie_is_a_signed_expiry_never_the_token():
    sessions = DashboardSessions(TOKEN.encode(), max_age_seconds=60)
    value = sessions.issue(now=1000.0)
    assert TOKEN not in value
    assert sessions.valid(value, now=1059.0)
    assert not sessions.valid(value, now=1061.0)  # expired
    assert not DashboardSessions(b"another-token").valid(value, now=1000.0)
    version, expires, mac = value.split(".")
    assert not sessions.valid(f"{version}.{int(expires) + 3600}.{mac}", now=1000.0)  # extended by hand
    assert not sessions.valid("garbage", now=1000.0)
    header = sessions.set_cookie(secure=False).decode()
    assert header.startswith(f"{COOKIE_NAME}=v1.")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=60"):
        assert attribute in header
    assert "Secure" not in header and "Secure" in sessions.set_cookie(secure=True).decode()
    assert "Max-Age=0" in DashboardSessions.clear_cookie(secure=False).decode()


def test_session_cookie_found_among_other_cookies():
    sessions = DashboardSessions(TOKEN.encode())
    value = sessions.issue()
    assert sessions.authenticated({"cookie": f'theme=dark; broken; {COOKIE_NAME}=stale; {COOKIE_NAME}="{value}"'})
    assert not sessions.authenticated({"cookie": f"{COOKIE_NAME}=stale"})
    assert not sessions.authenticated({})


def test_dashboard_files_are_packaged():
    assets = DashboardAssets()
    for name in ("static/index.html", "static/login.html", "static/app.js", "static/format.js", "static/filters.js",
                 "static/login.js", "static/style.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"):
        assert assets.get(name) is not None, name
    assert assets.get("static/app.js").content_type.startswith(b"text/javascript")
    assert assets.get("vendor/README.md") is None and assets.get("../admin.py") is None


# --- routes ------------------------------------------------------------------------------------


class _Response:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        start = messages[0]
        self.status: int = start["status"]
        self.headers = {name.decode(): value.decode() for name, value in start["headers"]}
        self.body: bytes = b"".join(message.get("body", b"") for message in messages[1:])

    def json(self) -> Any:
        return orjson.loads(self.body)


async def _call(api: AdminAPI, method: str, target: str, headers: dict[str, str] | None = None) -> _Response:
    path, _, query = target.partition("?")
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    status = await api.handle(send, method, path, headers or {}, [(b"x-capsem-request-id", b"r")],
                              query_string=query.encode())
    response = _Response(messages)
    assert response.status == status
    return response


def _context(request_id: str, tenant_id: str, session_id: str) -> RequestContext:
    return RequestContext(
        request_id=request_id, tenant_id=tenant_id, provider="openai", operation="chat",
        exchange=Exchange(provider="openai", operation="chat", model="gpt-test"), session_id=session_id,
    )


def _fill(audit: MemoryAuditSink, count: int) -> None:
    """`count` requests of two tenants; every third one blocked by a policy."""
    now = time.time()
    for index in range(count):
        request_id, tenant_id, session_id = f"req{index}", f"tenant{index % 2}", f"sess{index % 3}"
        blocked = index % 3 == 0
        decision = Decision(
            Verdict.BLOCK if blocked else Verdict.ALLOW, "Debug", "on_model_call",
            reason="policy_violation" if blocked else "safe", details="found capsem_block" if blocked else "",
        )
        audit.record(_context(request_id, tenant_id, session_id), [decision])
        audit.record_request(RequestRecord(
            request_id, now - count + index, tenant_id=tenant_id, session_id=session_id, provider="openai",
            operation="chat", model="gpt-test", status=403 if blocked else 200,
            verdict="BLOCK" if blocked else "ALLOW", reason="policy_violation" if blocked else "",
            decision_id=decision.decision_id if blocked else "", latency_ms=float(index + 1),
        ))


@pytest.fixture
def audit() -> MemoryAuditSink:
    sink = MemoryAuditSink()
    _fill(sink, 12)
    return sink


@pytest.fixture
def api(audit: MemoryAuditSink) -> AdminAPI:
    return AdminAPI(TOKEN, MemoryApprovalStore(ttl_seconds=60, max_pending=10), audit)


async def test_everything_is_absent_without_a_token(audit):
    api = AdminAPI(None, MemoryApprovalStore(ttl_seconds=60, max_pending=10), audit)
    for target in ("/admin/requests", "/admin/approvals", "/dashboard", "/dashboard/static/login.js"):
        assert (await _call(api, "GET", target, BEARER)).status == 404
    assert (await _call(api, "POST", "/dashboard/login", BEARER)).status == 404


async def test_admin_routes_need_the_token(api):
    for target in ("/admin/requests", "/admin/decisions", "/admin/sessions", "/admin/sessions/sess0",
                   "/admin/summary", "/admin/requests/req0", "/admin/approvals", "/admin/nothing-here"):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}, {"cookie": "x=y"}):
            response = await _call(api, "GET", target, headers)
            assert response.status == 401, (target, headers)
            assert b"req0" not in response.body and "Bearer" in response.headers["www-authenticate"]
        assert (await _call(api, "GET", target, BEARER)).status in (200, 404)


async def test_every_answer_is_uncacheable_and_locked_down(api):
    for method, target, headers in (
        ("GET", "/admin/requests", BEARER), ("GET", "/admin/requests", {}), ("GET", "/dashboard", {}),
        ("GET", "/dashboard", BEARER), ("GET", "/admin/requests?limit=x", BEARER),
    ):
        response = await _call(api, method, target, headers)
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-capsem-request-id"] == "r"


async def test_requests_filtered_and_paged_backwards(api):
    page = (await _call(api, "GET", "/admin/requests?limit=5", BEARER)).json()
    seqs = [row["seq"] for row in page["requests"]]
    assert len(seqs) == 5 and seqs == sorted(seqs, reverse=True)
    assert page["next"] == {"before_seq": seqs[-1]}
    seen = list(page["requests"])
    while page["next"]:
        page = (await _call(api, "GET", f"/admin/requests?limit=5&before_seq={page['next']['before_seq']}",
                            BEARER)).json()
        seen.extend(page["requests"])
    assert sorted(row["request_id"] for row in seen) == sorted(f"req{i}" for i in range(12))

    blocked = (await _call(api, "GET", "/admin/requests?blocked=true", BEARER)).json()["requests"]
    assert {row["request_id"] for row in blocked} == {"req0", "req3", "req6", "req9"}
    assert all(row["reason"] == "policy_violation" for row in blocked)
    tenant = (await _call(api, "GET", "/admin/requests?tenant_id=tenant1&verdict=ALLOW", BEARER)).json()["requests"]
    assert {row["request_id"] for row in tenant} == {"req1", "req5", "req7", "req11"}
    assert (await _call(api, "GET", "/admin/requests?tenant_id=nobody", BEARER)).json() == {
        "requests": [], "next": None
    }


async def test_live_tail_continues_after_the_newest_row(api, audit):
    first = (await _call(api, "GET", "/admin/requests?limit=1", BEARER)).json()
    newest = first["requests"][0]["seq"]
    tail = (await _call(api, "GET", f"/admin/requests?after_seq={newest}", BEARER)).json()
    assert tail == {"requests": [], "next": {"after_seq": newest}}
    _fill(audit, 2)
    tail = (await _call(api, "GET", f"/admin/requests?after_seq={newest}", BEARER)).json()
    seqs = [row["seq"] for row in tail["requests"]]
    assert len(seqs) == 2 and seqs == sorted(seqs) and tail["next"] == {"after_seq": seqs[-1]}


async def test_decisions_filtered_by_policy_and_verdict(api):
    rows = (await _call(api, "GET", "/admin/decisions?policy=Debug&verdict=BLOCK", BEARER)).json()["decisions"]
    assert {row["request_id"] for row in rows} == {"req0", "req3", "req6", "req9"}
    assert all(row["details"] == "found capsem_block" for row in rows)
    assert (await _call(api, "GET", "/admin/decisions?policy=Other", BEARER)).json()["decisions"] == []


async def test_request_detail_sessions_timeline_and_summary(api):
    detail = (await _call(api, "GET", "/admin/requests/req3", BEARER)).json()
    assert detail["request"]["request_id"] == "req3" and detail["request"]["status"] == 403
    assert [row["verdict"] for row in detail["decisions"]] == ["BLOCK"]
    assert (await _call(api, "GET", "/admin/requests/unknown", BEARER)).status == 404

    sessions = (await _call(api, "GET", "/admin/sessions?tenant_id=tenant0", BEARER)).json()["sessions"]
    assert {session["session_id"] for session in sessions} == {"sess0", "sess1", "sess2"}
    timeline = (await _call(api, "GET", "/admin/sessions/sess0", BEARER)).json()
    assert timeline["session_id"] == "sess0"
    assert {item["type"] for item in timeline["timeline"]} == {"request", "decision"}
    assert (await _call(api, "GET", "/admin/sessions/nope", BEARER)).status == 404

    summary = (await _call(api, "GET", f"/admin/summary?since={int(time.time()) - 60}&bucket=10", BEARER)).json()
    assert (summary["requests"], summary["blocked"], summary["bucket"]) == (12, 4, 10)
    assert summary["top_policies"] == [{"policy": "Debug", "verdict": "BLOCK", "count": 4}]
    assert sum(bucket["count"] for bucket in summary["latency"]) == 12


async def test_bad_parameters_are_400_naming_the_parameter(api):
    cases = {
        "/admin/requests?limit=5000": "limit",
        "/admin/requests?since=last-week": "since",
        "/admin/decisions?status=403": "status",  # a requests-only filter
        "/admin/requests?status=4x": "status",
        "/admin/requests?status=700": "status",
        "/admin/requests?q=%20a%20": "q",  # too short to search for
        "/admin/export/requests?format=xml": "format",
        "/admin/export/requests?after_seq=3": "after_seq",
        "/admin/decisions?verdict=MAYBE": "verdict",
        "/admin/requests?blocked=maybe": "blocked",
        "/admin/sessions?after_seq=3": "after_seq",
        "/admin/summary?bucket=0": "bucket",
        "/admin/summary?since=0&bucket=1": "bucket",  # too many buckets
        "/admin/sessions/sess0?limit=x": "limit",
        "/admin/requests/%ff": "request_id",
    }
    for target, parameter in cases.items():
        response = await _call(api, "GET", target, BEARER)
        assert response.status == 400, target
        body = response.json()
        assert body["error"]["parameter"] == parameter and parameter in body["detail"], target


async def test_unknown_routes_404_and_wrong_methods_405(api):
    for target in ("/admin/", "/admin/nothing", "/admin/decisions/x", "/admin/requests/a/b", "/dashboard/nope",
                   "/dashboardx", "/dashboard/static/index.html"):
        assert (await _call(api, "GET", target, BEARER)).status == 404, target
    for method, target, allowed in (
        ("POST", "/admin/requests", "GET"), ("DELETE", "/admin/sessions", "GET"), ("POST", "/admin/approvals", "GET"),
        ("GET", "/admin/approvals/d1/approve", "POST"), ("GET", "/dashboard/login", "POST"),
        ("POST", "/dashboard", "GET"),
    ):
        response = await _call(api, method, target, BEARER)
        assert response.status == 405 and response.headers["allow"] == allowed, target


async def test_dashboard_login_gives_a_cookie_that_reads_but_needs_a_header_to_write(api):
    login_page = await _call(api, "GET", "/dashboard")
    assert login_page.status == 401 and b"login-form" in login_page.body and b"req0" not in login_page.body
    assert (await _call(api, "GET", "/dashboard/static/login.js")).status == 200
    assert (await _call(api, "GET", "/dashboard/static/app.js")).status == 401
    assert (await _call(api, "POST", "/dashboard/login", {"authorization": "Bearer wrong"})).status == 401

    login = await _call(api, "POST", "/dashboard/login", BEARER)
    assert login.status == 204
    cookie = login.headers["set-cookie"].split(";", 1)[0]
    assert TOKEN not in cookie
    browser = {"cookie": cookie, "sec-fetch-site": "same-origin"}
    page = await _call(api, "GET", "/dashboard", browser)
    assert page.status == 200 and b"live-requests" in page.body
    assert page.headers["content-type"].startswith("text/html")
    assert (await _call(api, "GET", "/dashboard/vendor/uPlot.iife.min.js", browser)).status == 200
    assert len((await _call(api, "GET", "/admin/requests", browser)).json()["requests"]) == 12
    # Another site, or another origin of the same site (another port), cannot use the cookie.
    for site in ("cross-site", "same-site"):
        assert (await _call(api, "GET", "/admin/requests", {**browser, "sec-fetch-site": site})).status == 401

    await api.approvals.hold(HeldRequest("d1", "t", "f", "Confirm", "money", "details", time.time()))
    assert (await _call(api, "POST", "/admin/approvals/d1/approve", browser)).status == 401
    approved = await _call(api, "POST", "/admin/approvals/d1/approve", {**browser, "x-capsem-admin": "1"})
    assert approved.status == 200 and approved.json()["status"] == "approved"

    assert (await _call(api, "POST", "/dashboard/logout", browser)).status == 401
    logout = await _call(api, "POST", "/dashboard/logout", {**browser, "x-capsem-admin": "1"})
    assert logout.status == 204 and "Max-Age=0" in logout.headers["set-cookie"]


async def test_a_store_that_does_not_answer_is_503_not_a_crash(api, audit):
    async def broken(query):
        raise OSError("database is down")

    audit.query_requests = broken
    response = await _call(api, "GET", "/admin/requests", BEARER)
    assert response.status == 503 and "audit store" in response.json()["detail"]


class _Directory:
    """A tenant directory as the gateway's key store would give: tenant0 is called "team-a"."""

    def __init__(self) -> None:
        self.asked: list[set[str]] = []

    async def names(self, tenant_ids):
        self.asked.append(set(tenant_ids))
        return {"tenant0": "team-a"} if "tenant0" in tenant_ids else {}

    async def tenant_ids(self, name):
        return ["tenant0"] if name == "team-a" else []


async def test_tenant_names_are_shown_where_known_and_filter_by_name(audit):
    directory = _Directory()
    api = AdminAPI(TOKEN, MemoryApprovalStore(ttl_seconds=60, max_pending=10), audit)
    api.tenant_names = directory
    rows = (await _call(api, "GET", "/admin/requests", BEARER)).json()["requests"]
    assert {(row["tenant_id"], row.get("tenant_name")) for row in rows} == {("tenant0", "team-a"), ("tenant1", None)}
    assert directory.asked == [{"tenant0", "tenant1"}]  # one lookup per page
    by_name = (await _call(api, "GET", "/admin/requests?tenant=team-a", BEARER)).json()["requests"]
    by_id = (await _call(api, "GET", "/admin/requests?tenant=tenant1", BEARER)).json()["requests"]
    assert {row["tenant_id"] for row in by_name} == {"tenant0"} and {row["tenant_id"] for row in by_id} == {"tenant1"}
    summary = (await _call(api, "GET", f"/admin/summary?since={int(time.time()) - 3600}", BEARER)).json()
    assert {row.get("tenant_name") for row in summary["top_tenants"]} == {"team-a", None}
    sessions = (await _call(api, "GET", "/admin/sessions?tenant=team-a", BEARER)).json()["sessions"]
    assert sessions and all(row["tenant_name"] == "team-a" for row in sessions)
    exported = (await _call(api, "GET", "/admin/export/requests?format=csv&tenant=team-a", BEARER)).body.decode()
    assert exported.count("team-a") == len(by_name)
    # Without a directory, rows carry the id alone.
    plain = AdminAPI(TOKEN, MemoryApprovalStore(ttl_seconds=60, max_pending=10), audit)
    assert all("tenant_name" not in row for row in (await _call(plain, "GET", "/admin/requests", BEARER)).json()[
        "requests"])


async def test_request_rows_carry_their_governing_decision(api):
    rows = (await _call(api, "GET", "/admin/requests?blocked=true", BEARER)).json()["requests"]
    assert rows and all((row["policy"], row["details"]) == ("Debug", "found capsem_block") for row in rows)
    detail = (await _call(api, "GET", f"/admin/requests/{rows[0]['request_id']}", BEARER)).json()
    assert detail["request"]["policy"] == "Debug"
    found = (await _call(api, "GET", "/admin/requests?q=CAPSEM_block&status=4xx&policy=Debug", BEARER)).json()
    assert [row["request_id"] for row in found["requests"]] == [row["request_id"] for row in rows]


async def test_whoami_names_the_callers_role(api):
    assert (await _call(api, "GET", "/admin/whoami", BEARER)).json() == {"role": "admin"}
    assert (await _call(api, "GET", "/admin/whoami")).status == 401


async def test_a_search_cut_short_by_the_bounded_scan_continues_page_by_page(tmp_path, monkeypatch):
    """With a scan of 3 rows, a filter matching every third request answers short pages that say
    `scan_limited`; following `next` finds every match, each once, newest first."""
    from capsem_proxy.audit import open_audit_sink
    from capsem_proxy.audit.keys import ChainKey

    monkeypatch.setattr("capsem_proxy.audit.sql.MAX_SCAN", 3)
    monkeypatch.setattr("capsem_proxy.admin.triage.MAX_SCAN", 3)
    sink = open_audit_sink(f"sqlite:///{tmp_path / 'audit.db'}", ChainKey(b"k" * 32))
    await sink.start()
    try:
        _fill(sink, 12)
        await sink.flush()
        api = AdminAPI(TOKEN, MemoryApprovalStore(ttl_seconds=60, max_pending=10), sink)
        found, pages, target = [], 0, "/admin/requests?blocked=true&limit=10"
        while target:
            answer = (await _call(api, "GET", target, BEARER)).json()
            found += [row["request_id"] for row in answer["requests"]]
            pages += 1
            cursor = answer["next"]
            assert answer.get("scan_limited", False) == (cursor is not None)
            target = f"/admin/requests?blocked=true&limit=10&before_seq={cursor['before_seq']}" if cursor else ""
        # Four full scans of 3, and a last page that finds the scan has reached the oldest row.
        assert found == ["req9", "req6", "req3", "req0"] and pages == 5
    finally:
        await sink.close()


async def test_a_failing_tenant_directory_leaves_the_ids(audit):
    class Broken(_Directory):
        async def names(self, tenant_ids):
            raise ConnectionError("key store down")

    api = AdminAPI(TOKEN, MemoryApprovalStore(ttl_seconds=60, max_pending=10), audit)
    api.tenant_names = Broken()
    response = await _call(api, "GET", "/admin/requests", BEARER)
    assert response.status == 200 and all("tenant_name" not in row for row in response.json()["requests"])
