"""A policy of your own, as the README's example names it: any `capsem.policies.Policy` subclass
runs in the proxy unchanged, at every hook it implements. Put the folder that holds this module on
PYTHONPATH and name the class by its import path:

    PYTHONPATH=examples capsem-proxy run --config proxy.yaml

    policies:
      - class: my_policies.ForbiddenWords
        options: {words: [project falcon]}   # handed to from_config()
"""

from __future__ import annotations

from typing import Any

from capsem.models import Decision, Reason, Verdict
from capsem.policies import Policy
from capsem.tools import Tool


class ForbiddenWords(Policy):
    """Blocks prompts and tool results that mention one of the configured words (any case)."""

    def __init__(self, words: list[str]) -> None:
        super().__init__(
            name="ForbiddenWords", description="blocks configured words", authors="capsem-proxy examples", url=""
        )
        self.words = [word.lower() for word in words]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ForbiddenWords:
        """Options: `words`, a non-empty list of words or phrases. A bad value stops the proxy at start-up."""
        words = config.get("words")
        if not isinstance(words, list) or not words or not all(isinstance(word, str) and word for word in words):
            raise ValueError("'words' must be a non-empty list of words")
        unknown = set(config) - {"words"}
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return cls(words)

    def _check(self, text: str, where: str) -> Decision:
        lowered = text.lower()
        for word in self.words:
            if word in lowered:
                return Decision(
                    verdict=Verdict.BLOCK, reason=Reason.POLICY_VIOLATION, details=f"{where} mentions '{word}'"
                )
        return Decision(verdict=Verdict.ALLOW, reason=Reason.SAFE)

    async def on_model_call(self, invocation_id, agent, model_name, system_instructions, prompt, media) -> Decision:
        return self._check(prompt, "the prompt")

    async def on_tool_response(self, invocation_id, agent, tool: Tool, response: dict[str, Any]) -> Decision:
        return self._check(str(response), f"the result of tool {tool.name}")
