"""Fake LLM provider (OpenAI, Gemini, Anthropic wire formats) for integration tests and benchmarks.

Run it with ``python -m tests.fake_provider --port N`` or start it from tests with
:func:`tests.fake_provider.process.start_fake_provider`.
"""

from __future__ import annotations

from typing import Any

from .scenarios import DEFAULT_REPLY, DEFAULT_TOOL_ARGS, SCENARIO_HEADER, Scenario

__all__ = [
    "DEFAULT_REPLY",
    "DEFAULT_TOOL_ARGS",
    "SCENARIO_HEADER",
    "FakeProviderProcess",
    "Scenario",
    "start_fake_provider",
]


def __getattr__(name: str) -> Any:
    """Lazy access to the process helper (keeps httpx out of the server's imports)."""
    if name in ("FakeProviderProcess", "start_fake_provider"):
        from . import process

        return getattr(process, name)
    raise AttributeError(name)
