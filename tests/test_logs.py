"""The proxy's log configuration: JSON lines or text, extra fields, and key-shaped values masked
whatever logged them."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest

from capsem_proxy.config import Settings
from capsem_proxy.logs import REDACTED, logging_config, looks_like_secret, mask_secrets

OPENAI_KEY = "sk-proj-" + "Qw3rTy7" * 7
ANTHROPIC_KEY = "sk-ant-api03-" + "Zx8_Yw-" * 12
GOOGLE_KEY = "AIzaSyD" + "a1B2c3D4e5" * 3 + "xyzab"


@pytest.fixture
def configure() -> Iterator:
    """Apply a logging configuration with its handler writing to a buffer; restore afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    saved_loggers = {name: (logger.handlers[:], logger.level, logger.propagate)
                     for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
                     if (logger := logging.getLogger(name))}
    buffer = io.StringIO()

    def apply(settings: Settings) -> io.StringIO:
        config = logging_config(settings)
        config["handlers"]["default"]["stream"] = buffer
        logging.config.dictConfig(config)
        return buffer

    yield apply
    root.handlers[:], root.level = saved
    for name, (handlers, level, propagate) in saved_loggers.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def _lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_mode_writes_one_object_per_line_with_extra_fields(configure) -> None:
    buffer = configure(Settings(logging={"json": True}))
    logger = logging.getLogger("capsem_proxy")
    logger.info("request %s blocked", "r-1", extra={"request_id": "r-1", "tenant_id": "t-9", "decision_id": "d-3"})
    logger.warning("multi\nline")
    first, second = _lines(buffer)
    assert first["message"] == "request r-1 blocked"
    assert first["level"] == "INFO"
    assert first["logger"] == "capsem_proxy"
    assert first["time"].endswith("+00:00")
    assert (first["request_id"], first["tenant_id"], first["decision_id"]) == ("r-1", "t-9", "d-3")
    assert second["message"] == "multi\nline"
    assert "request_id" not in second


def test_json_access_line_carries_its_fields(configure) -> None:
    buffer = configure(Settings(logging={"json": True}))
    logging.getLogger("capsem_proxy.access").info(
        "%s %s %r %d %.1fms", "r-2", "POST", "/v1/messages", 200, 3.25,
        extra={"request_id": "r-2", "method": "POST", "route": "/v1/messages", "status": 200, "latency_ms": 3.25,
               "tenant_id": "t-1"},
    )
    (line,) = _lines(buffer)
    assert {key: line[key] for key in ("request_id", "method", "route", "status", "latency_ms", "tenant_id")} == {
        "request_id": "r-2", "method": "POST", "route": "/v1/messages", "status": 200, "latency_ms": 3.25,
        "tenant_id": "t-1",
    }


def test_json_mode_includes_the_traceback(configure) -> None:
    buffer = configure(Settings(logging={"json": True}))
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("capsem_proxy").exception("request failed", extra={"request_id": "r-5"})
    (line,) = _lines(buffer)
    assert line["message"] == "request failed"
    assert "ValueError: boom" in line["exc_info"]


def test_text_mode_is_one_plain_line(configure) -> None:
    buffer = configure(Settings())
    logging.getLogger("capsem_proxy").warning("audit store slow", extra={"request_id": "r-7"})
    text = buffer.getvalue()
    assert text.count("\n") == 1
    assert text.rstrip().endswith("WARNING capsem_proxy: audit store slow")
    assert not text.startswith("{")


def test_level_comes_from_the_server_settings(configure) -> None:
    buffer = configure(Settings(server={"log_level": "warning"}, logging={"json": True}))
    logging.getLogger("capsem_proxy").info("hidden")
    logging.getLogger("uvicorn.error").warning("shown")
    assert [line["message"] for line in _lines(buffer)] == ["shown"]


@pytest.mark.parametrize("json_format", [True, False])
def test_keys_are_masked_in_messages_arguments_extras_and_tracebacks(configure, json_format: bool) -> None:
    buffer = configure(Settings(logging={"json": json_format}))
    logger = logging.getLogger("capsem_proxy")
    logger.info("upstream said: invalid key %s", OPENAI_KEY)
    logger.info(f"header x-api-key: {ANTHROPIC_KEY}")
    logger.info("GET /v1beta/models?key=%s&alt=sse", GOOGLE_KEY, extra={"route": f"/v1beta/models?key={GOOGLE_KEY}"})
    logger.info("auth", extra={"authorization": "Bearer abcdefghijklmnop0123"})
    try:
        raise RuntimeError(f"connect failed for {OPENAI_KEY}")
    except RuntimeError:
        logger.exception("upstream error")
    text = buffer.getvalue()
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, "abcdefghijklmnop0123"):
        assert secret not in text
    # Text lines leave the extra fields out; JSON lines carry them, masked too.
    assert text.count(REDACTED) == (6 if json_format else 4)
    assert "upstream said: invalid key [REDACTED]" in text
    assert "upstream error" in text  # the line is kept, only the value is masked


def test_secret_shapes() -> None:
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, "sk-LEAKCHECK-0123456789abcdef", "Bearer eyJhbGciOiJIUzI1"):
        assert looks_like_secret(f"value: {secret}"), secret
    for harmless in ("gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "/v1/chat/completions",
                     "task-1234", "risk-assessment", "s-4f2a9c0e1b7d3e5f6a8b", "t-5f1c0a9b8e7d6c5b"):
        assert not looks_like_secret(harmless), harmless
    assert mask_secrets("url?alt=sse&key=AIzaXYZ123&x=1") == "url?alt=sse&key=[REDACTED]&x=1"
    assert mask_secrets("Authorization: Bearer tok_0123456789") == "Authorization: Bearer [REDACTED]"
