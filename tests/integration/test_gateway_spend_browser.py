"""Spend and tenant names in the dashboard, against a real proxy in `auth.mode: both` and a real
headless Chromium: a gateway key's requests are summed per tenant and model with their tokens and
their cost (under a price set in the config); the request tables name a gateway tenant whole and a
provider-key tenant by its shortened hash. A viewer (a JWT with that role) may read all of it.
Screenshots go to the test's tmp dir."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from tempfile import mkdtemp

import httpx
import openai
import pytest

from tests.browser import chromium_context, require_chromium
from tests.integration.gateway_helpers import ADMIN_TOKEN, admin, create_key, start_gateway
from tests.integration.test_gateway_jwt import AUDIENCE, ISSUER, JWKS, token
from tests.proxy_process import start_proxy

WAIT_MS = 8000
TENANT = "team-spend-ui"
MODEL = "priced-chat-model"
PRICE_IN, PRICE_OUT = 1000.0, 3000.0  # USD per 1M tokens: a few tokens cost a readable amount
PROVIDER_KEY = "sk-spend-ui-passthrough-0123456789"


def usd(value: float) -> str:
    """What the dashboard writes: cents from a dollar up, else up to four decimals (at least two)."""
    if value >= 1:
        return f"${value:,.2f}"
    text = f"{value:.4f}".rstrip("0")
    return "$" + (text + "0" * (2 - len(text.split(".")[1])))


@pytest.fixture(scope="module")
def spent(fake_provider):
    jwks = Path(mkdtemp(prefix="capsem-jwks-")) / "jwks.json"
    jwks.write_text(json.dumps(JWKS))
    proxy = start_gateway(fake_provider, {
        "auth": {"mode": "both", "jwt": {"jwks_file": str(jwks), "issuer": ISSUER, "audience": AUDIENCE}},
        "limits": {"prices": {"priced-*": {"input": PRICE_IN, "output": PRICE_OUT}}},
    })
    made = create_key(proxy, tenant=TENANT, models=["priced-*"])
    key = made["key"]
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=key, max_retries=0, timeout=10)
    tokens_in = tokens_out = 0
    request_ids = []
    for turn in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": f"how much is this, turn {turn}?"}]
        )
        usage = raw.parse().usage
        tokens_in += usage.prompt_tokens
        tokens_out += usage.completion_tokens
        request_ids.append(raw.headers["x-capsem-request-id"])
    own = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=PROVIDER_KEY, max_retries=0, timeout=10)
    own_raw = own.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "my own key"}]
    )
    passthrough = own_raw.headers["x-capsem-request-id"]
    own_tokens_in = own_raw.parse().usage.prompt_tokens
    deadline = time.monotonic() + 10
    while True:
        rows = admin(proxy, "GET", "/admin/requests").json()["requests"]
        if len(rows) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(rows) == 4
    cost = round(tokens_in * PRICE_IN / 1e6 + tokens_out * PRICE_OUT / 1e6, 6)
    yield {"proxy": proxy, "tokens_in": tokens_in, "tokens_out": tokens_out, "cost": cost,
           "gateway_ids": request_ids, "passthrough_id": passthrough, "key_id": made["id"],
           "own_tokens_in": own_tokens_in}
    proxy.stop()


def test_admin_requests_name_a_gateway_tenant(spent):
    """A gateway key's requests are recorded under its tenant's name; a provider key's under a hash
    of it (never the key); the tenant filter takes the name."""
    proxy = spent["proxy"]
    rows = {row["request_id"]: row for row in admin(proxy, "GET", "/admin/requests").json()["requests"]}
    assert {rows[request_id]["tenant_id"] for request_id in spent["gateway_ids"]} == {TENANT}
    hashed = rows[spent["passthrough_id"]]["tenant_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", hashed) and PROVIDER_KEY not in json.dumps(rows)
    named = admin(proxy, "GET", f"/admin/requests?tenant={TENANT}").json()["requests"]
    assert sorted(row["request_id"] for row in named) == sorted(spent["gateway_ids"])
    one = admin(proxy, "GET", f"/admin/requests/{spent['gateway_ids'][0]}").json()["request"]
    assert one["tenant_id"] == TENANT


def test_spend_route_matches_the_usage(spent):
    answer = admin(spent["proxy"], "GET", "/admin/spend?group_by=tenant&since=1h").json()
    row = next(row for row in answer["rows"] if row["group"] == TENANT)
    assert (row["requests"], row["input_tokens"], row["output_tokens"]) == (3, spent["tokens_in"], spent["tokens_out"])
    assert row["cost_usd"] == pytest.approx(spent["cost"], abs=1e-6)


def _login(page, base_url: str, role: str, credential: str | None = None) -> None:
    page.goto(f"{base_url}/dashboard")
    page.fill("#token", credential or token(roles=[role]))
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    page.wait_for_selector("#live-requests", state="visible")


def test_the_spend_view_shows_tenant_tokens_and_cost(spent, tmp_path):
    proxy = spent["proxy"]
    with chromium_context(require_chromium(), timezone_id="UTC", locale="de-DE") as context:
        page = context.new_page()
        _login(page, proxy.base_url, "viewer")
        page.click("nav a[data-nav=spend]")
        row = page.locator("#spend tbody tr", has_text=TENANT)
        row.wait_for(timeout=WAIT_MS)
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == TENANT
        assert cells[1:5] == ["3", f"{spent['tokens_in']:,}", f"{spent['tokens_out']:,}", usd(spent["cost"])]
        assert cells[5].endswith(" %")
        assert page.locator("#spend-title").inner_text() == "Spend in the last 24 hours"
        assert re.match(r"Hourly totals from \d{4}-\d\d-\d\d \d\d:00:00 \(UTC\+00:00\) to now",
                        page.locator("#spend-window").inner_text())
        # The time range picker of the other views, without its live tail: 24 hours is what is shown.
        assert page.locator("#f-range").input_value() == "24h"
        assert page.locator("#f-verdict").is_hidden() and page.locator("#f-to").is_hidden()
        page.screenshot(path=str(tmp_path / "spend-by-tenant.png"), full_page=True)

        page.select_option("#spend-group", "model")
        model_row = page.locator("#spend tbody tr", has_text=MODEL)
        model_row.wait_for(timeout=WAIT_MS)
        assert model_row.locator("td").all_inner_texts()[4] == usd(spent["cost"])
        assert page.locator("#spend-group-title").inner_text() == "model"
        # The totals cover the request on the caller's own provider key too.
        total = admin(proxy, "GET", "/admin/spend?group_by=model&since=24h").json()["total"]
        assert total["input_tokens"] == spent["tokens_in"] + spent["own_tokens_in"]
        assert page.locator("#spend-cost").inner_text() == usd(total["cost_usd"])
        assert page.locator("#spend-input").inner_text() == f"{total['input_tokens']:,}"

        page.select_option("#spend-group", "key")
        key_row = page.locator("#spend tbody tr", has_text=spent["key_id"])
        key_row.wait_for(timeout=WAIT_MS)
        assert TENANT in key_row.locator("td").first.inner_text()
        assert key_row.locator("td").all_inner_texts()[1:3] == ["3", f"{spent['tokens_in']:,}"]

        page.select_option("#spend-group", "model")
        page.locator("#spend tbody tr", has_text=MODEL).wait_for(timeout=WAIT_MS)
        page.select_option("#f-range", "1h")
        page.wait_for_function("document.getElementById('spend-title').textContent === 'Spend in the last hour'",
                               timeout=WAIT_MS)
        assert "#spend?range=1h" in page.url
        page.locator("#spend tbody tr", has_text=MODEL).wait_for(timeout=WAIT_MS)
        page.screenshot(path=str(tmp_path / "spend-by-model.png"), full_page=True)


def test_dollars_read_as_people_write_them(spent):
    with chromium_context(require_chromium()) as context:
        page = context.new_page()
        _login(page, spent["proxy"].base_url, "viewer")
        written = page.evaluate("[1234.5, 1, 0.5, 0.12345, 0.00012, 0.00001, 0].map((value) => Format.usd(value))")
        assert written == ["$1,234.50", "$1.00", "$0.50", "$0.1235", "$0.0001", "< $0.0001", "$0.00"]


def test_request_tables_show_gateway_tenants_whole_and_hashes_short(spent, tmp_path):
    proxy = spent["proxy"]
    rows = {row["request_id"]: row for row in admin(proxy, "GET", "/admin/requests").json()["requests"]}
    hashed = rows[spent["passthrough_id"]]["tenant_id"]
    with chromium_context(require_chromium()) as context:
        page = context.new_page()
        _login(page, proxy.base_url, "viewer")
        gateway_row = page.locator(f"#live-requests tr[data-request-id='{spent['gateway_ids'][0]}']")
        gateway_row.wait_for(timeout=WAIT_MS)
        assert gateway_row.locator("td").nth(1).inner_text() == TENANT
        own_row = page.locator(f"#live-requests tr[data-request-id='{spent['passthrough_id']}']")
        tenant_cell = own_row.locator("td").nth(1)
        assert tenant_cell.inner_text() == hashed[:12]
        assert tenant_cell.locator("a").get_attribute("title") == hashed
        page.screenshot(path=str(tmp_path / "gateway-tenants-live.png"), full_page=True)


def test_spend_needs_no_admin_role_and_refuses_writes(spent):
    viewer = {"authorization": f"Bearer {token(roles=['viewer'])}"}
    base = spent["proxy"].base_url
    assert httpx.get(base + "/admin/spend", headers=viewer, timeout=10).status_code == 200
    assert httpx.post(base + "/admin/spend", headers=viewer, timeout=10).status_code == 403


def test_the_spend_page_says_when_nothing_records_spend(fake_provider, tmp_path):
    proxy = start_proxy(fake_provider.base_url, {"admin": {"token": ADMIN_TOKEN}})
    try:
        with chromium_context(require_chromium()) as context:
            page = context.new_page()
            _login(page, proxy.base_url, "admin", ADMIN_TOKEN)
            page.click("nav a[data-nav=spend]")
            empty = page.locator("#spend td.empty", has_text="only when the gateway is on")
            empty.wait_for(timeout=WAIT_MS)
            assert page.locator("#spend-cost").inner_text() == "-"
            assert "error" not in (page.locator("#status").get_attribute("class") or "")
            page.screenshot(path=str(tmp_path / "spend-without-gateway.png"), full_page=True)
    finally:
        proxy.stop()
