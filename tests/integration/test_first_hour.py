"""A new user's first hour, followed step by step from what the proxy prints and what the README says:
start the proxy as `make run` does and read how to turn the dashboard on; start it again with an admin
token as the README shows; send the request the proxy printed under "try it" (with curl, as printed)
and get a 403; open the dashboard address it printed, log in with the token, and find the request on
the Blocked page with its reason."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import artifact_path, chromium_context, require_chromium
from tests.proxy_process import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
BLOCK_REASON = "policy_violation: Detected 'capsem_block' in prompt"


@dataclass
class Started:
    """A `capsem-proxy run` and what it printed."""

    process: subprocess.Popen[str]
    output: Path
    port: int

    def printed(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def banner_value(self, label: str) -> list[str]:
        """The lines of the banner row `label` (its value, then its continuation lines)."""
        lines = self.printed().splitlines()
        start = next(i for i, line in enumerate(lines) if re.match(rf"^  {re.escape(label)}\s{{2,}}\S", line))
        indent = len(lines[start]) - len(lines[start][len(label) + 2:].lstrip())
        values = [lines[start][indent:]]
        for line in lines[start + 1:]:
            if not line.startswith(" " * indent) or line[:indent].strip():
                break
            values.append(line[indent:])
        return values


def _run_command() -> list[str]:
    """What `make run` runs: the installed `capsem-proxy run` of this virtualenv."""
    script = Path(sys.executable).with_name("capsem-proxy")
    return [str(script), "run"] if script.exists() else [sys.executable, "-m", "capsem_proxy.cli", "run"]


@pytest.fixture
def start(fake_provider) -> Iterator:
    started: list[Started] = []
    workdir = Path(tempfile.mkdtemp(prefix="capsem-first-hour-"))  # a fresh checkout's ./capsem-data goes here

    def run(extra_env: dict[str, str]) -> Started:
        port = free_port()
        output = workdir / f"run-{len(started)}.log"
        env = {name: value for name, value in os.environ.items() if not name.startswith("CAPSEM_PROXY_")}
        # The port is the only setting the user would not give: 8000 may be taken on a shared machine.
        # Providers point at the fake one, though the walk-through never reaches a provider.
        env.update({
            "CAPSEM_PROXY_SERVER__PORT": str(port),
            "CAPSEM_PROXY_OPENAI_BASE_URL": fake_provider.openai_base_url,
            "CAPSEM_PROXY_GEMINI_BASE_URL": fake_provider.base_url,
            "CAPSEM_PROXY_ANTHROPIC_BASE_URL": fake_provider.base_url,
            **extra_env,
        })
        with open(output, "w", encoding="utf-8") as sink:
            process = subprocess.Popen(_run_command(), stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=workdir,
                                       text=True)
        proxy = Started(process, output, port)
        started.append(proxy)
        deadline = time.monotonic() + 60
        while "read next" not in proxy.printed():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the proxy printed no banner:\n{proxy.printed()}")
            time.sleep(0.05)
        time.sleep(0.2)  # the last lines of the banner
        return proxy

    yield run
    for proxy in started:
        proxy.process.terminate()
        proxy.process.wait(timeout=15)
    shutil.rmtree(workdir, ignore_errors=True)


def test_from_make_run_to_a_blocked_request_in_the_dashboard(start, fake_provider):
    chromium = require_chromium()
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (the banner's example uses it)")

    # 1. `make run` with nothing set: the dashboard is off, and the banner says how to turn it on.
    plain = start({})
    admin = " ".join(plain.banner_value("admin API"))
    assert "set admin.token in the config, or CAPSEM_PROXY_ADMIN__TOKEN=<a long random string>" in admin
    assert "CAPSEM_PROXY_ADMIN__TOKEN" in README
    pointer = re.search(r'step by step: README\.md, "([^"]+)"', admin)
    assert pointer is not None and f"### {pointer.group(1)}\n" in README
    plain.process.terminate()
    plain.process.wait(timeout=15)

    # 2. As the README shows: a random token in CAPSEM_PROXY_ADMIN__TOKEN, then `make run`.
    token = secrets.token_urlsafe(24)
    proxy = start({"CAPSEM_PROXY_ADMIN__TOKEN": token})
    printed = proxy.printed()
    assert token not in printed
    dashboard_url = proxy.banner_value("dashboard")[0].split()[0]
    assert dashboard_url == f"http://127.0.0.1:{proxy.port}/dashboard"

    # 3. The request printed under "try it", run as printed: refused before it reaches any provider.
    try_it = proxy.banner_value("try it")
    command = try_it[0]
    assert "answers 403" in try_it[1]
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30, check=True)
    answer = json.loads(result.stdout)
    assert answer["detail"] == "Request blocked by security policy: Detected 'capsem_block' in prompt"
    assert fake_provider.requests() == []
    # The README shows the same request, for the default address.
    readme_curl = re.search(r"^curl -s http://127\.0\.0\.1:8000/v1/chat/completions.*?\}\]\}'$", README,
                            re.MULTILINE | re.DOTALL)
    assert readme_curl is not None
    assert " ".join(readme_curl.group(0).replace("\\\n", " ").split()) == " ".join(
        command.replace(f":{proxy.port}/", ":8000/").split()
    )

    # 4. The dashboard address it printed, the token, the Blocked page: the request and its reason.
    with chromium_context(chromium) as context:
        page = context.new_page()
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(dashboard_url)
        page.fill("#token", token)
        with page.expect_navigation():
            page.click("#login-form button[type=submit]")
        page.click("nav a[data-nav=blocked]")
        row = page.locator("#blocked-requests tbody tr", has_text=BLOCK_REASON)
        row.wait_for(timeout=8000)
        cells = row.inner_text()
        assert "403" in cells and "BLOCK" in cells and "gpt-4o-mini" in cells
        page.screenshot(path=str(artifact_path("first-hour-blocked.png")), full_page=True)
