"""Triage in the dashboard, in a real headless Chromium against a real proxy, as a security engineer
would go about it: narrow the live page from a wall of ALLOW rows to what was blocked (verdict,
free text on reasons, status, tenant, policy), over a chosen time range, export exactly those rows,
and open one request to see every decision with its policy and reason. Times are dates with a
24-hour clock in the browser's zone (here UTC+05:30, in an en-US locale that would say "PM") or in
UTC. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import httpx
import openai
import orjson
import pytest

from tests.browser import REPO_ROOT, chromium_context, require_chromium
from tests.proxy_process import start_proxy

ADMIN_TOKEN = "admin-token-for-triage-browser-01"
KEY_A = "sk-triage-browser-tenant-a"
KEY_B = "sk-triage-browser-tenant-b"
WAIT_MS = 8000
ZONE = timezone(timedelta(hours=5, minutes=30))  # Asia/Kolkata: no daylight saving time
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def traffic(chromium, fake_provider):
    """Tenant A: five allowed, one blocked by the debug policy, one refused by the provider (429).
    Tenant B: one allowed, one stream a response policy ended."""
    config = {
        "admin": {"token": ADMIN_TOKEN},
        "policies": [
            {"class": "capsem.policies.debug_policy.DebugPolicy"},
            {"class": "tests.integration.policies.ResponseGuardPolicy"},
            {"class": "tests.integration.policies.ConfirmPolicy"},
        ],
    }
    proxy = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    a = openai.OpenAI(api_key=KEY_A, base_url=f"{proxy.base_url}/v1", max_retries=0,
                      default_headers={"x-capsem-session-id": "triage-browser-a"})
    b = openai.OpenAI(api_key=KEY_B, base_url=f"{proxy.base_url}/v1", max_retries=0,
                      default_headers={"x-capsem-session-id": "triage-browser-b"})
    ids = {}
    for turn in range(5):
        a.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"hello {turn}"}])
    with pytest.raises(openai.PermissionDeniedError) as blocked:
        a.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "capsem_block it"}])
    ids["blocked"] = blocked.value.response.headers["x-capsem-request-id"]
    with pytest.raises(openai.RateLimitError) as limited:
        a.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}],
                                  extra_headers=fake_provider.scenario_header(status=429))
    ids["limited"] = limited.value.response.headers["x-capsem-request-id"]
    b.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi from b"}])
    stream = b.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "tell me"}], stream=True,
        extra_headers=fake_provider.scenario_header(reply="Here it comes: FORBIDDEN words follow, and more text."),
    )
    with pytest.raises(openai.APIError, match="Response blocked by security policy"):
        for _ in stream:
            pass
    ids["stream"] = stream.response.headers["x-capsem-request-id"]
    bearer = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    deadline = time.monotonic() + 10
    while True:
        rows = httpx.get(f"{proxy.base_url}/admin/requests", headers=bearer).json()["requests"]
        if len(rows) >= 9 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(rows) == 9
    by_id = {row["request_id"]: row for row in rows}
    yield {"proxy": proxy, "ids": ids, "rows": by_id, "tenant_b": by_id[ids["stream"]]["tenant_id"]}
    proxy.stop()


@pytest.fixture
def page(chromium):
    with chromium_context(chromium, timezone_id="Asia/Kolkata", locale="en-US", accept_downloads=True) as context:
        page = context.new_page()
        page.set_viewport_size({"width": 1440, "height": 900})
        page.problems = []  # script errors and CSP violations
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.on("console", lambda message: message.type == "error"
                and not message.text.startswith("Failed to load resource") and page.problems.append(message.text))
        yield page


def _log_in(page, proxy) -> None:
    page.goto(f"{proxy.base_url}/dashboard")
    page.fill("#token", ADMIN_TOKEN)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    page.wait_for_selector("#live-requests", state="visible")


def _wait_for_rows(page, expected: set[str], table: str = "#live-requests") -> None:
    page.wait_for_function(
        """([table, expected]) => {
            const rows = document.querySelectorAll(table + " tbody tr[data-request-id]");
            const ids = [...rows].map(r => r.dataset.requestId);
            return ids.length === expected.length && expected.every(id => ids.includes(id));
        }""",
        arg=[table, sorted(expected)], timeout=WAIT_MS,
    )


def _apply(page) -> None:
    page.click("#filters button[type=submit]")


def test_filters_narrow_the_live_page_to_what_matters(traffic, page, tmp_path):
    ids = traffic["ids"]
    _log_in(page, traffic["proxy"])
    _wait_for_rows(page, set(traffic["rows"]))
    # The decision table leaves out the ALLOW every policy records on every request, unless asked.
    page.locator("#live-decisions tbody tr.decision-row").first.wait_for(timeout=WAIT_MS)
    assert set(page.locator("#live-decisions tbody td.verdict").all_inner_texts()) == {"BLOCK"}
    assert page.inner_text("#decisions-scope") == "other than ALLOW"
    page.check("#f-allow")
    page.locator("#live-decisions tbody td.verdict", has_text="ALLOW").first.wait_for(timeout=WAIT_MS)
    assert "allow=1" in page.evaluate("location.hash")
    page.uncheck("#f-allow")
    page.wait_for_function("() => !location.hash.includes('allow=1')", timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "triage-unfiltered.png"), full_page=True)

    page.select_option("#f-verdict", "BLOCK")  # applies at once
    _wait_for_rows(page, {ids["blocked"], ids["stream"]})
    assert "verdict=BLOCK" in page.evaluate("location.hash")
    stream_row = page.locator(f"#live-requests tbody tr[data-request-id='{ids['stream']}']")
    assert stream_row.locator("td.status").inner_text() == "200 (stream blocked)"
    assert stream_row.locator("td.policy").inner_text() == "ResponseGuard"
    assert stream_row.locator("td.reason").inner_text() == "unsafe_content: Detected 'FORBIDDEN'"
    assert {text for text in page.locator("#live-decisions tbody td.verdict").all_inner_texts()} == {"BLOCK"}
    page.screenshot(path=str(tmp_path / "triage-blocked-only.png"), full_page=True)

    page.fill("#f-q", "capsem_block")
    _apply(page)
    _wait_for_rows(page, {ids["blocked"]})
    assert page.locator("#live-requests tbody tr td.reason").inner_text() == (
        "policy_violation: Detected 'capsem_block' in prompt")

    page.click("#f-clear")
    _wait_for_rows(page, set(traffic["rows"]))
    page.fill("#f-status", "4xx")
    _apply(page)
    _wait_for_rows(page, {ids["blocked"], ids["limited"]})

    page.click("#f-clear")
    _wait_for_rows(page, set(traffic["rows"]))
    stream_row = page.locator(f"#live-requests tbody tr[data-request-id='{ids['stream']}']")
    stream_row.locator(f"td a[title*='{traffic['tenant_b']}']").click()
    tenant_b = {request_id for request_id, row in traffic["rows"].items() if row["tenant_id"] == traffic["tenant_b"]}
    _wait_for_rows(page, tenant_b)
    assert page.input_value("#f-tenant") == traffic["tenant_b"]

    page.locator(f"#live-requests tbody tr[data-request-id='{ids['stream']}'] td.policy a").click()
    _wait_for_rows(page, {ids["stream"]})
    assert page.input_value("#f-policy") == "ResponseGuard"

    # The filters survive a move to the Blocked page and back, and a reload (they live in the address).
    page.click("nav a[data-nav=blocked]")
    _wait_for_rows(page, {ids["stream"]}, "#blocked-requests")
    page.reload()
    _wait_for_rows(page, {ids["stream"]}, "#blocked-requests")
    assert page.problems == []


def test_time_range_picker_and_a_24_hour_clock_with_dates(traffic, page, tmp_path):
    proxy, rows = traffic["proxy"], traffic["rows"]
    _log_in(page, proxy)
    _wait_for_rows(page, set(rows))
    times = page.locator("#live-requests tbody td.time").all_inner_texts()
    assert times and all(DATE_TIME.match(text) for text in times), times
    assert not re.search(r"\b[AP]M\b", page.inner_text("main"))
    newest = max(rows.values(), key=lambda row: row["seq"])
    shown = page.locator(f"#live-requests tbody tr[data-request-id='{newest['request_id']}'] td.time").inner_text()
    assert shown == datetime.fromtimestamp(newest["started_at"], ZONE).strftime("%Y-%m-%d %H:%M:%S")

    page.check("#utc")
    page.wait_for_function(
        "([id, text]) => document.querySelector(`tr[data-request-id='${id}'] td.time`)?.textContent === text",
        arg=[newest["request_id"], datetime.fromtimestamp(newest["started_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")],
        timeout=WAIT_MS,
    )
    page.uncheck("#utc")

    page.select_option("#f-range", "15m")
    _wait_for_rows(page, set(rows))
    assert page.inner_text("#live-mode") == "in the chosen time range"
    assert "range=15m" in page.evaluate("location.hash")

    # A custom range, written in the browser's zone: an hour that ended before the traffic shows nothing,
    # one around it shows everything.
    start = datetime.fromtimestamp(min(row["started_at"] for row in rows.values()), ZONE)
    page.select_option("#f-range", "custom")
    page.fill("#f-from", (start - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"))
    page.fill("#f-to", (start - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"))
    _apply(page)
    page.locator("#live-requests tbody td.empty", has_text="no requests match these filters").wait_for(timeout=WAIT_MS)
    page.fill("#f-from", (start - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M"))
    page.fill("#f-to", (start + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"))
    _apply(page)
    _wait_for_rows(page, set(rows))
    page.screenshot(path=str(tmp_path / "triage-custom-range.png"), full_page=True)

    page.fill("#f-from", "yesterday")
    _apply(page)
    page.wait_for_selector("#status.error:text('from: write a date and time')", timeout=WAIT_MS)

    assert page.evaluate("[Format.integer(1234567), Format.millis(1234.5), Format.millis(12.345)]") == [
        "1,234,567", "1,235", "12.3"]

    # The overview follows the range too, in buckets that fit it.
    page.goto(f"{proxy.base_url}/dashboard#overview?range=24h")
    page.wait_for_selector("#overview-title:text('Last 24 hours')", timeout=WAIT_MS)
    page.locator("#chart-count canvas").wait_for(timeout=WAIT_MS)
    assert page.locator(".overview-bucket").first.inner_text() == "15 minutes"
    assert int(page.inner_text("#stat-requests").replace(",", "")) >= len(rows)
    assert not page.locator("#f-verdict").is_visible() and page.locator("#f-range").is_visible()
    page.screenshot(path=str(tmp_path / "triage-overview-24h.png"), full_page=True)
    assert page.problems == []


def test_export_downloads_exactly_the_filtered_rows(traffic, page, tmp_path):
    ids = traffic["ids"]
    _log_in(page, traffic["proxy"])
    page.select_option("#f-verdict", "BLOCK")
    _wait_for_rows(page, {ids["blocked"], ids["stream"]})

    with page.expect_download() as download:
        page.click("#export-csv")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert re.fullmatch(r"capsem-requests-\d{8}T\d{6}Z\.csv", path.name)
    table = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert {row["request_id"] for row in table} == {ids["blocked"], ids["stream"]}
    assert {row["policy"] for row in table} == {"Debug", "ResponseGuard"}

    page.fill("#f-q", "forbidden")
    _apply(page)
    _wait_for_rows(page, {ids["stream"]})
    with page.expect_download() as download:
        page.click("#export-jsonl")
    lines = [orjson.loads(line) for line in download.value.path().read_bytes().splitlines()]
    assert [(line["request_id"], line["status"], line["blocked"]) for line in lines] == [(ids["stream"], 200, True)]
    with page.expect_download() as download:
        page.click("#export-decisions-csv")
    decisions = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert [(row["request_id"], row["policy"], row["verdict"], row["hook"]) for row in decisions] == [
        (ids["stream"], "ResponseGuard", "BLOCK", "on_model_response")]

    # Sessions are filtered by who and when: the other filters and the exports are not offered there.
    page.click("nav a[data-nav=sessions]")
    page.locator("#sessions tbody tr", has_text="triage-browser-b").wait_for(timeout=WAIT_MS)
    assert page.locator("#f-tenant").is_visible() and page.locator("#f-range").is_visible()
    assert not page.locator("#f-verdict").is_visible() and not page.locator("#export-csv").is_visible()
    assert page.problems == []


def test_request_detail_shows_every_decision_with_policy_and_reason(traffic, page, tmp_path):
    ids = traffic["ids"]
    proxy = traffic["proxy"]
    detail = httpx.get(f"{proxy.base_url}/admin/requests/{ids['stream']}",
                       headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    _log_in(page, proxy)
    row = page.locator(f"#live-requests tbody tr[data-request-id='{ids['stream']}']")
    row.wait_for(timeout=WAIT_MS)
    row.locator("td.reason").click()
    page.wait_for_url(re.compile(f"#request/{ids['stream']}$"))
    page.locator("#request-decisions tbody tr.decision-row").first.wait_for(timeout=WAIT_MS)
    summary = page.inner_text("#request-summary")
    assert "BLOCK" in summary and "200 (stream blocked)" in summary
    assert "by ResponseGuard: unsafe_content: Detected 'FORBIDDEN'" in summary
    decision_rows = page.locator("#request-decisions tbody tr.decision-row")
    assert decision_rows.count() == len(detail["decisions"]) >= 3
    shown = {(cells[3], cells[4], cells[5]) for cells in
             (decision_rows.nth(index).locator("td").all_inner_texts() for index in range(decision_rows.count()))}
    assert shown == {(row["policy"], row["hook"], row["verdict"]) for row in detail["decisions"]}
    for cells in (decision_rows.nth(index).locator("td").all_inner_texts() for index in range(decision_rows.count())):
        assert cells[6], cells  # every decision shows its reason
    assert page.inner_text("#request-decision-count") == f"({len(detail['decisions'])})"
    fields = dict(zip(page.locator("#request-fields dt").all_inner_texts(),
                      page.locator("#request-fields dd").all_inner_texts(), strict=True))
    assert fields["policy"] == "ResponseGuard" and fields["status"] == "200 (stream blocked)"
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(UTC\+05:30\)$", fields["time"])
    page.screenshot(path=str(tmp_path / "triage-request-detail.png"), full_page=True)
    assert (tmp_path / "triage-request-detail.png").stat().st_size > 10_000
    assert page.problems == []


def test_a_viewer_sees_no_write_buttons(traffic, page, tmp_path):
    """The page asks the admin API for the caller's role (GET /admin/whoami); a viewer's page shows
    held requests without Approve or Deny. Here the role is answered by the browser's network layer,
    as the admin token alone always makes an admin."""
    proxy = traffic["proxy"]
    held = httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "please transfer money to Bob"}]},
        headers={"authorization": f"Bearer {KEY_A}"},
    )
    assert held.status_code == 403
    assert httpx.get(f"{proxy.base_url}/admin/whoami",
                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json() == {"role": "admin"}

    _log_in(page, proxy)
    page.click("nav a[data-nav=approvals]")
    row = page.locator("#approvals tbody tr", has_text="money transfer")
    row.wait_for(timeout=WAIT_MS)
    assert row.locator("button.approve").is_visible() and row.locator("button.deny").is_visible()

    page.route("**/admin/whoami", lambda route: route.fulfill(
        status=200, content_type="application/json", body=orjson.dumps({"role": "viewer"})))
    page.reload()
    row.wait_for(timeout=WAIT_MS)
    assert page.evaluate("document.body.dataset.role") == "viewer"
    assert page.inner_text("#role") == "viewer (read-only)"
    assert not row.locator("button.approve").is_visible() and not row.locator("button.deny").is_visible()
    page.screenshot(path=str(tmp_path / "triage-viewer-approvals.png"), full_page=True)
    assert page.problems == []
