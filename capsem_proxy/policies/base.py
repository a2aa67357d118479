"""The proxy's policy interface and the settings every configured policy carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["ConfiguredPolicy", "ProxyPolicy"]


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
