"""The approval routes: list and read held requests, and approve or deny one."""

from __future__ import annotations

from capsem_proxy.admin.params import parse_segment
from capsem_proxy.admin.replies import Reply, error_reply, json_reply, not_allowed
from capsem_proxy.confirm.store import ApprovalStore

__all__ = ["answer_approvals"]


async def answer_approvals(approvals: ApprovalStore, method: str, parts: list[str]) -> Reply:
    """Answer `/admin/approvals[/{decision_id}[/approve|/deny]]`, split into `parts` at the slashes."""
    if len(parts) in (1, 2) and method != "GET":
        return not_allowed("GET")
    if len(parts) == 1:
        return json_reply({"approvals": [held.as_dict() for held in await approvals.pending()]})
    if len(parts) == 2:
        held = await approvals.get(parse_segment(parts[1], "decision_id"))
        return json_reply(held.as_dict()) if held else error_reply(404, "unknown or expired decision id")
    if len(parts) == 3 and parts[2] in ("approve", "deny"):
        if method != "POST":
            return not_allowed("POST")
        held = await approvals.decide(parse_segment(parts[1], "decision_id"), approve=parts[2] == "approve")
        if held is None:
            return error_reply(404, "unknown or expired decision id")
        expected = "approved" if parts[2] == "approve" else "denied"
        if held.status != expected:
            return error_reply(409, f"decision {held.decision_id} is already {held.status}")
        return json_reply(held.as_dict())
    return error_reply(404, "not found")
