"""The verdict each configurable policy action stands for.

Policies name actions in their options (`log`, `block`, `confirm`, `redact`); each policy's own
options model says which of them it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from capsem_proxy.decisions import Verdict

__all__ = ["ACTION_VERDICTS"]

ACTION_VERDICTS: Mapping[str, Verdict] = MappingProxyType({
    "log": Verdict.LOG,
    "block": Verdict.BLOCK,
    "confirm": Verdict.CONFIRM,
    "redact": Verdict.REDACT,
})
