"""The start-up banner: what it says about listening, upstreams, policies, data and the admin API,
and that no secret (admin token, tenant secret, passwords in URLs, policy options) ever shows."""

from __future__ import annotations

import io
import socket
import threading

import pytest

from capsem_proxy.banner import announce_when_listening, mask_url, render_banner, startup_facts
from capsem_proxy.config import Settings

SECRETS = ("admin-token-never-shown-0123", "tenant-secret-never-shown", "pg-password-never-shown",
           "redis-password-never-shown", "AIzaNeverShownKey0123456789abcdef", "sk-live-allowed-value-never-shown")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://capsem:s3cret@db.internal:5432/audit?schema=team", "postgresql://capsem:[REDACTED]@db.internal:5432/audit?schema=team"),
        ("postgresql://capsem@db:5432/audit?password=s3cret&sslmode=require", "postgresql://capsem@db:5432/audit?password=[REDACTED]&sslmode=require"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:[REDACTED]@127.0.0.1:6379/0"),
        ("rediss://default:s3cret@cache:6380/1", "rediss://default:[REDACTED]@cache:6380/1"),
        ("https://ghp_token0123456789@mirror.example/v1", "https://[REDACTED]@mirror.example/v1"),
        ("https://generativelanguage.googleapis.com?key=AIzaSecret", "https://generativelanguage.googleapis.com?key=[REDACTED]"),
        ("https://collector.example/v1/traces?api_token=abc&region=eu", "https://collector.example/v1/traces?api_token=[REDACTED]&region=eu"),
        ("sqlite:///./capsem-data/audit.db", "sqlite:///./capsem-data/audit.db"),
        ("memory://", "memory://"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ],
)
def test_credentials_in_urls_are_masked(url, masked):
    assert mask_url(url) == masked


@pytest.fixture
def rich_settings(tmp_path) -> Settings:
    return Settings(
        server={"data_dir": tmp_path / "data", "tenant_secret": SECRETS[1]},
        providers={
            "openai": {"base_url": "https://api.openai.com/v1"},
            "gemini": {"base_url": f"https://gemini.internal?key={SECRETS[4]}"},
            "anthropic": {"base_url": "https://api.anthropic.com"},
        },
        policies=[
            {"class": "secrets", "options": {"allow": [SECRETS[5]]}},
            {"class": "rego", "options": {"policy_file": "./examples/guard.rego"}, "hooks": ["on_model_call"]},
            {"class": "mypackage.policies.Strict", "fail_open": True, "name": "strict"},
        ],
        policy_sets=[{"match": {"providers": ["openai"], "models": ["gpt-4*"]}, "inherit": True,
                      "policies": [{"class": "injection"}]}],
        audit={"url": f"postgresql://capsem:{SECRETS[2]}@127.0.0.1:5432/test", "store_content": True},
        confirm={"store_url": f"redis://:{SECRETS[3]}@127.0.0.1:6379/0"},
        admin={"token": SECRETS[0]},
        tracing={"enabled": True, "otlp_endpoint": "http://127.0.0.1:4318/v1/traces"},
    )


def test_the_banner_says_what_runs_and_where_data_goes_without_a_secret(rich_settings, tmp_path):
    text = render_banner(startup_facts(rich_settings, "0.0.0.0", 9000, 4))
    for secret in SECRETS:
        assert secret not in text
    lines = text.splitlines()
    assert lines[0].startswith("capsem-proxy ") and lines[0].endswith(
        "is listening on http://127.0.0.1:9000 (bound to 0.0.0.0), 4 workers"
    )
    words = " ".join(text.split())
    for expected in (
        "OpenAI http://127.0.0.1:9000/v1; Anthropic and Gemini http://127.0.0.1:9000",
        "openai     https://api.openai.com/v1",
        "gemini     https://gemini.internal?key=[REDACTED]",
        "secrets: API keys, tokens, private keys, connection strings",
        "rego: rules in ./examples/guard.rego [hooks: on_model_call]",
        "strict (mypackage.policies.Strict) [fails open]",
        "1. providers openai; models gpt-4*: the defaults, then injection",
        f"{(tmp_path / 'data').resolve()}",
        "audit trail    postgresql://capsem:[REDACTED]@127.0.0.1:5432/test; prompts and answers too",
        "tenant secret  server.tenant_secret (set in the configuration)",
        "approvals      redis://:[REDACTED]@127.0.0.1:6379/0",
        "admin API      http://127.0.0.1:9000/admin/ (Authorization: Bearer <admin.token>)",
        "dashboard      http://127.0.0.1:9000/dashboard (log in with admin.token)",
        "traces         OTLP to http://127.0.0.1:4318/v1/traces",
        "docs/observability.md (audit trail, admin API, dashboard, metrics)",
    ):
        assert " ".join(expected.split()) in words, expected
    # Without the debug policy there is no capsem_block example to try.
    assert "try it" not in text


def test_the_default_banner_says_how_to_turn_the_dashboard_on_and_what_to_try(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where `make run` keeps ./capsem-data
    settings = Settings()
    text = render_banner(startup_facts(settings, "127.0.0.1", 8000, 1))
    assert "is listening on http://127.0.0.1:8000, 1 worker" in text.splitlines()[0]
    assert "debug: blocks prompts and tool names containing capsem_block" in text
    assert "off, and so is the dashboard: set admin.token in the config, or" in text
    assert "CAPSEM_PROXY_ADMIN__TOKEN=<a long random string>, to turn on /admin/ and /dashboard" in text
    assert f"{(tmp_path / 'capsem-data').resolve() / 'audit.db'}; metadata only, no content" in text
    assert f"{(tmp_path / 'capsem-data').resolve() / 'tenant-secret'}" in text
    assert "curl -s http://127.0.0.1:8000/v1/chat/completions -H 'authorization: Bearer sk-test'" in text
    assert "README.md (start here" in text


def test_an_ipv6_wildcard_is_shown_as_loopback():
    text = render_banner(startup_facts(Settings(), "::", 8000, 1))
    assert "is listening on http://[::1]:8000 (bound to ::)" in text


def test_the_banner_waits_for_the_port_to_listen_then_prints_once():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = io.StringIO()
    thread = announce_when_listening(Settings(), "127.0.0.1", port, 1, stream=out)
    assert thread is not None
    thread.join(timeout=0.3)
    assert out.getvalue() == ""  # nothing listens yet
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert out.getvalue().count("is listening on") == 1
        # Another proxy on an occupied port prints nothing: uvicorn will refuse to bind.
        assert announce_when_listening(Settings(), "127.0.0.1", port, 1, stream=io.StringIO()) is None


def test_no_thread_outlives_the_banner():
    assert all(thread.name != "capsem-proxy-banner" or not thread.is_alive() for thread in threading.enumerate())


def test_a_named_host_is_shown_as_given():
    text = render_banner(startup_facts(Settings(), "::1", 8000, 1))
    assert text.splitlines()[0].endswith("is listening on http://[::1]:8000, 1 worker")
