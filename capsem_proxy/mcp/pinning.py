"""Pinned tool definitions ("rug pull" protection): the first definition seen of each server's tool
is recorded as a digest; a definition that differs later gets the configured verdict.

With CONFIRM (the default) the change is held in the approval store, like a held request: an
approver approves or denies its decision id (`/admin/approvals`, the dashboard's Approvals view).
Until then every listing and call of the tool is refused with that same decision id; once
approved, the new definition becomes the pin (every replica sharing the store sees it); once
denied, the tool stays refused until its definition returns to the pinned one.
"""

from __future__ import annotations

import logging
import time

from capsem_proxy.confirm.store import ApprovalStore, HeldRequest, request_fingerprint
from capsem_proxy.decisions import Decision, Verdict, new_decision_id
from capsem_proxy.mcp.pin_store import Pin, PinStore
from capsem_proxy.mcp.settings import PinAction
from capsem_proxy.pipeline import POLICY_ERROR_REASON

__all__ = ["PIN_POLICY", "ToolPins"]

logger = logging.getLogger("capsem_proxy.mcp")

PIN_POLICY = "mcp-pins"
# How long a digest found equal to its pin is trusted without asking the store again.
_CACHE_SECONDS = 5.0
_CACHE_MAX = 50_000
_VERDICTS = {"confirm": Verdict.CONFIRM, "block": Verdict.BLOCK, "log": Verdict.LOG}


class ToolPins:
    """Checks tool definitions against their pins."""

    def __init__(
        self, store: PinStore, approvals: ApprovalStore, action: PinAction, *, confirmations_hold: bool = True
    ) -> None:
        self.store = store
        self._approvals = approvals
        self._verdict = _VERDICTS[action]
        self._holds = action == "confirm" and confirmations_hold
        self._matching: dict[tuple[str, str], tuple[str, float]] = {}

    async def check(self, server: str, tool: str, digest: str, tenant_id: str) -> Decision | None:
        """None when `digest` is the tool's pin (or its first definition); else the decision on the change."""
        key = (server, tool)
        cached = self._matching.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] == digest and cached[1] > now:
            return None
        started = time.perf_counter()
        try:
            decision = await self._check_stored(server, tool, digest, tenant_id)
        except Exception as exc:  # a store that fails must not let a changed tool through
            logger.warning("tool pin store %s failed (%s)", self.store.description, type(exc).__name__)
            decision = Decision(
                Verdict.BLOCK, PIN_POLICY, "on_tool_call", reason=POLICY_ERROR_REASON,
                details=f"the tool pin store is unavailable ({type(exc).__name__})", subject=tool,
            )
        if decision is None or (decision.verdict is Verdict.LOG and decision.reason == "tool_change_approved"):
            if len(self._matching) >= _CACHE_MAX:
                self._matching.clear()
            self._matching[key] = (digest, now + _CACHE_SECONDS)
        if decision is not None:
            decision.latency_ms = (time.perf_counter() - started) * 1000.0
            decision.started_at = started
        return decision

    async def _check_stored(self, server: str, tool: str, digest: str, tenant_id: str) -> Decision | None:
        pin = await self.store.get(server, tool) or await self.store.first(server, tool, digest)
        if pin.digest == digest:
            return None
        what = f"tool '{tool[:64]}' of MCP server '{server}' changed its definition since it was pinned"
        if not self._holds:
            return Decision(
                self._verdict, PIN_POLICY, "on_tool_call", reason="tool_changed", details=what, subject=tool
            )
        return await self._confirmation(server, tool, digest, tenant_id, pin, what)

    async def _confirmation(
        self, server: str, tool: str, digest: str, tenant_id: str, pin: Pin, what: str
    ) -> Decision:
        if pin.pending_digest == digest and pin.pending_decision:
            held = await self._approvals.get(pin.pending_decision)
            if held is not None:
                decision_id = held.decision_id
                if held.status in ("approved", "used"):
                    await self.store.accept(server, tool, digest)
                    await self._approvals.consume(decision_id, held.tenant_id, held.fingerprint)
                    return Decision(
                        Verdict.LOG, PIN_POLICY, "on_tool_call", reason="tool_change_approved",
                        details=f"{what}; the change was approved (decision {decision_id})", subject=tool,
                    )
                if held.status == "denied":
                    return Decision(
                        Verdict.BLOCK, PIN_POLICY, "on_tool_call", reason="tool_changed",
                        details=f"{what}; the change was denied (decision {decision_id})", subject=tool,
                    )
                return Decision(
                    Verdict.CONFIRM, PIN_POLICY, "on_tool_call", reason="tool_changed", details=what,
                    subject=tool, decision_id=decision_id,
                )
        decision = Decision(
            Verdict.CONFIRM, PIN_POLICY, "on_tool_call", reason="tool_changed", details=what, subject=tool,
            decision_id=new_decision_id(),
        )
        await self._approvals.hold(
            HeldRequest(
                decision_id=decision.decision_id,
                tenant_id=tenant_id,
                fingerprint=request_fingerprint(f"mcp:{server}", "tool_pin", tool, digest.encode()),
                policy=PIN_POLICY,
                reason="tool_changed",
                details=what,
                held_at=time.time(),
            )
        )
        await self.store.hold(server, tool, digest, decision.decision_id)
        return decision
