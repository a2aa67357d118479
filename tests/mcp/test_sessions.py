"""Sessions bound to their caller without shared state, and the bounded memory of what each
session was offered."""

from __future__ import annotations

from capsem_proxy.mcp.sessions import SessionBinder, ToolCatalogs

SECRET = b"test secret"


def test_a_bound_session_unbinds_only_for_its_caller_and_server():
    binder = SessionBinder(SECRET)
    client_id = binder.bind("files", "tenant-a", "abc.def-123")
    assert client_id.startswith("abc.def-123.")
    assert binder.unbind("files", "tenant-a", client_id) == "abc.def-123"
    assert binder.unbind("files", "tenant-b", client_id) is None
    assert binder.unbind("other", "tenant-a", client_id) is None
    assert binder.unbind("files", "tenant-a", "abc.def-123") is None
    assert binder.unbind("files", "tenant-a", client_id[:-1] + ("A" if client_id[-1] != "A" else "B")) is None
    assert binder.unbind("files", "tenant-a", "x" * 5000) is None
    assert SessionBinder(b"another secret").unbind("files", "tenant-a", client_id) is None


def test_the_audit_names_a_session_by_a_keyed_hash_never_its_id():
    binder = SessionBinder(SECRET)
    name = binder.audit_id("files", "secret-session-id")
    assert name.startswith("mcp-") and "secret-session-id" not in name
    assert name == binder.audit_id("files", "secret-session-id") != binder.audit_id("files", "other")


def test_catalogs_keep_pages_drop_the_least_recent_and_go_stale_on_change():
    catalogs = ToolCatalogs(max_sessions=2, ttl_seconds=3600)
    catalogs.offer("s1", [{"name": "a", "inputSchema": {"type": "object"}}], first_page=True, last_page=False)
    catalog = catalogs.offer("s1", [{"name": "b"}], first_page=False, last_page=True)
    assert set(catalog.definitions) == {"a", "b"} and catalog.complete
    assert catalog.definitions["a"].parameters == {"type": "object"} and catalog.digests["a"]
    catalogs.offer("s2", [], first_page=True, last_page=True)
    catalogs.get("s1")
    catalogs.offer("s3", [], first_page=True, last_page=True)
    assert catalogs.get("s2") is None and catalogs.get("s1") is not None
    catalogs.stale("s1")
    assert catalogs.get("s1").stale
    assert catalogs.offer("s1", [{"name": "c"}], first_page=True, last_page=True).definitions.keys() == {"c"}


def test_catalogs_expire_idle_sessions():
    catalogs = ToolCatalogs(max_sessions=10, ttl_seconds=0.000001)
    catalogs.offer("s1", [{"name": "a"}], first_page=True, last_page=True)
    assert catalogs.get("s1") is None
