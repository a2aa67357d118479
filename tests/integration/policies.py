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


class RecordingPolicy(Policy):
    """Appends every hook call, with CAPSEM's arguments, to a JSON-lines file; allows everything."""

    def __init__(self, path: str) -> None:
        super().__init__(name="Recorder", description="records hook calls", authors="tests", url="")
        self.path = path

    def _write(self, hook: str, **fields) -> Decision:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"hook": hook, **fields}, default=str) + "\n")
        return Decision(verdict=Verdict.ALLOW, reason=Reason.SAFE)

    async def on_model_call(self, invocation_id, agent, model_name, system_instructions, prompt, media):
        return self._write(
            "on_model_call", invocation_id=invocation_id, agent=agent.name, tools=[t.name for t in agent.tools],
            model_name=model_name, system_instructions=system_instructions, prompt=prompt,
            media=[m.mime_type for m in media],
        )

    async def on_tool_call(self, invocation_id, agent, tool, args):
        return self._write("on_tool_call", invocation_id=invocation_id, tool=tool.name, args=args)

    async def on_tool_response(self, invocation_id, agent, tool, response):
        return self._write("on_tool_response", invocation_id=invocation_id, tool=tool.name, response=response)

    async def on_model_response(self, invocation_id, agent, response, thoughts, media):
        return self._write("on_model_response", invocation_id=invocation_id, response=response, thoughts=thoughts)

    @classmethod
    def from_config(cls, config: dict) -> RecordingPolicy:
        return cls(config["path"])


class RaisingPolicy(Policy):
    """A policy with a bug: it raises on every prompt."""

    def __init__(self) -> None:
        super().__init__(name="Raiser", description="raises", authors="tests", url="")

    async def on_model_call(self, invocation_id, agent, model_name, system_instructions, prompt, media):
        raise RuntimeError("policy bug")


class SlowPolicy(Policy):
    """A policy that waits longer than any sane budget."""

    def __init__(self, seconds: float = 2.0) -> None:
        super().__init__(name="Slow", description="sleeps", authors="tests", url="")
        self.seconds = seconds

    async def on_model_call(self, invocation_id, agent, model_name, system_instructions, prompt, media):
        import asyncio

        await asyncio.sleep(self.seconds)
        return Decision(verdict=Verdict.ALLOW, reason=Reason.SAFE)

    @classmethod
    def from_config(cls, config: dict) -> SlowPolicy:
        return cls(float(config.get("seconds", 2.0)))


class ConfirmPolicy(Policy):
    """Asks for a human's confirmation before money moves."""

    def __init__(self) -> None:
        super().__init__(name="Confirm", description="confirm transfers", authors="tests", url="")

    async def on_model_call(self, invocation_id, agent, model_name, system_instructions, prompt, media):
        if "transfer money" in prompt:
            return Decision(verdict=Verdict.CONFIRM, reason=Reason.HIGH_RISK_ACTION, details="money transfer")
        return Decision(verdict=Verdict.ALLOW, reason=Reason.SAFE)


class WholeAnswerPolicy(ResponseGuardPolicy):
    """Declares it must read the whole answer before any of it is released."""

    needs_whole_answer = True
