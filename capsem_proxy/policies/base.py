"""The proxy's policy interface and the settings every configured policy carries."""

from __future__ import annotations

import dis
import inspect
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["ConfiguredPolicy", "ProxyPolicy", "never_suspends"]

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
class ProxyPolicy(Protocol):
    """A policy as the pipeline sees it: a name and any of the hook methods.

    Each hook method takes the hook event (see `capsem_proxy.hooks`) and returns a Decision,
    or None for "no opinion". Hook methods are async.
    """

    name: str


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

    def implements(self, hook_name: str) -> bool:
        """True when the policy has an opinion on `hook_name`."""
        if self.only_hooks is not None and hook_name not in self.only_hooks:
            return False
        implemented = getattr(self.policy, "implemented_hooks", None)
        if implemented is not None:
            return hook_name in implemented
        return callable(getattr(self.policy, hook_name, None))

    def hook(self, hook_name: str) -> Any:
        """The bound hook method (call only after `implements`)."""
        return getattr(self.policy, hook_name)
