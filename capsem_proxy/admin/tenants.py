"""Tenant names for the admin API and the dashboard.

The audit trail names a tenant by its id (a keyed hash of the caller's provider key, or whatever the
gateway put there). Where a human-readable name is known, answers carry it as `tenant_name` beside
`tenant_id`, and the `tenant` filter takes a name as well as an id. Names come from, in order:
a `tenant_name` the row itself carries, then the `TenantDirectory` the admin API was given (the
gateway's key store knows the tenant each key names). Without either, rows show the id.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import Any, Protocol

__all__ = ["NO_TENANT_NAMES", "TenantDirectory", "add_tenant_names", "resolve_tenant"]

logger = logging.getLogger("capsem_proxy.admin")


class TenantDirectory(Protocol):
    """Who a tenant id is. Implementations must answer quickly (a cache), never raise for an unknown id."""

    async def names(self, tenant_ids: Collection[str]) -> dict[str, str]:
        """The known names of these tenant ids (unknown ids are left out)."""

    async def tenant_ids(self, name: str) -> list[str]:
        """The ids of the tenant called `name` ([] when no tenant has that name)."""


class _NoTenantNames:
    """The directory while nothing names tenants: every id is shown as is."""

    async def names(self, tenant_ids: Collection[str]) -> dict[str, str]:
        return {}

    async def tenant_ids(self, name: str) -> list[str]:
        return []


NO_TENANT_NAMES: TenantDirectory = _NoTenantNames()


async def resolve_tenant(directory: TenantDirectory, value: str) -> list[str]:
    """The tenant ids the `tenant` filter selects: the named tenant's ids and `value` as an id."""
    ids = await directory.tenant_ids(value)
    return list(dict.fromkeys([*ids, value]))


async def add_tenant_names(directory: TenantDirectory, rows: Iterable[dict[str, Any]]) -> None:
    """Set `tenant_name` on every row whose tenant has a known name (rows naming one keep theirs)."""
    rows = list(rows)
    wanted = {row["tenant_id"] for row in rows if row.get("tenant_id") and not row.get("tenant_name")}
    if not wanted:
        return
    try:
        names = await directory.names(wanted)
    except Exception:  # names decorate an answer: without them it still holds every row, by id
        logger.exception("looking up tenant names failed")
        return
    if not names:
        return
    for row in rows:
        if not row.get("tenant_name") and row.get("tenant_id") in names:
            row["tenant_name"] = names[row["tenant_id"]]
