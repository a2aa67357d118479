"""Errors of the audit stores."""

from __future__ import annotations

__all__ = ["SchemaMismatch"]


class SchemaMismatch(Exception):
    """The store's layout is not the one this code reads (newer, or not yet migrated)."""
