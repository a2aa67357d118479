"""Errors of the audit stores."""

from __future__ import annotations

__all__ = ["ChainKeyMismatch", "SchemaMismatch"]


class SchemaMismatch(Exception):
    """The store's layout is not the one this code reads (newer, or not yet migrated)."""


class ChainKeyMismatch(Exception):
    """The store's chain is keyed with another key than this proxy's (another server secret)."""

    def __init__(self, description: str, stored_id: str, own_id: str) -> None:
        super().__init__(
            f"the audit chain of {description} is keyed with key id {stored_id}, this proxy's key id is {own_id}: "
            "every proxy writing to one store needs the same server secret (server.tenant_secret, or the "
            "tenant-secret file in server.data_dir); restore it, or start a new audit store"
        )
