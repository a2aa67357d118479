"""Admin roles in the dashboard, in a real headless Chromium: a JWT with the viewer role logs in and
sees held requests without Approve or Deny (its session cannot approve either); the operator's page
shows them. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import json
from pathlib import Path
from tempfile import mkdtemp

import httpx
import pytest

from tests.browser import REPO_ROOT, chromium_context, require_chromium
from tests.integration.gateway_helpers import create_key, start_gateway
from tests.integration.test_gateway_jwt import AUDIENCE, ISSUER, JWKS, token

WAIT_MS = 8000


@pytest.fixture(scope="module")
def held(fake_provider):
    require_chromium()
    jwks = Path(mkdtemp(prefix="capsem-jwks-")) / "jwks.json"
    jwks.write_text(json.dumps(JWKS))
    proxy = start_gateway(fake_provider, {
        "auth": {"mode": "gateway", "jwt": {"jwks_file": str(jwks), "issuer": ISSUER, "audience": AUDIENCE}},
        "policies": [{"class": "tests.integration.policies.ConfirmPolicy"}],
    }, env={"PYTHONPATH": str(REPO_ROOT)})
    key = create_key(proxy, tenant="team-held")["key"]
    answer = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=10,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "please transfer money to Bob"}]},
    )
    assert answer.status_code == 403
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_the_dashboard_shows_writes_by_role(held, role, tmp_path):
    with chromium_context(require_chromium()) as context:
        page = context.new_page()
        page.goto(f"{held.base_url}/dashboard")
        page.fill("#token", token(roles=[role]))
        with page.expect_navigation():
            page.click("#login-form button[type=submit]")
        page.wait_for_selector("#live-requests", state="visible")
        assert page.evaluate("fetch('/admin/whoami').then(r => r.json())") == {"role": role}
        page.click("nav a[data-nav=approvals]")
        row = page.locator("#approvals tbody tr", has_text="money transfer")
        row.wait_for(timeout=WAIT_MS)
        page.wait_for_function(f"document.body.dataset.role === '{role}'", timeout=WAIT_MS)
        buttons_shown = row.locator("button.approve").is_visible() and row.locator("button.deny").is_visible()
        assert buttons_shown == (role == "operator")
        tenant = page.locator("#approvals tbody tr", has_text="team-held")
        assert tenant.count() >= 1
        page.screenshot(path=str(tmp_path / f"gateway-{role}-approvals.png"), full_page=True)
        if role == "viewer":
            status = page.evaluate(
                "fetch('/admin/approvals/nope/approve', {method: 'POST', headers: {'x-capsem-admin': '1'}})"
                ".then(r => r.status)"
            )
            assert status == 403
