"""CONFIRM: requests a policy holds for a human's approval, in one place.

- `store`: held requests by decision id (process memory, or Redis shared by workers), each
  remembered by a fingerprint of the exact request, never the request itself.
- `requests`: what the request path does with a CONFIRM verdict: hold the request, and let its
  approved, identical retry (`x-capsem-approval: <decision id>`) through once.
- `admin_routes`: `/admin/approvals…`, where an approver lists, approves or denies them.
"""

from capsem_proxy.confirm.store import (
    ApprovalStore,
    HeldRequest,
    MemoryApprovalStore,
    RedisApprovalStore,
    open_approval_store,
    request_fingerprint,
)

__all__ = [
    "ApprovalStore",
    "HeldRequest",
    "MemoryApprovalStore",
    "RedisApprovalStore",
    "open_approval_store",
    "request_fingerprint",
]
