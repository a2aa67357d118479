"""The proxy's policy interface and the settings every configured policy carries."""

from __future__ import annotations

import dis
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["SUSPENDS", "ConfiguredPolicy", "Policy", "PolicyTraits", "never_suspends"]

# What a hook's plain form (a built-in policy's `sync_hooks`) returns when it cannot decide without
# suspending (a text too long to read before the event loop has a turn): nothing was done, and the
# pipeline runs the hook itself.
SUSPENDS: Any = object()
# Opcodes through which a coroutine can suspend (await, async with, async for).
_SUSPENDING_OPCODES = frozenset({"GET_AWAITABLE", "BEFORE_ASYNC_WITH", "GET_AITER", "GET_ANEXT", "YIELD_VALUE", "SEND"})


def never_suspends(function: Any) -> bool:
    """True when `function` is a coroutine function whose own code contains no await point,
    so calling it runs to completion in its first step."""
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    if code is None or not code.co_flags & inspect.CO_COROUTINE:
        return False
    return not any(instruction.opname in _SUSPENDING_OPCODES for instruction in dis.get_instructions(code))


@runtime_checkable
class Policy(Protocol):
    """A policy, as the proxy loads and runs it (see docs/writing-policies.md).

    Required: a `name` and at least one hook method, each `async def hook(self, event)` taking
    the hook's event (`capsem_proxy.hooks`) and returning a `Decision`, or None for "no
    opinion": `on_model_call(ModelCall)`, `on_tool_call(ToolCall)`,
    `on_tool_response(ToolResponse)`, `on_model_response(ModelResponse)`. A missing method
    means the policy has no opinion on that hook.

    Optional, on the class: `from_config(options: dict) -> Policy | None` builds the policy from
    its configured `options` (else the class is called with them as keyword arguments; None
    disables it), and the traits of `PolicyTraits`, read once at load time.
    """

    name: str


@dataclass(frozen=True, slots=True)
class PolicyTraits:
    """What a policy may declare about itself, each as an optional attribute of the same name
    (the default applies when it is absent). Read once when the policy is loaded: the pipeline
    never probes a policy per request."""

    # Answer text a finding of this policy can span: a streamed answer holds back at least
    # this many characters, so no finding is released half-seen.
    window_chars: int = 0
    # The policy must see the whole answer before any of it is released (stream mode `buffer`).
    needs_whole_answer: bool = False
    # `on_model_response` reads a growing answer only from its unsettled end (`text_from`), so a
    # stream may call it at every check, not only at the end of the hold-back window.
    incremental_answers: bool = False
    # The policy's detectors account for the text they screen in the request's ledger.
    screens_text: bool = False
    # Hooks whose code never awaits, to run inline without a task (default: found by reading
    # each hook's bytecode).
    inline_hooks: frozenset[str] | None = None
    # The hooks the policy implements (default: its methods named after a hook).
    implemented_hooks: frozenset[str] | None = None
    # For an incremental answer reader: `stream_hold(text) -> int`, where in the unapproved end
    # `text` of a streamed answer a finding may still be in progress (its length when nowhere).
    # A stream then holds only from there instead of `window_chars` (capsem_proxy.detectors.holds).
    stream_hold: Callable[[str], int] | None = None

    @classmethod
    def of(cls, policy: Any) -> PolicyTraits:
        """The traits `policy` declares, checked for their types."""
        window_chars = getattr(policy, "window_chars", 0) or 0
        if isinstance(window_chars, bool) or not isinstance(window_chars, int) or window_chars < 0:
            raise TypeError(f"window_chars must be a non-negative int, not {window_chars!r}")
        inline = getattr(policy, "inline_hooks", None)
        implemented = getattr(policy, "implemented_hooks", None)
        stream_hold = getattr(policy, "stream_hold", None)
        if stream_hold is not None and not callable(stream_hold):
            raise TypeError(f"stream_hold must be callable, not {stream_hold!r}")
        return cls(
            window_chars=window_chars,
            needs_whole_answer=bool(getattr(policy, "needs_whole_answer", False)),
            incremental_answers=bool(getattr(policy, "incremental_answers", False)),
            screens_text=bool(getattr(policy, "screens_text", False)),
            inline_hooks=frozenset(inline) if inline is not None else None,
            implemented_hooks=frozenset(implemented) if implemented is not None else None,
            stream_hold=stream_hold,
        )


@dataclass(slots=True)
class ConfiguredPolicy:
    """A loaded policy with its run-time settings."""

    policy: Any
    name: str
    fail_open: bool = False
    timeout_s: float = 0.2
    # When set, the policy is only consulted on these hooks (configured `hooks:`).
    only_hooks: frozenset[str] | None = None
    # Hooks whose code never awaits: the pipeline runs them inline, without a task.
    inline_hooks: frozenset[str] = frozenset()
    # Shadow mode: decisions are recorded (marked shadow), never enforced.
    shadow: bool = False
    # What the policy declares about itself, read from it once.
    traits: PolicyTraits = field(init=False)
    # Inline hooks the policy also offers as plain functions (its `sync_hooks`: the hook's decision,
    # or SUSPENDS when the hook must run), so the usual call creates and drives no coroutine.
    sync_hooks: dict[str, Callable[[Any], Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.traits = PolicyTraits.of(self.policy)
        offered = getattr(self.policy, "sync_hooks", None)
        self.sync_hooks = (
            {hook: function for hook, function in offered.items() if hook in self.inline_hooks}
            if isinstance(offered, dict) else {}
        )

    def implements(self, hook_name: str) -> bool:
        """True when the policy has an opinion on `hook_name`."""
        if self.only_hooks is not None and hook_name not in self.only_hooks:
            return False
        implemented = self.traits.implemented_hooks
        if implemented is not None:
            return hook_name in implemented
        return callable(getattr(self.policy, hook_name, None))

    def hook(self, hook_name: str) -> Any:
        """The bound hook method (call only after `implements`)."""
        return getattr(self.policy, hook_name)
