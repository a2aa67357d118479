"""Optional dependencies, installed as extras (`pip install 'capsem-proxy[postgres]'`).

The core install runs the proxy with the built-in defaults (SQLite audit, in-memory limits and
approvals, the default policies). A backend or policy that needs more imports it only where the
configuration asks for it; when that import fails, start-up stops with one line naming the extra
to install instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from capsem_proxy.config import ConfigError

__all__ = ["EXTRA_MODULES", "missing_extra", "needs_extra", "needs_extra_message"]

# Top-level modules the extras provide, and the extra that provides each (pyproject.toml's
# [project.optional-dependencies]; a test keeps the two in step).
EXTRA_MODULES: dict[str, str] = {
    "asyncpg": "postgres",
    "redis": "redis",
    "opentelemetry": "otel",
    "regex": "detectors",
    "numpy": "detectors",
    "phonenumbers": "detectors",
    "spacy": "ner",
    "regopy": "rego",
}


def missing_extra(exc: BaseException) -> str | None:
    """The extra whose module `exc` (or an error it was raised from) could not import, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError) and current.name:
            extra = EXTRA_MODULES.get(current.name.partition(".")[0])
            if extra is not None:
                return extra
        current = current.__cause__ or current.__context__
    return None


def needs_extra_message(feature: str, extra: str) -> str:
    """One line: what needs the extra and the command that installs it."""
    return f"{feature} needs the optional '{extra}' dependencies: pip install 'capsem-proxy[{extra}]'"


@contextmanager
def needs_extra(feature: str) -> Iterator[None]:
    """Turn a failed import of an extra's module inside the block into a ConfigError naming the extra."""
    try:
        yield
    except ImportError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        raise ConfigError(needs_extra_message(feature, extra)) from exc
