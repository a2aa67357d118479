"""Settings: YAML plus environment (env wins), validated with messages naming the key."""

import pytest

from capsem_proxy.config import ConfigError, load_settings
from capsem_proxy.config_template import render_config_template


def test_defaults_match_the_product_contract(monkeypatch):
    for name in ("CAPSEM_PROXY_CONFIG", "CAPSEM_PROXY_OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert settings.server.max_body_bytes == 32 * 1024 * 1024
    assert settings.providers.openai.base_url == "https://api.openai.com/v1"
    assert settings.providers.gemini.base_url == "https://generativelanguage.googleapis.com"
    assert settings.providers.anthropic.base_url == "https://api.anthropic.com"
    assert settings.policies[0].class_path == "capsem.policies.debug_policy.DebugPolicy"
    assert settings.streaming.mode == "guard"
    assert settings.admin.token is None
    assert settings.cors.allow_origins == []


def test_env_wins_over_file(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("server: {port: 9001, max_body_bytes: 4096}\nproviders: {openai: {read_timeout: 5}}\n")
    monkeypatch.setenv("CAPSEM_PROXY_SERVER__PORT", "9002")
    monkeypatch.setenv("CAPSEM_PROXY_OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    settings = load_settings(path)
    assert settings.server.port == 9002
    assert settings.server.max_body_bytes == 4096
    assert settings.providers.openai.read_timeout == 5
    assert settings.providers.openai.base_url == "http://127.0.0.1:1/v1"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("server: {port: not-a-number}", "server.port"),
        ("providers: {openai: {base_url: ftp://x}}", "providers.openai.base_url"),
        ("server: {unknown_key: 1}", "server.unknown_key"),
        ("streaming: {mode: sometimes}", "streaming.mode"),
        ("server: {max_tools_per_request: 65537}", "server.max_tools_per_request"),  # above the hard limit
    ],
)
def test_bad_values_name_their_key(tmp_path, text, key):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert key in str(error.value)
    assert str(path) in str(error.value)


def test_wildcard_origin_with_credentials_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cors: {allow_origins: ['*'], allow_credentials: true}")
    with pytest.raises(ConfigError, match="allow_credentials"):
        load_settings(path)


def test_not_yaml_is_a_clear_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


def test_generated_template_loads_back_to_the_defaults(tmp_path):
    path = tmp_path / "generated.yaml"
    path.write_text(render_config_template())
    assert load_settings(path).model_dump() == load_settings().model_dump()


def test_yaml_anchors_shared_between_providers_stay_separate(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSEM_PROXY_OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    path = tmp_path / "c.yaml"
    path.write_text("providers:\n  openai: &t {read_timeout: 5}\n  gemini: *t\n  anthropic: *t\n")
    settings = load_settings(path)
    assert settings.providers.openai.base_url == "http://127.0.0.1:1/v1"
    assert settings.providers.gemini.base_url == "https://generativelanguage.googleapis.com"
    assert settings.providers.gemini.read_timeout == 5
