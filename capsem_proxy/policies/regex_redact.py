"""A built-in policy: named regular expressions found in prompts, tool results or answers are
redacted (`[REDACTED:<name>]`), blocked or logged.

Reversible mode gives each distinct match its own placeholder (`[REDACTED:<name>_<n>]`); the
proxy restores the originals in the answer the client receives, keeping them in memory for
that one request only.

Patterns run on RE2 (`capsem_proxy.linear_regex`): matching takes time linear in the text
whatever the pattern, and a pattern RE2 cannot run stops start-up. Texts are screened like the
built-in detectors' (`capsem_proxy.scanning`): long ones in slices, within the scan budget.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.detectors.base import Finding, Reach
from capsem_proxy.detectors.slices import scan_in_slices
from capsem_proxy.hooks import HOOK_NAMES, ModelCall, ModelResponse, ToolResponse
from capsem_proxy.linear_regex import check_linear, compile_linear
from capsem_proxy.policies.detector_policy import combined, json_strings
from capsem_proxy.scanning import current_ledger, screen, too_large_decision

__all__ = ["RegexRedactOptions", "RegexRedactPolicy"]


class RegexRedactOptions(BaseModel):
    """Options of RegexRedactPolicy."""

    model_config = ConfigDict(extra="forbid")

    patterns: dict[str, str] = Field(description="name -> regular expression (RE2 syntax: linear time)")
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
            check_linear(pattern, f"pattern '{name}'")
        return patterns


class RegexRedactPolicy:
    """Finds named patterns; redacts, blocks or logs them."""

    name = "regex-redact"
    # The hooks await only to read a long text in slices (see DetectorPolicy).
    inline_hooks: ClassVar[frozenset[str]] = frozenset(HOOK_NAMES)
    screens_text: ClassVar[bool] = True

    def __init__(self, options: RegexRedactOptions) -> None:
        self.options = options
        self._patterns = [(name, compile_linear(pattern)) for name, pattern in options.patterns.items()]
        after = max(256, options.longest_match_chars + 64)
        self.reach = Reach(before=256, after=after, longest=max(4 * after, 4096))
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

    def _matches(self, text: str, reaches_end: bool = True) -> list[Finding]:
        """Every non-empty match of every pattern, pattern by pattern."""
        return [
            Finding(name, match.start(), match.end(), match.group(0))
            for name, pattern in self._patterns
            for match in pattern.finditer(text)
            if match.end() > match.start()
        ]

    async def _findings(self, text: str) -> list[tuple[str, str]]:
        """(pattern name, matched text) for every match, each text once (the first pattern's)."""
        matches = await screen(
            len(text),
            lambda: self._matches(text),
            lambda slice_chars: scan_in_slices(self._matches, text, self.reach, slice_chars),
        )
        if len(self._patterns) > 1:
            order = {name: index for index, (name, _) in enumerate(self._patterns)}
            matches.sort(key=lambda finding: order[finding.kind])
        seen: dict[str, str] = {}
        for finding in matches:
            seen.setdefault(finding.text, finding.kind)
        return [(name, found) for found, name in seen.items()]

    async def _decide(self, hook: str, text: str, reversible: bool) -> Decision | None:
        if not text:
            return None
        ledger = current_ledger()
        if not ledger.charge(self, len(text), growing=hook == "on_model_response"):
            return too_large_decision(self.name, hook, ledger)
        findings = await self._findings(text)
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

    async def _decide_encoded(self, hook: str, texts: list[str]) -> Decision | None:
        """Findings in text sent encoded (base64, a data: URL) cannot be rewritten: `redact` blocks."""
        decision = await self._decide(hook, "\n".join(texts), False) if texts else None
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
        joined = "\n".join(text for text in texts if text)
        decision = await self._decide("on_model_call", joined, self.options.reversible)
        return combined(decision, await self._decide_encoded("on_model_call", event.media_texts))

    async def on_tool_response(self, event: ToolResponse) -> Decision | None:
        result = event.result
        texts = result.texts() if result is not None else json_strings(event.response)
        decision = await self._decide("on_tool_response", "\n".join(texts), self.options.reversible)
        encoded = result.media_texts() if result is not None else []
        return combined(decision, await self._decide_encoded("on_tool_response", encoded))

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        answer = event.answer
        text = answer.text if not answer.thinking else answer.thinking + "\n" + answer.text
        return await self._decide("on_model_response", text, reversible=False)
