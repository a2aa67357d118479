"""Triage over the admin API of a real proxy (SQLite and PostgreSQL audit stores): after a known mix of
allowed, blocked, stream-blocked and failed requests from two callers, every filter finds exactly its
rows, request rows carry the governing decision's policy and text, and the same filters export the
rows as CSV and JSONL, bounded, with nothing a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import time

import httpx
import openai
import orjson
import pytest

from capsem_proxy.admin.export import CSV_COLUMNS
from tests.audit.stores import drop_schema, new_schema_url
from tests.browser import REPO_ROOT
from tests.integration.test_admin_queries import _eventually
from tests.proxy_process import ProxyProcess, start_proxy

ADMIN_TOKEN = "admin-token-for-triage-0123456"
BEARER = {"authorization": f"Bearer {ADMIN_TOKEN}"}
KEY_A = "sk-triage-tenant-a"
KEY_B = "sk-triage-tenant-b"
FORMULA_AGENT = "=HYPERLINK(\"http://evil.example\")"


def _admin(proxy: ProxyProcess, path: str, **params) -> httpx.Response:
    return httpx.get(f"{proxy.base_url}/admin{path}", params=params, headers=BEARER)


def _requests(proxy: ProxyProcess, **params) -> list[dict]:
    response = _admin(proxy, "/requests", **params)
    assert response.status_code == 200, response.text
    return response.json()["requests"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def triage(request, fake_provider):
    url = "sqlite:///audit.db" if request.param == "sqlite" else new_schema_url()
    proxy = None
    try:
        config = {
            "admin": {"token": ADMIN_TOKEN},
            "audit": {"url": url},
            "policies": [
                {"class": "capsem.policies.debug_policy.DebugPolicy"},
                {"class": "tests.integration.policies.ResponseGuardPolicy"},
            ],
        }
        proxy = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
        yield _send_traffic(proxy, fake_provider)
    finally:
        if proxy is not None:
            proxy.stop()
        if request.param == "postgres":
            drop_schema(url)


def _send_traffic(proxy: ProxyProcess, fake_provider) -> dict:
    """Tenant A: two allowed, one blocked by the debug policy, one the provider refused with 429.
    Tenant B (agent named like a formula): one allowed, one stream a response policy ended."""
    started = time.time()
    a = openai.OpenAI(api_key=KEY_A, base_url=f"{proxy.base_url}/v1", max_retries=0,
                      default_headers={"x-capsem-session-id": "triage-a"})
    b = openai.OpenAI(api_key=KEY_B, base_url=f"{proxy.base_url}/v1", max_retries=0,
                      default_headers={"x-capsem-session-id": "triage-b", "x-capsem-agent-id": FORMULA_AGENT})
    ids: dict[str, str] = {}
    for index in range(2):
        reply = a.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"hello {index}"}])
        ids[f"allowed{index}"] = reply.headers["x-capsem-request-id"]
    with pytest.raises(openai.PermissionDeniedError) as blocked:
        a.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "capsem_block it"}])
    ids["blocked"] = blocked.value.response.headers["x-capsem-request-id"]
    with pytest.raises(openai.RateLimitError) as limited:
        a.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "slow down"}],
                                  extra_headers=fake_provider.scenario_header(status=429))
    ids["limited"] = limited.value.response.headers["x-capsem-request-id"]
    reply = b.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi from b"}])
    ids["allowed_b"] = reply.headers["x-capsem-request-id"]
    stream = b.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "tell me"}], stream=True,
        extra_headers=fake_provider.scenario_header(reply="Here it comes: FORBIDDEN words follow, and more text."),
    )
    with pytest.raises(openai.APIError, match="Response blocked by security policy"):
        for _ in stream:
            pass
    ids["stream_blocked"] = stream.response.headers["x-capsem-request-id"]
    rows = _eventually(lambda: _requests(proxy, since=started), len(ids))
    assert {row["request_id"] for row in rows} == set(ids.values())
    tenants = {row["request_id"]: row["tenant_id"] for row in rows}
    return {"proxy": proxy, "ids": ids, "since": started, "tenant_a": tenants[ids["blocked"]],
            "tenant_b": tenants[ids["allowed_b"]]}


def _ids(triage, **params) -> set[str]:
    return {row["request_id"] for row in _requests(triage["proxy"], since=triage["since"], **params)}


def test_request_rows_carry_the_governing_policy_and_its_text(triage):
    [blocked] = _requests(triage["proxy"], request_id=triage["ids"]["blocked"])
    assert blocked["reason"] == "policy_violation"
    assert blocked["details"] == "Detected 'capsem_block' in prompt"
    assert blocked["policy"]
    [streamed] = _requests(triage["proxy"], request_id=triage["ids"]["stream_blocked"])
    assert (streamed["status"], streamed["verdict"], streamed["policy"]) == (200, "BLOCK", "ResponseGuard")
    assert streamed["details"] == "Detected 'FORBIDDEN'"
    [allowed] = _requests(triage["proxy"], request_id=triage["ids"]["allowed0"])
    assert "policy" not in allowed  # an ALLOW has no governing decision


def test_every_filter_finds_its_rows(triage):
    ids = triage["ids"]
    both_blocks = {ids["blocked"], ids["stream_blocked"]}
    assert _ids(triage, verdict="BLOCK") == both_blocks
    assert _ids(triage, blocked="true") == both_blocks  # the stream answered 200, and still counts as blocked
    assert _ids(triage, verdict="ALLOW,LOG") == {ids["allowed0"], ids["allowed1"], ids["limited"], ids["allowed_b"]}
    assert _ids(triage, status="4xx") == {ids["blocked"], ids["limited"]}
    assert _ids(triage, status="429") == {ids["limited"]}
    assert _ids(triage, status="200,500-599") == {ids["allowed0"], ids["allowed1"], ids["allowed_b"],
                                                 ids["stream_blocked"]}
    assert _ids(triage, policy="ResponseGuard") == {ids["stream_blocked"]}
    assert _ids(triage, q="capsem_BLOCK") == {ids["blocked"]}
    assert _ids(triage, q="forbidden") == {ids["stream_blocked"]}
    assert _ids(triage, tenant=triage["tenant_b"]) == {ids["allowed_b"], ids["stream_blocked"]}
    assert _ids(triage, tenant_id=triage["tenant_a"], verdict="BLOCK") == {ids["blocked"]}
    assert _ids(triage, session_id="triage-b", model="gpt-4o") == {ids["allowed_b"], ids["stream_blocked"]}
    assert _ids(triage, provider="gemini") == set()
    assert _ids(triage, until=triage["since"]) == set()
    decisions = _admin(triage["proxy"], "/decisions", q="forbidden", since=triage["since"]).json()["decisions"]
    assert [(row["policy"], row["verdict"]) for row in decisions] == [("ResponseGuard", "BLOCK")]


def test_request_detail_shows_every_decision_with_policy_and_reason(triage):
    detail = _admin(triage["proxy"], f"/requests/{triage['ids']['stream_blocked']}").json()
    assert detail["request"]["policy"] == "ResponseGuard"
    decisions = {(row["policy"], row["hook"], row["verdict"]) for row in detail["decisions"]}
    assert ("ResponseGuard", "on_model_response", "BLOCK") in decisions
    assert any(verdict == "ALLOW" for _, _, verdict in decisions)  # the request hooks it passed
    assert all(row["reason"] for row in detail["decisions"])


def test_csv_export_has_the_filtered_rows_and_no_formula(triage):
    response = _admin(triage["proxy"], "/export/requests", format="csv", since=triage["since"],
                      tenant=triage["tenant_b"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="capsem-requests-')
    assert response.headers["x-capsem-export-truncated"] == "false"
    table = list(csv.reader(io.StringIO(response.text)))
    assert tuple(table[0]) == CSV_COLUMNS["requests"]
    rows = [dict(zip(table[0], line, strict=True)) for line in table[1:]]
    assert {row["request_id"] for row in rows} == {triage["ids"]["allowed_b"], triage["ids"]["stream_blocked"]}
    streamed = next(row for row in rows if row["request_id"] == triage["ids"]["stream_blocked"])
    assert (streamed["status"], streamed["blocked"], streamed["policy"]) == ("200", "true", "ResponseGuard")
    assert streamed["time"].endswith("Z") and "T" in streamed["time"]
    assert streamed["agent_id"] == "'" + FORMULA_AGENT  # a spreadsheet shows it as text, never runs it
    assert ADMIN_TOKEN not in response.text and KEY_B not in response.text


def test_jsonl_export_uses_the_same_filters_and_is_bounded(triage):
    proxy = triage["proxy"]
    response = _admin(proxy, "/export/requests", format="jsonl", since=triage["since"], blocked="true")
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert {line["request_id"] for line in lines} == {triage["ids"]["blocked"], triage["ids"]["stream_blocked"]}
    assert all(line["blocked"] is True and line["policy"] for line in lines)

    first = _admin(proxy, "/export/requests", format="jsonl", since=triage["since"], limit=1)
    assert first.headers["x-capsem-export-rows"] == "1"
    assert first.headers["x-capsem-export-truncated"] == "true"
    cursor = first.headers["x-capsem-export-next"]
    assert cursor.startswith("before_seq=")
    rest = _admin(proxy, "/export/requests", format="jsonl", since=triage["since"],
                  before_seq=cursor.removeprefix("before_seq="))
    seen = [orjson.loads(line)["request_id"] for line in (first.content + rest.content).splitlines()]
    assert sorted(seen) == sorted(triage["ids"].values())

    decisions = _admin(proxy, "/export/decisions", format="csv", since=triage["since"], verdict="BLOCK")
    table = list(csv.reader(io.StringIO(decisions.text)))
    assert tuple(table[0]) == CSV_COLUMNS["decisions"]
    assert len(table) == 3

    assert httpx.get(f"{proxy.base_url}/admin/export/requests").status_code == 401
    assert _admin(proxy, "/export/sessions").status_code == 404
    assert _admin(proxy, "/export/requests", limit=10_001).status_code == 400


def test_a_filtered_live_tail_moves_past_the_rows_it_looked_at(triage):
    """A tail filtered to rare rows must not filter the same busy stretch again at every poll: its
    cursor goes past every row examined, matched or not."""
    proxy, ids = triage["proxy"], triage["ids"]
    newest = max(row["seq"] for row in _requests(proxy, since=triage["since"]))
    page = _admin(proxy, "/requests", after_seq=0, verdict="BLOCK").json()
    assert {row["request_id"] for row in page["requests"]} == {ids["blocked"], ids["stream_blocked"]}
    assert page["next"] == {"after_seq": newest}
    assert _admin(proxy, "/requests", after_seq=newest, verdict="BLOCK").json() == {
        "requests": [], "next": {"after_seq": newest}}
