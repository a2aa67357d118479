"""The shared shape of the built-in detector policies (secrets, PII, injection, egress…).

A detector policy scans the texts of the places it is configured for (`scan`), and turns
findings into one decision: each finding kind has an action (`log`, `block`, `confirm` or
`redact`), the strictest action wins, and `redact` rewrites each finding as `[REDACTED:<kind>]`
(reversible: `[REDACTED:<kind>_<n>]`, restored in the answer the client receives). Tool
definitions, tool calls the model emits and text sent encoded (base64 or data: URLs) cannot be
rewritten: there `redact` blocks.

Places and the hooks that read them: `prompts` (system text, the conversation, text documents
sent inline), `tool_calls` in the request's history and `other` (what the adapter did not
recognise) at `on_model_call`; `tool_definitions` and the tool calls the model emits at
`on_tool_call`; `tool_results` at `on_tool_response`; `answers` at `on_model_response`.

Every text is screened through `decide`, which keeps detector work bounded (see
`capsem_proxy.scanning`): a short text is scanned inline, a long one in slices that give the event
loop a turn, and a request with more text than the scan budget is refused, never let through.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from capsem_proxy.decisions import SEVERITY, Decision, Verdict
from capsem_proxy.detectors.base import DEFAULT_REACH, Detector, Finding, Reach
from capsem_proxy.detectors.slices import WindowScan, scan_in_slices
from capsem_proxy.exchange import Answer
from capsem_proxy.hooks import HOOK_NAMES, ModelCall, ModelResponse, ToolCall, ToolResponse
from capsem_proxy.policies.actions import ACTION_VERDICTS
from capsem_proxy.policies.base import SUSPENDS
from capsem_proxy.scanning import current_ledger, in_slices, too_large_decision
from capsem_proxy.streaming.text import GrowingText
from capsem_proxy.texts import json_texts

__all__ = ["ALL_PLACES", "Action", "DetectorOptions", "DetectorPolicy", "combined", "json_strings"]

Action = Literal["log", "block", "confirm", "redact"]
Place = Literal["prompts", "tool_definitions", "tool_calls", "tool_results", "answers", "other"]
# Every place a text detector can read: the default of `scan`, so nothing the provider reads is
# left out unless a configuration says so.
ALL_PLACES: tuple[Place, ...] = ("prompts", "tool_definitions", "tool_calls", "tool_results", "answers", "other")

# RequestContext.scratch key of the request's reversible placeholders (original -> placeholder),
# shared by every detector policy so that no two originals of one request get the same placeholder,
# and of how many placeholders each kind has had so far.
_PLACEHOLDER_NUMBERING = "detector_placeholders"
_PLACEHOLDER_COUNTS = "detector_placeholder_counts"
# How many clean tool definitions each policy remembers (digests of 16 bytes).
_CLEAN_DEFINITIONS_KEPT = 4096
# RequestContext.scratch key: per policy, where the next check of a growing answer starts reading.
_ANSWER_PROGRESS = "detector_answer_progress"
# RequestContext.scratch key: per policy and part, a stretch of a streamed answer known to hold none
# of the detector's literals (the text it is in, its start, its end; see `_grown_findings`).
_LITERAL_FREE = "detector_literal_free"


class DetectorOptions(BaseModel):
    """Options every detector policy accepts (subclasses add their detector's own)."""

    model_config = ConfigDict(extra="forbid")

    action: Action = "block"
    actions: dict[str, Action] = Field(default_factory=dict, description="finding kind -> action, overriding `action`")
    scan: list[Place] = Field(default_factory=lambda: list(ALL_PLACES), description="where to look")
    emitted_tool_calls: bool | None = Field(
        None,
        description="also scan the tool calls the model emits (default: when `tool_calls` is in `scan`, "
        "unless the detector says otherwise); `tool_calls` always covers the calls in a request's history",
    )
    reversible: bool = Field(False, description="redactions in requests are restored in the answer")
    window_chars: int = Field(256, ge=1, description="longest text a finding can span (streamed answers)")

    # The finding kinds a detector reports, and what to call them in errors (checked when set).
    known_kinds: ClassVar[tuple[str, ...]] = ()
    kind_label: ClassVar[str] = "finding"
    # Whether a default `scan` (one the configuration did not spell out) covers emitted tool calls.
    emitted_calls_by_default: ClassVar[bool] = True

    def scans_emitted_calls(self) -> bool:
        """True when the tool calls the model emits are scanned (see `emitted_tool_calls`)."""
        if self.emitted_tool_calls is not None:
            return self.emitted_tool_calls
        if "tool_calls" not in self.scan:
            return False
        return self.emitted_calls_by_default or "scan" in self.model_fields_set

    @classmethod
    def check_kinds(cls, kinds: list[str], what: str) -> list[str]:
        """`kinds` when every one is known; ValueError naming the unknown ones otherwise."""
        unknown = [kind for kind in kinds if cls.known_kinds and kind not in cls.known_kinds]
        if unknown:
            raise ValueError(
                f"{what}: unknown {cls.kind_label} kind(s) {', '.join(unknown)}; known: {', '.join(cls.known_kinds)}"
            )
        return kinds

    @field_validator("actions")
    @classmethod
    def _action_kinds_known(cls, actions: dict[str, Any]) -> dict[str, Any]:
        cls.check_kinds(list(actions), "actions")
        return actions


def json_strings(value: Any) -> list[str]:
    """Every string inside a JSON-like value, keys excluded (each can be redacted as a whole);
    walked without recursion, however deep the value nests."""
    return json_texts(value)


def combined(first: Decision | None, second: Decision | None) -> Decision | None:
    """One decision for two scans of one hook call: the stricter governs, the other's findings
    are named in its details (a redaction keeps its rewrites)."""
    if first is None or second is None:
        return first or second
    governing, other = (second, first) if second.severity > first.severity else (first, second)
    if other.verdict is Verdict.REDACT and governing.verdict is Verdict.REDACT:
        governing.redactions = governing.redactions + other.redactions
    governing.details = f"{governing.details}; {other.details}" if other.details else governing.details
    kinds = sorted(set(governing.extra.get("kinds", [])) | set(other.extra.get("kinds", [])))
    if kinds:
        governing.extra["kinds"] = kinds
    return governing


def _whole_answer(event: ModelResponse) -> bool:
    """True when `event` is a whole (non-streamed) answer, checked once: nothing of it was read before."""
    return (event.final and event.text_buffer is None and event.thinking_buffer is None
            and not event.settled_chars and not event.settled_thinking_chars)


def _numbered_per_request(decision: Decision | None, scratch: dict[str, Any]) -> Decision | None:
    """`decision` with its reversible placeholders numbered across the whole request.

    The prompt and each tool result are separate hook calls, each numbering from 1; two
    originals sharing a placeholder could not both be restored, so each original keeps the
    placeholder it got first in this request and new ones continue the request's count.
    """
    if decision is None or decision.verdict is not Verdict.REDACT or not decision.extra.get("reversible"):
        return decision
    numbering: dict[str, str] = scratch.setdefault(_PLACEHOLDER_NUMBERING, {})
    counts: dict[str, int] = scratch.setdefault(_PLACEHOLDER_COUNTS, {})
    renumbered = []
    for original, placeholder in decision.redactions:
        unique = numbering.get(original)
        if unique is None:
            prefix = placeholder.rsplit("_", 1)[0] + "_"  # "[REDACTED:<kind>_"
            number = counts[prefix] = counts.get(prefix, 0) + 1
            unique = numbering[original] = f"{prefix}{number}]"
        renumbered.append((original, unique))
    decision.redactions = renumbered
    return decision


class DetectorPolicy:
    """Base of the built-in detector policies: subclasses set `name`, `reason`, `options_model`
    and build their detector in `build_detector`."""

    name: ClassVar[str] = "detector"
    reason: ClassVar[str] = "sensitive_data"
    options_model: ClassVar[type[DetectorOptions]] = DetectorOptions
    # True when the detector finds everything it reports from its first characters on and no
    # finding is longer than `window_chars` unless so found: streamed answers are then read
    # incrementally (see `_decide_growing_answer`).
    incremental_answers: ClassVar[bool] = False
    # False for a detector about what leaves in answers (egress): calls in a request's history
    # were checked when the model emitted them.
    screens_call_history: ClassVar[bool] = True
    # The hooks await only to give the event loop a turn while a long text is read in slices (or
    # to wait for a place to read it): the pipeline runs them inline and drives them on if they do.
    inline_hooks: ClassVar[frozenset[str]] = frozenset(HOOK_NAMES)
    # Keeps a per-request ledger of the text it screens (capsem_proxy.scanning).
    screens_text: ClassVar[bool] = True

    def __init__(self, options: DetectorOptions) -> None:
        self.options = options
        self.detector: Detector = self.build_detector(options)
        self.reach: Reach = getattr(self.detector, "reach", DEFAULT_REACH)
        scan = frozenset(options.scan)
        self._scan = scan
        self._scan_prompts = "prompts" in scan
        self._scan_other = "other" in scan
        self._scan_history = "tool_calls" in scan and self.screens_call_history
        self._scan_emitted = options.scans_emitted_calls()
        hooks = []
        if scan & {"prompts", "other"} or self._scan_history:
            hooks.append("on_model_call")
        if "tool_definitions" in scan or self._scan_emitted:
            hooks.append("on_tool_call")
        if "tool_results" in scan:
            hooks.append("on_tool_response")
        if "answers" in scan:
            hooks.append("on_model_response")
        self.implemented_hooks = frozenset(hooks)
        self.window_chars = options.window_chars
        # Where a finding may still be in progress at the end of a streamed answer (see
        # `capsem_proxy.detectors.holds`): the guard then holds only from there, not a window.
        hold = getattr(self.detector, "hold_from", None)
        self.stream_hold: Callable[[str], int] | None = (
            hold if self.incremental_answers and getattr(self.detector, "can_hold", True) else None
        )
        self._default_action = options.action
        self._actions = dict(options.actions)
        self._clean_definitions: OrderedDict[bytes, None] = OrderedDict()
        # This policy's keys in a request's answer progress (made once, not at every check).
        self._thinking_key, self._text_key = (id(self), "thinking"), (id(self), "text")
        self._progress_keys = {"thinking": self._thinking_key, "text": self._text_key}
        # A text read whole is the detector's scan of it, unless a subclass reads windows its own way.
        self._scans_whole = type(self)._scan_window is DetectorPolicy._scan_window
        # A detector that can skip the start of a text known to hold none of its literals (secrets).
        self._scan_grown: Callable[[str, int], tuple[list[Finding], bool]] | None = (
            getattr(self.detector, "scan_grown", None) if self._scans_whole else None
        )
        self.sync_hooks = self._plain_hooks()

    def _plain_hooks(self) -> dict[str, Callable[[Any], Any]]:
        """Hooks the pipeline may call as plain functions: the same decision as the hook's when all
        its texts are short enough to read inline, else `SUSPENDS` with nothing done (no coroutine
        to create and run to its end for the usual, short text). Only where the class reads its
        texts as this one does: a subclass with its own way keeps its hooks as they are."""
        cls, base = type(self), DetectorPolicy
        if cls.decide is not base.decide and cls.decide_inline is base.decide_inline:
            return {}
        hooks: dict[str, Callable[[Any], Any]] = {}
        if (
            "on_model_call" in self.implemented_hooks
            and cls.on_model_call is base.on_model_call
            and cls.decide_model_call is base.decide_model_call
        ):
            hooks["on_model_call"] = self._model_call_now
        if (
            "on_model_response" in self.implemented_hooks
            and self.incremental_answers
            and cls.on_model_response is base.on_model_response
        ):
            hooks["on_model_response"] = self._answer_now
        return hooks

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> DetectorPolicy:
        return cls(cls.options_model.model_validate(options))

    def build_detector(self, options: DetectorOptions) -> Detector:  # pragma: no cover - abstract
        raise NotImplementedError

    def action_for(self, kind: str) -> Action:
        """The configured action for findings of `kind`."""
        return self._actions.get(kind, self._default_action)

    async def decide(
        self, hook: str, text: str, *, reversible: bool = False, can_redact: bool = True
    ) -> Decision | None:
        """The decision for `text` seen at `hook`; None when nothing was found. A text that would
        take the request past its scan budget is not read: the decision refuses it."""
        # Short texts, the common case, are read here and now: no slicing, no extra coroutine.
        if not text or current_ledger().fits_inline(len(text)):
            return self.decide_inline(hook, text, reversible=reversible, can_redact=can_redact)
        refusal = self.over_budget(hook, len(text), growing=hook == "on_model_response")
        if refusal is not None:
            return refusal
        findings = await self.scan(text)
        if not findings:
            return None
        return self.decision_for(hook, findings, reversible=reversible, can_redact=can_redact)

    def decide_inline(
        self, hook: str, text: str, *, reversible: bool = False, can_redact: bool = True
    ) -> Decision | None:
        """`decide` for a text the caller knows fits inline (`ScanLedger.fits_inline`)."""
        if not text:
            return None
        ledger = current_ledger()
        if not ledger.charge(self, len(text), growing=hook == "on_model_response", inline=True):
            return too_large_decision(self.name, hook, ledger)
        findings = self.detector.scan(text) if self._scans_whole else self._scan_window(text, True)
        if not findings:
            return None
        return self.decision_for(hook, findings, reversible=reversible, can_redact=can_redact)

    def over_budget(self, hook: str, chars: int, *, growing: bool = False) -> Decision | None:
        """Charge a text of `chars` characters to the request's scan budget (`growing`: the answer
        so far, of which only the growth counts); the refusal when it is exceeded."""
        ledger = current_ledger()
        return None if ledger.charge(self, chars, growing=growing) else too_large_decision(self.name, hook, ledger)

    async def scan(self, text: str, window_scan: WindowScan | None = None) -> list[Finding]:
        """Every finding in `text`: scanned inline when short, slice by slice when long."""
        read = window_scan or self._scan_window
        ledger = current_ledger()
        if ledger.inline(len(text)):
            return read(text, True)
        return await in_slices(ledger, scan_in_slices(read, text, self.reach, ledger.limits.slice_chars))

    def _scan_window(self, window: str, reaches_end: bool) -> list[Finding]:
        return self.detector.scan(window)

    def decision_for(
        self, hook: str, findings: list[Finding], *, reversible: bool = False, can_redact: bool = True
    ) -> Decision:
        """One decision for `findings`: the strictest action wins; redactions for the `redact` ones."""
        verdict = Verdict.LOG
        redacted: list[Finding] = []
        for finding in findings:
            action = self.action_for(finding.kind)
            if action == "redact":
                if not can_redact:
                    action = "block"
                else:
                    redacted.append(finding)
            candidate = ACTION_VERDICTS[action]
            if SEVERITY[candidate] > SEVERITY[verdict]:
                verdict = candidate
        kinds = sorted({finding.kind for finding in findings})
        details = f"found {len(findings)} finding(s): {', '.join(kinds)}"
        score = max(finding.score for finding in findings)
        extra: dict[str, Any] = {"kinds": kinds, "score": round(score, 3)}
        if verdict is not Verdict.REDACT:
            return Decision(verdict, self.name, hook, reason=self.reason, details=details, extra=extra)
        counters: dict[str, int] = {}
        replacements: dict[str, str] = {}
        for finding in redacted:
            if finding.text in replacements or not finding.text:
                continue
            if reversible:
                counters[finding.kind] = counters.get(finding.kind, 0) + 1
                replacements[finding.text] = f"[REDACTED:{finding.kind}_{counters[finding.kind]}]"
            else:
                replacements[finding.text] = f"[REDACTED:{finding.kind}]"
        extra["reversible"] = reversible
        return Decision(
            Verdict.REDACT, self.name, hook, reason=self.reason, details=details,
            redactions=list(replacements.items()), extra=extra,
        )

    def system_text(self, event: ModelCall) -> str:
        """The system instructions this detector reads with the prompt (all of them, by default)."""
        return event.system_instructions

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        return await self.decide_model_call(event)

    def _model_call_texts(self, event: ModelCall) -> tuple[str, str]:
        """The texts read at `on_model_call` joined, and those sent encoded (which cannot be
        rewritten) joined. Detectors reading the same places of one request share them: joined
        once, kept on the event."""
        prompts = self._scan_prompts
        system = self.system_text(event) if prompts else ""
        key = (system, prompts, self._scan_history, self._scan_other)
        shared = event.joined_texts
        if shared is None:
            shared = event.joined_texts = {}
        else:
            joined = shared.get(key)
            if joined is not None:
                return joined
        exchange = event.context.exchange  # what the event's `media_texts`, `history_tool_calls`, `other_texts` read
        texts: list[str] = []
        encoded: list[str] = []
        if prompts:
            if system:
                texts.append(system)
            if event.prompt:
                texts.append(event.prompt)
            encoded = exchange.media_texts()
        if self._scan_history:
            for call in exchange.tool_calls:
                texts.extend(call.texts())
        if self._scan_other:
            texts.extend(exchange.other_texts())
        joined = shared[key] = ("\n".join(texts), "\n".join(encoded))
        return joined

    async def decide_model_call(self, event: ModelCall) -> Decision | None:
        """The decision on the request's texts read at `on_model_call`, by place: prompts (system
        text, the conversation, text documents sent inline), the history's tool calls, other."""
        text, document = self._model_call_texts(event)
        decision = await self.decide("on_model_call", text, reversible=self.options.reversible)
        if document:
            # Text inside base64 or a data: URL cannot be rewritten in place: there a redaction blocks.
            decision = combined(decision, await self.decide("on_model_call", document, can_redact=False))
        return _numbered_per_request(decision, event.context.scratch)

    def _model_call_now(self, event: ModelCall) -> Any:
        """`on_model_call` as a plain function (see `sync_hooks`)."""
        text, document = self._model_call_texts(event)
        if not current_ledger().fits_inline(len(text) + len(document)):
            return SUSPENDS
        decision = self.decide_inline("on_model_call", text, reversible=self.options.reversible)
        if document:
            decision = combined(decision, self.decide_inline("on_model_call", document, can_redact=False))
        return _numbered_per_request(decision, event.context.scratch) if decision is not None else None

    async def on_tool_call(self, event: ToolCall) -> Decision | None:
        if event.emitted:
            if not self._scan_emitted:
                return None
            # A call the model emits cannot be redacted: streamed calls are released as the
            # provider's own argument fragments, which no rewrite reaches, and the client would
            # run the call with arguments the model never chose. `redact` blocks it instead.
            return await self.decide("on_tool_call", "\n".join(json_strings(event.args)), can_redact=False)
        if "tool_definitions" not in self._scan:
            return None
        # A tool definition is the caller's own code: it can be refused, not rewritten. Its
        # schema is read whole: descriptions of parameters are where tool poisoning hides.
        # An agent sends the same tools with every request: a definition found clean once is
        # clean again (findings depend on its text and this policy's options only).
        key = event.tool.digest()
        clean = self._clean_definitions
        if key in clean:
            clean.move_to_end(key)
            return None
        decision = await self.decide("on_tool_call", "\n".join(event.tool.texts()), can_redact=False)
        if decision is None:
            clean[key] = None
            if len(clean) > _CLEAN_DEFINITIONS_KEPT:
                clean.popitem(last=False)
        return decision

    async def on_tool_response(self, event: ToolResponse) -> Decision | None:
        result = event.result
        texts = result.texts() if result is not None else json_strings(event.response)
        decision = await self.decide("on_tool_response", "\n".join(texts), reversible=self.options.reversible)
        encoded = result.media_texts() if result is not None else []
        if encoded:
            decision = combined(decision, await self.decide("on_tool_response", "\n".join(encoded), can_redact=False))
        return _numbered_per_request(decision, event.context.scratch)

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        if not self.incremental_answers:
            answer = event.answer
            text = answer.text if not answer.thinking else answer.thinking + "\n" + answer.text
            return await self.decide("on_model_response", text)
        if _whole_answer(event):
            return await self._decide_whole_answer(event.answer)
        return await self._decide_growing_answer(event)

    def _answer_now(self, event: ModelResponse) -> Any:
        """`on_model_response` as a plain function (see `sync_hooks`): a whole answer, or a check of a
        growing one (`_growing_answer_now`), when what it reads fits inline; else `SUSPENDS`, with
        nothing done."""
        if not _whole_answer(event):
            # `incremental_answers` is read now, not when the hooks were chosen: it may have been changed since.
            return self._growing_answer_now(event) if self.incremental_answers else SUSPENDS
        answer = event.answer
        thinking, text = answer.thinking, answer.text
        chars = len(thinking) + len(text)
        ledger = current_ledger()
        if not ledger.fits_inline(chars):
            return SUSPENDS
        # `over_budget`, with the ledger at hand, and both parts, which `fits_inline` said fit, read inline.
        if not ledger.charge(self, chars, growing=True, inline=True):
            return too_large_decision(self.name, "on_model_response", ledger)
        text_found = (self.detector.scan(text) if self._scans_whole else self._scan_window(text, True)) if text else []
        if not thinking:
            return self.decision_for("on_model_response", text_found) if text_found else None
        return self._answer_decision(self._scan_window(thinking, True), text_found)

    def _growing_answer_now(self, event: ModelResponse) -> Any:
        """`_decide_growing_answer` when what both parts leave to read fits inline (a stream's usual
        check); else `SUSPENDS`, with nothing charged, read or noted."""
        thinking_length, text_length = event.thinking_length, event.text_length
        progress: dict[tuple[int, str], int] = event.context.scratch.setdefault(_ANSWER_PROGRESS, {})
        thinking_start = (
            self._growing_start(progress, self._thinking_key, event.settled_thinking_chars) if thinking_length else 0
        )
        text_start = self._growing_start(progress, self._text_key, event.settled_chars) if text_length else 0
        unread = (thinking_length - thinking_start if thinking_length > thinking_start else 0) + (
            text_length - text_start if text_length > text_start else 0
        )
        ledger = current_ledger()
        if not ledger.fits_inline(unread):
            return SUSPENDS
        # `over_budget`, with the ledger at hand; then both reads, which `fits_inline` said fit, counted at once.
        if not ledger.charge(self, thinking_length + text_length, growing=True):
            return too_large_decision(self.name, "on_model_response", ledger)
        ledger.inline(unread)
        findings = self._growing_part(
            progress, self._thinking_key, event.thinking_from, thinking_length, thinking_start,
            event.settled_thinking_chars, event.thinking_buffer, event,
        )
        found = self._growing_part(
            progress, self._text_key, event.text_from, text_length, text_start, event.settled_chars,
            event.text_buffer, event,
        )
        return self._answer_decision(findings, found) if findings or found else None

    async def _decide_whole_answer(self, answer: Answer) -> Decision | None:
        """A whole answer checked once (not streamed): each part read from its start, as the first
        check of a growing answer would, without noting where a next check would start reading."""
        thinking, text = answer.thinking, answer.text
        refusal = self.over_budget("on_model_response", len(thinking) + len(text), growing=True)
        if refusal is not None:
            return refusal
        ledger = current_ledger()
        thinking_found = (
            (self._scan_window(thinking, True) if ledger.inline(len(thinking)) else await self.scan(thinking))
            if thinking else []
        )
        text_found = (
            (self._scan_window(text, True) if ledger.inline(len(text)) else await self.scan(text)) if text else []
        )
        return self._answer_decision(thinking_found, text_found)

    def _answer_decision(self, thinking_found: list[Finding], text_found: list[Finding]) -> Decision | None:
        """The decision on an answer whose thinking and text gave these findings (None: nothing found)."""
        findings = thinking_found + text_found if thinking_found and text_found else thinking_found or text_found
        return self.decision_for("on_model_response", findings) if findings else None

    async def _decide_growing_answer(self, event: ModelResponse) -> Decision | None:
        """Check a streamed answer reading only what earlier checks could not have settled, so a
        long stream costs time in proportion to its length, not to its square. The text and the
        thinking are read apart, each from its own settled point.

        A finding that still has characters to release ends after `settled_chars`; one no longer
        than `window_chars` therefore starts at most that far before. A longer one (a PEM block)
        is found from its first characters on, so the last check saw it, or its beginning, ending
        after what was then released: reading again from the earliest such finding covers it.
        """
        thinking_length, text_length = event.thinking_length, event.text_length
        refusal = self.over_budget("on_model_response", thinking_length + text_length, growing=True)
        if refusal is not None:
            return refusal
        progress: dict[tuple[int, str], int] = event.context.scratch.setdefault(_ANSWER_PROGRESS, {})
        # Each part is read inline when it is short, else in slices (`scan`). The usual check, both
        # parts short, is taken without a coroutine by the plain hook (`_growing_answer_now`).
        findings = await self._growing_findings(
            progress, "thinking", event.thinking_from, thinking_length, event.settled_thinking_chars
        )
        found = await self._growing_findings(progress, "text", event.text_from, text_length, event.settled_chars)
        return self._answer_decision(findings, found)

    def _growing_start(self, progress: dict[tuple[int, str], int], key: tuple[int, str], settled: int) -> int:
        """Where the next read of a growing part starts: `window_chars` before what is settled, or
        earlier, at a finding still open at the last check."""
        start = settled - self.window_chars
        if start < 0:
            start = 0
        open_from = progress.get(key)
        if open_from is not None and open_from < start:
            start = open_from
        return start

    def _growing_part(
        self, progress: dict[tuple[int, str], int], key: tuple[int, str], read_from: Any, length: int, start: int,
        settled: int, buffer: GrowingText | None, event: ModelResponse,
    ) -> list[Finding]:
        """The findings of a part of a growing answer read now from `start` (the ledger agreed to
        it), noting where the next check starts reading."""
        if not length:  # nothing to read (an answer without thinking)
            progress[key] = 0
            return []
        if length > start:
            if self._scan_grown is not None and buffer is not None:
                findings = self._grown_findings(key, buffer, start, event)
            else:
                findings = self._scan_window(read_from(start), True)
            if findings:
                self._growing_progress(progress, key, start, length, settled, findings)
                return findings
        else:
            findings = []
        progress[key] = length  # what `_growing_progress` notes when nothing was found
        return findings

    def _grown_findings(
        self, key: tuple[int, str], buffer: GrowingText, start: int, event: ModelResponse
    ) -> list[Finding]:
        """`scan` of the part in `buffer` from `start`, by a detector told how much of it an earlier
        read found free of its literals (`scan_grown`): the same findings, but the text a check read
        before is not searched again (each check would otherwise read the window before its new text)."""
        free: dict[tuple[int, str], tuple[GrowingText, int, int]] = event.context.scratch.setdefault(_LITERAL_FREE, {})
        known = free.get(key)
        clean = 0
        # The same text (a request may stream more than one answer), and a stretch `start` falls in.
        if known is not None and known[0] is buffer and known[1] <= start < known[2]:
            clean = known[2] - start
        findings, literal_free = self._scan_grown(buffer.since(start), clean)  # type: ignore[misc]
        if literal_free:
            free[key] = (buffer, start, buffer.length)
        return findings

    async def _growing_findings(
        self, progress: dict[tuple[int, str], int], part: str, read_from: Any, length: int, settled: int
    ) -> list[Finding]:
        """The findings of the part of a growing answer not yet settled, read by `scan` (inline when
        short, in slices when long), noting where the next check starts reading."""
        key = self._progress_keys[part]
        start = self._growing_start(progress, key, settled)
        findings = await self.scan(read_from(start))
        self._growing_progress(progress, key, start, length, settled, findings)
        return findings

    def _growing_progress(
        self, progress: dict[tuple[int, str], int], key: tuple[int, str], start: int, length: int, settled: int,
        findings: list[Finding],
    ) -> None:
        # Findings not yet wholly released must be found again at the next check, and so must those
        # ending within the window of the end: more text may still extend them (a PEM block's end line).
        open_end = length - self.window_chars
        if settled < open_end:
            open_end = settled
        unreleased = [start + finding.start for finding in findings if start + finding.end >= open_end]
        progress[key] = min(unreleased) if unreleased else length
