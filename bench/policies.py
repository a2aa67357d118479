"""Trivial policies for the `guard` and `policies` benchmark scenarios.

They use the proxy's own policy interface (a ``name`` and async hook methods returning None for
"no opinion") and do next to nothing, so what the benchmark measures is the proxy's cost of
running a policy (or of a streaming mode), not the policy's. The proxy imports them by class
path (``bench.policies.Trivial``), so its process needs the repository root on ``PYTHONPATH``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnswerReader", "Trivial"]


class Trivial:
    """Has no opinion on any request (`on_model_call` only). ``name`` makes each instance distinct."""

    def __init__(self, name: str = "trivial") -> None:
        self.name = name

    async def on_model_call(self, event: Any) -> None:
        return None


class AnswerReader:
    """Reads the answer text (`on_model_response`) and has no opinion on it.

    Having an `on_model_response` hook is what makes the proxy decode a streamed answer and
    release it according to `streaming.mode` (pass / guard / buffer).
    """

    name = "answer-reader"

    async def on_model_response(self, event: Any) -> None:
        _ = event.answer.text
        return None
