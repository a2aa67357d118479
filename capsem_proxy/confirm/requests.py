"""CONFIRM verdicts on requests: hold the request under its decision id, and let the approved,
identical retry (`x-capsem-approval: <decision id>`) through once."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from capsem_proxy.confirm.store import ApprovalStore, HeldRequest, request_fingerprint
from capsem_proxy.decisions import Decision, Verdict, new_decision_id
from capsem_proxy.observability import Observer

if TYPE_CHECKING:
    from capsem_proxy.proxying.flow import Flow

__all__ = ["APPROVAL_HEADER", "Confirmations"]

APPROVAL_HEADER = "x-capsem-approval"


class Confirmations:
    """Held requests and their approved retries, recorded in the audit trail."""

    def __init__(self, approvals: ApprovalStore, observer: Observer) -> None:
        self._approvals = approvals
        self._observer = observer

    async def hold(self, flow: Flow, governing: Decision) -> None:
        """Remember the request for an approver, under the governing decision's id."""
        route = flow.route
        await self._approvals.hold(
            HeldRequest(
                decision_id=governing.decision_id,
                tenant_id=flow.tenant_id,
                fingerprint=request_fingerprint(route.provider, route.operation, route.upstream_path, flow.body),
                policy=governing.policy,
                reason=governing.reason,
                details=governing.details,
                held_at=time.time(),
            )
        )

    async def approved_retry(self, flow: Flow) -> str | None:
        """The approval id when the request retries an approved, identical held request (once)."""
        approval_id = flow.headers.get(APPROVAL_HEADER)
        if not approval_id:
            return None
        route = flow.route
        fingerprint = request_fingerprint(route.provider, route.operation, route.upstream_path, flow.body)
        if not await self._approvals.consume(approval_id, flow.tenant_id, fingerprint):
            return None
        used = Decision(
            Verdict.LOG, "approval", "on_model_call", reason="approved",
            details=f"confirmation {approval_id} approved by an admin", decision_id=new_decision_id(),
        )
        if flow.context is not None:
            self._observer.decisions(flow.context, [used])
        return approval_id
