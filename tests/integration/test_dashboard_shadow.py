"""The dashboard in a real headless Chromium shows what a shadow policy would have done: its decision
carries its verdict with a `shadow` badge, while the request itself went through (200, ALLOW).
Saves a screenshot for people to look at."""

from __future__ import annotations

import httpx
import pytest

from tests.browser import artifact_path, chromium_context, require_chromium
from tests.proxy_process import start_proxy

ADMIN_TOKEN = "admin-token-for-the-shadow-view-01"
LIVE_WAIT_MS = 5000


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def shadow_dashboard_proxy(chromium, fake_provider):
    config = {
        "admin": {"token": ADMIN_TOKEN},
        "policies": [{"class": "capsem.policies.debug_policy.DebugPolicy", "shadow": True}],
    }
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


def test_a_shadow_decision_shows_what_it_would_have_done_with_a_badge(shadow_dashboard_proxy, chromium):
    proxy = shadow_dashboard_proxy
    response = httpx.post(f"{proxy.base_url}/v1/chat/completions", timeout=30,
                          headers={"authorization": "Bearer sk-shadow-dashboard"},
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "capsem_block it"}]})
    assert response.status_code == 200
    request_id = response.headers["x-capsem-request-id"]
    with chromium_context(chromium) as context:
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{proxy.base_url}/dashboard")
        page.fill("#token", ADMIN_TOKEN)
        with page.expect_navigation():
            page.click("#login-form button[type=submit]")
        page.wait_for_selector("#live-requests", state="visible")
        row = page.locator("#live-decisions tbody tr", has_text="capsem_block").first
        row.wait_for(timeout=LIVE_WAIT_MS)
        verdict = row.locator("td.verdict")
        assert verdict.inner_text().startswith("BLOCK")
        assert verdict.locator(".badge-shadow").inner_text().lower() == "shadow"
        assert "verdict-shadow" in verdict.get_attribute("class")
        assert "not enforced" in verdict.get_attribute("title")
        request_row = page.locator(f"#live-requests tbody tr[data-request-id='{request_id}']")
        request_row.wait_for(timeout=LIVE_WAIT_MS)
        assert "200" in request_row.inner_text() and "ALLOW" in request_row.inner_text()
        screenshot = artifact_path("dashboard-shadow.png")
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
        assert problems == []
