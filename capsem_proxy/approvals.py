"""Held requests awaiting a human's approval (CONFIRM verdicts).

A held request is remembered by its decision id together with the tenant and a fingerprint
of the exact request; once an admin approves the id, the same tenant retrying the same
request with `x-capsem-approval: <decision id>` passes once. Kept in process memory: with
several workers or replicas, approvals need a shared store (planned: Redis).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["ApprovalStore", "HeldRequest", "request_fingerprint"]


def request_fingerprint(provider: str, operation: str, path: str, body: bytes) -> str:
    """A hash naming one exact request (never the request itself)."""
    digest = hashlib.sha256()
    for part in (provider, operation, path):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


@dataclass(slots=True)
class HeldRequest:
    """One request held for confirmation."""

    decision_id: str
    tenant_id: str
    fingerprint: str
    policy: str
    reason: str
    details: str
    held_at: float
    status: str = "pending"  # pending | approved | denied | used


class ApprovalStore:
    """Held requests by decision id, bounded and expiring."""

    def __init__(self, ttl_seconds: float, max_pending: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_pending
        self._held: OrderedDict[str, HeldRequest] = OrderedDict()

    def _expire(self) -> None:
        horizon = time.time() - self._ttl
        while self._held:
            oldest = next(iter(self._held.values()))
            if oldest.held_at >= horizon and len(self._held) <= self._max:
                return
            self._held.popitem(last=False)

    def hold(self, held: HeldRequest) -> None:
        """Remember a request held for confirmation."""
        self._held[held.decision_id] = held
        self._expire()

    def pending(self) -> list[HeldRequest]:
        """Held requests not yet decided, oldest first."""
        self._expire()
        return [held for held in self._held.values() if held.status == "pending"]

    def get(self, decision_id: str) -> HeldRequest | None:
        self._expire()
        return self._held.get(decision_id)

    def decide(self, decision_id: str, approve: bool) -> HeldRequest | None:
        """Approve or deny a pending request; None when unknown or expired."""
        held = self.get(decision_id)
        if held is None or held.status != "pending":
            return held
        held.status = "approved" if approve else "denied"
        return held

    def consume(self, decision_id: str, tenant_id: str, fingerprint: str) -> bool:
        """True once for an approved id retried by the same tenant with the same request."""
        held = self.get(decision_id)
        if held is None or held.status != "approved":
            return False
        if held.tenant_id != tenant_id or held.fingerprint != fingerprint:
            return False
        held.status = "used"
        return True
