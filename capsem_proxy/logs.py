"""The proxy's own logs: plain text or one JSON object per line, never a provider key.

`logging_config(settings)` is a `logging.config.dictConfig` dict (also uvicorn's `log_config`).
Every handler gets `SecretFilter`, a second line of defence behind the code's own care: a value
shaped like a provider key is masked before the line is written, whatever logged it.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from capsem_proxy.config import Settings

__all__ = ["REDACTED", "JsonFormatter", "SecretFilter", "logging_config", "looks_like_secret", "mask_secrets"]

REDACTED = "[REDACTED]"

# Shapes of provider credentials, kept broad on purpose: masking a harmless token in a log line
# costs nothing, letting a key through is what must not happen. Each pattern masks the whole
# match except the `keep` group (the header or parameter name, for context).
_SECRET_PATTERN = re.compile(
    r"(?:"
    r"\bsk-[A-Za-z0-9_\-]{12,}"  # OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-...) keys
    r"|\bAIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|(?P<bearer>\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}"  # Authorization: Bearer <token>
    r"|(?P<param>[?&](?:key|api_key|access_token)=)[^&\s\"'#]+"  # Gemini's ?key= and friends
    r"|(?P<header>\b(?:x-goog-api-key|x-api-key|api-key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]{8,}"
    r")",
    re.IGNORECASE,
)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's coloured copy of the message
}


def _mask(match: re.Match[str]) -> str:
    kept = match.group("bearer") or match.group("param") or match.group("header") or ""
    return kept + REDACTED


def looks_like_secret(text: str) -> bool:
    """True when `text` contains something shaped like a provider key or bearer token."""
    return _SECRET_PATTERN.search(text) is not None


def mask_secrets(text: str) -> str:
    """`text` with every key-shaped value replaced by `[REDACTED]`."""
    return _SECRET_PATTERN.sub(_mask, text)


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES}


class SecretFilter(logging.Filter):
    """Masks key-shaped values in a record's message, its `extra=` fields and its traceback.

    The record is still emitted (a log line that says something failed matters), with the value
    replaced by `[REDACTED]`.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET_PATTERN.search(message) is not None:
            record.msg, record.args = mask_secrets(message), None
        for key, value in _extra_fields(record).items():
            if isinstance(value, str) and _SECRET_PATTERN.search(value) is not None:
                setattr(record, key, mask_secrets(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then any `extra=` fields
    (request_id, tenant_id, decision_id, the access log's method, route, status ...)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict for the proxy and uvicorn: one stderr handler, JSON or
    text as `logging.json` says, at `server.log_level`, with `SecretFilter` on it."""
    level = settings.server.log_level.upper()
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if settings.logging.json_format else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"secrets": {"()": f"{__name__}.SecretFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["secrets"],
            }
        },
        # uvicorn's loggers keep no handlers of their own: everything goes through the root's one.
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
        },
        "root": {"handlers": ["default"], "level": level},
    }
