"""A built-in policy: named regular expressions found in prompts, tool results or answers are
redacted (`[REDACTED:<name>]`), blocked or logged.

Reversible mode gives each distinct match its own placeholder (`[REDACTED:<name>_<n>]`); the
proxy restores the originals in the answer the client receives, keeping them in memory for
that one request only.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.hooks import ModelCall, ModelResponse, ToolResponse
from capsem_proxy.policies.detector_policy import combined, json_strings

__all__ = ["RegexRedactOptions", "RegexRedactPolicy"]


class RegexRedactOptions(BaseModel):
    """Options of RegexRedactPolicy."""

    model_config = ConfigDict(extra="forbid")

    patterns: dict[str, str] = Field(description="name -> regular expression")
    action: Literal["redact", "block", "log"] = "redact"
    reversible: bool = False
    prompts: bool = True
    tool_results: bool = True
    answers: bool = True
    longest_match_chars: int = Field(128, ge=1, description="longest text a pattern can match (stream window)")

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        if not patterns:
            raise ValueError("at least one pattern is required")
        for name, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern '{name}' is not a valid regular expression: {exc}") from exc
        return patterns


class RegexRedactPolicy:
    """Finds named patterns; redacts, blocks or logs them."""

    name = "regex-redact"

    def __init__(self, options: RegexRedactOptions) -> None:
        self.options = options
        self._patterns = [(name, re.compile(pattern)) for name, pattern in options.patterns.items()]
        hooks = []
        if options.prompts:
            hooks.append("on_model_call")
        if options.tool_results:
            hooks.append("on_tool_response")
        if options.answers:
            hooks.append("on_model_response")
        self.implemented_hooks = frozenset(hooks)
        self.window_chars = options.longest_match_chars

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> RegexRedactPolicy:
        return cls(RegexRedactOptions.model_validate(options))

    def _findings(self, text: str) -> list[tuple[str, str]]:
        """(pattern name, matched text) for every match, in order, each text once."""
        seen: dict[str, str] = {}
        for name, pattern in self._patterns:
            for match in pattern.finditer(text):
                if match.group(0):
                    seen.setdefault(match.group(0), name)
        return [(name, found) for found, name in seen.items()]

    def _decide(self, hook: str, text: str, reversible: bool) -> Decision | None:
        findings = self._findings(text)
        if not findings:
            return None
        names = sorted({name for name, _ in findings})
        details = f"found {len(findings)} match(es) of {', '.join(names)}"
        action = self.options.action
        if action == "block":
            return Decision(Verdict.BLOCK, self.name, hook, reason="sensitive_data", details=details)
        if action == "log":
            return Decision(Verdict.LOG, self.name, hook, reason="sensitive_data", details=details)
        counters: dict[str, int] = {}
        redactions = []
        for name, found in findings:
            if reversible:
                counters[name] = counters.get(name, 0) + 1
                replacement = f"[REDACTED:{name}_{counters[name]}]"
            else:
                replacement = f"[REDACTED:{name}]"
            redactions.append((found, replacement))
        return Decision(
            Verdict.REDACT, self.name, hook, reason="sensitive_data", details=details, redactions=redactions,
            extra={"reversible": reversible},
        )

    def _decide_encoded(self, hook: str, texts: list[str]) -> Decision | None:
        """Findings in text sent encoded (base64, a data: URL) cannot be rewritten: `redact` blocks."""
        decision = self._decide(hook, "\n".join(texts), False) if texts else None
        if decision is not None and decision.verdict is Verdict.REDACT:
            details = f"{decision.details} in encoded content, which cannot be rewritten"
            return Decision(Verdict.BLOCK, self.name, hook, reason="sensitive_data", details=details)
        return decision

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        """Every request text without a hook of its own: system text, the conversation, the
        history's tool calls, what the adapter did not recognise, and decoded text documents."""
        texts = [event.system_instructions, event.prompt]
        for call in event.history_tool_calls:
            texts.extend(call.texts())
        texts.extend(event.other_texts)
        decision = self._decide("on_model_call", "\n".join(text for text in texts if text), self.options.reversible)
        return combined(decision, self._decide_encoded("on_model_call", event.media_texts))

    async def on_tool_response(self, event: ToolResponse) -> Decision | None:
        result = event.result
        texts = result.texts() if result is not None else json_strings(event.response)
        decision = self._decide("on_tool_response", "\n".join(texts), self.options.reversible)
        encoded = result.media_texts() if result is not None else []
        return combined(decision, self._decide_encoded("on_tool_response", encoded))

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        answer = event.answer
        text = answer.text if not answer.thinking else answer.thinking + "\n" + answer.text
        return self._decide("on_model_response", text, reversible=False)
