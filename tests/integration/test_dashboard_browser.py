"""The dashboard in a real headless Chromium against a real proxy: refused without the admin token,
usable after logging in with it, showing a request the test has just had blocked (live table, reason,
session timeline), drawing its charts from the vendored library, and approving a held request, all
without a script error or a Content-Security-Policy violation. Saves a screenshot for people to look at."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import openai
import pytest

from tests.browser import artifact_path, chromium_context, require_chromium
from tests.proxy_process import start_proxy

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "admin-token-for-the-browser-0123"
KEY = "sk-dashboard-browser-tenant"
SESSION = "browser-session-0001"
BLOCK_DETAILS = "Detected 'capsem_block' in prompt"
LIVE_WAIT_MS = 5000  # the page polls every 1.5 s


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def dashboard_proxy(chromium, fake_provider):
    config = {
        "admin": {"token": ADMIN_TOKEN},
        "policies": [
            {"class": "capsem.policies.debug_policy.DebugPolicy"},
            {"class": "tests.integration.policies.ConfirmPolicy"},
        ],
    }
    process = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    yield process
    process.stop()


@pytest.fixture
def page(chromium):
    with chromium_context(chromium) as context:
        page = context.new_page()
        page.problems = []  # script errors and CSP violations seen by the page
        page.refused = []  # answers >= 400 the page received (Chromium reports them as console errors too)
        page.on("console", lambda message: message.type == "error" and _note_console_error(page, message.text))
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.on("response", lambda response: response.status >= 400 and page.refused.append(response.url))
        yield page


def _note_console_error(page, text: str) -> None:
    if not text.startswith("Failed to load resource"):
        page.problems.append(text)


def _openai(proxy) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=KEY, base_url=f"{proxy.base_url}/v1", max_retries=0,
        default_headers={"x-capsem-session-id": SESSION, "x-capsem-agent-id": "browser-agent"},
    )


def _log_in(page, proxy) -> None:
    page.goto(f"{proxy.base_url}/dashboard")
    page.fill("#token", ADMIN_TOKEN)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    page.wait_for_selector("#live-requests", state="visible")


def test_dashboard_refuses_without_the_token(dashboard_proxy, page):
    with pytest.raises(openai.PermissionDeniedError):
        _openai(dashboard_proxy).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "capsem_block before login"}]
        )
    response = page.goto(f"{dashboard_proxy.base_url}/dashboard")
    assert response.status == 401
    assert page.locator("#login-form").is_visible()
    assert page.locator("#live-requests").count() == 0
    html = page.content()
    assert SESSION not in html and "capsem_block" not in html
    for path in ("/admin/requests", "/admin/decisions", "/dashboard/static/app.js"):
        assert page.evaluate("path => fetch(path).then(r => r.status)", path) == 401
    assert page.request.get(f"{dashboard_proxy.base_url}/admin/requests").status == 401

    page.fill("#token", "not-the-token")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:text('Wrong token.')")
    assert page.context.cookies() == []
    assert page.problems == []


def test_dashboard_shows_a_blocked_request_live_and_its_session(dashboard_proxy, page):
    _log_in(page, dashboard_proxy)
    cookies = page.context.cookies()
    assert [cookie["name"] for cookie in cookies] == ["capsem_admin_session"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict" and ADMIN_TOKEN not in cookies[0]["value"]

    client = _openai(dashboard_proxy)
    with pytest.raises(openai.PermissionDeniedError) as blocked:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "please capsem_block this, browser"}]
        )
    request_id = blocked.value.response.headers["x-capsem-request-id"]

    # Decisions are recorded as they are taken, the request row once it is over: both appear live.
    decision_row = page.locator("#live-decisions tbody tr", has_text=BLOCK_DETAILS).first
    decision_row.wait_for(timeout=LIVE_WAIT_MS)
    assert "BLOCK" in decision_row.inner_text()
    request_row = page.locator(f"#live-requests tbody tr[data-request-id='{request_id}']")
    request_row.wait_for(timeout=LIVE_WAIT_MS)
    row_text = request_row.inner_text()
    assert "BLOCK" in row_text and "403" in row_text and "policy_violation" in row_text

    screenshot = artifact_path("dashboard.png")
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000

    request_row.locator("a", has_text=SESSION[:12]).click()
    page.wait_for_url(re.compile(f"#session/{SESSION}$"))
    timeline = page.locator("#session-timeline tbody")
    of_this_request = f":has(a[title='{request_id}'])"
    timeline.locator(f"tr.timeline-decision{of_this_request}", has_text=BLOCK_DETAILS).wait_for(timeout=LIVE_WAIT_MS)
    assert page.locator("#session-title").inner_text() == SESSION
    assert "403" in timeline.locator(f"tr.timeline-request{of_this_request}").inner_text()

    page.click("nav a[data-nav=blocked]")
    page.locator(f"#blocked-requests tbody tr[data-request-id='{request_id}']").wait_for(timeout=LIVE_WAIT_MS)
    page.locator("#blocked-decisions tbody tr", has_text=BLOCK_DETAILS).first.wait_for(timeout=LIVE_WAIT_MS)

    page.click("nav a[data-nav=overview]")
    page.locator("#chart-latency canvas").wait_for(timeout=LIVE_WAIT_MS)
    page.locator("#top-policies tbody tr", has_text="BLOCK").first.wait_for(timeout=LIVE_WAIT_MS)
    assert int(page.locator("#stat-blocked").inner_text()) >= 1
    page.screenshot(path=str(artifact_path("dashboard-overview.png")), full_page=True)
    assert page.problems == []
    assert page.refused == [f"{dashboard_proxy.base_url}/dashboard"]  # only the login page, before logging in


def test_dashboard_approves_a_held_request(dashboard_proxy, page):
    held = httpx.post(
        f"{dashboard_proxy.base_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "please transfer money to Bob"}]},
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert held.status_code == 403
    decision_id = held.headers["x-capsem-decision-id"]

    _log_in(page, dashboard_proxy)
    page.click("nav a[data-nav=approvals]")
    row = page.locator("#approvals tbody tr", has_text="money transfer")
    row.wait_for(timeout=LIVE_WAIT_MS)
    row.locator("button.approve").click()
    page.wait_for_selector(f"#status:text('decision {decision_id[:12]} approved')", timeout=LIVE_WAIT_MS)
    state = httpx.get(
        f"{dashboard_proxy.base_url}/admin/approvals/{decision_id}",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    ).json()
    assert state["status"] == "approved"
    assert page.problems == []
