"""A small native policy for the in-process tests: what it does with a prompt or an answer is
set by keywords in its options."""

from __future__ import annotations

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.hooks import ModelCall, ModelResponse


class Keywords:
    """BLOCK, CONFIRM or REDACT a prompt holding a keyword; BLOCK an answer holding one."""

    name = "keywords"

    def __init__(self, block: str = "", confirm: str = "", redact: str = "", block_answer: str = "") -> None:
        self.block, self.confirm, self.redact, self.block_answer = block, confirm, redact, block_answer

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        prompt = event.prompt
        if self.block and self.block in prompt:
            return Decision(Verdict.BLOCK, self.name, "on_model_call", reason="keyword", details="blocked keyword")
        if self.confirm and self.confirm in prompt:
            return Decision(Verdict.CONFIRM, self.name, "on_model_call", reason="keyword", details="risky keyword")
        if self.redact and self.redact in prompt:
            return Decision(Verdict.REDACT, self.name, "on_model_call", reason="keyword", details="redacted keyword",
                            redactions=[(self.redact, "[gone]")])
        return None

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        if self.block_answer and self.block_answer in event.answer.text:
            return Decision(Verdict.BLOCK, self.name, "on_model_response", reason="keyword", details="blocked answer")
        return None
