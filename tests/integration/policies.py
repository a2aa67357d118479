"""CAPSEM policies used by the integration tests, loaded by the proxy by import path."""

from __future__ import annotations

import json

from capsem.models import Decision, Reason, Verdict
from capsem.policies import Policy

TRIGGER = "FORBIDDEN"


class ResponseGuardPolicy(Policy):
    """Blocks answers containing a keyword and emitted tool calls whose arguments hold `rm -rf`."""

    def __init__(self, keyword: str = TRIGGER) -> None:
        super().__init__(name="ResponseGuard", description="test policy", authors="tests", url="")
        self.keyword = keyword

    async def on_model_response(self, invocation_id, agent, response, thoughts, media):
        if self.keyword in response:
            return Decision(verdict=Verdict.BLOCK, reason=Reason.UNSAFE_CONTENT, details=f"Detected '{self.keyword}'")
        return Decision(verdict=Verdict.ALLOW, reason=Reason.SAFE)

    async def on_tool_call(self, invocation_id, agent, tool, args):
        if "rm -rf" in json.dumps(args):
            return Decision(verdict=Verdict.BLOCK, reason=Reason.HIGH_RISK_ACTION, details="destructive command")
        return Decision(verdict=Verdict.ALLOW, reason=Reason.SAFE)

    @classmethod
    def from_config(cls, config: dict) -> ResponseGuardPolicy:
        return cls(config.get("keyword", TRIGGER))
