"""Held provider keys sealed under the master key: bound to their gateway key, opened by former master
keys during a rotation, and re-sealed by `capsem-proxy keys rotate-master`."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from capsem_proxy.cli import main
from capsem_proxy.gateway.crypto import MasterKeyError, MasterKeys, load_master_keys
from capsem_proxy.gateway.store import SQLiteKeyStore

OLD = "old-master-key-0123456789abcdef0123456789"
NEW = "new-master-key-0123456789abcdef0123456789"


def test_seal_opens_only_with_its_key_and_binding():
    keys = MasterKeys(OLD)
    sealed = keys.seal("sk-secret-provider-key", "gk_1")
    assert "sk-secret" not in sealed
    assert keys.open(sealed, "gk_1") == "sk-secret-provider-key"
    with pytest.raises(MasterKeyError):
        keys.open(sealed, "gk_2")  # copied to another key's row
    with pytest.raises(MasterKeyError):
        MasterKeys(NEW).open(sealed, "gk_1")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(MasterKeyError):
        keys.open(tampered, "gk_1")


def test_short_master_keys_are_refused():
    with pytest.raises(MasterKeyError):
        MasterKeys("short")


def test_previous_keys_open_and_reseal_is_needed():
    sealed = MasterKeys(OLD).seal("sk-x-0123456789", "gk_1")
    rotated = load_master_keys("MK", {"MK": NEW, "MK_PREVIOUS": OLD})
    assert rotated is not None and rotated.open(sealed, "gk_1") == "sk-x-0123456789"
    assert rotated.needs_reseal(sealed)
    assert not rotated.needs_reseal(rotated.seal("sk-x", "gk_1"))
    assert load_master_keys("MK", {}) is None


def test_rotate_master_through_the_cli(tmp_path, monkeypatch, capsys):
    db = tmp_path / "audit.db"
    config = tmp_path / "proxy.yaml"
    config.write_text(yaml.safe_dump({"audit": {"url": f"sqlite:///{db}"}, "auth": {"mode": "gateway"}}))
    monkeypatch.setenv("CAPSEM_PROXY_MASTER_KEY", OLD)
    monkeypatch.setenv("HELD_OPENAI", "sk-held-for-rotation-0123")
    assert main(["keys", "create", "--config", str(config), "--tenant", "team-r",
                 "--provider-key-env", "openai=HELD_OPENAI"]) == 0
    created = capsys.readouterr()
    assert "cpk-" in created.out and "sk-held-for-rotation" not in created.out

    monkeypatch.setenv("CAPSEM_PROXY_MASTER_KEY", NEW)
    monkeypatch.delenv("CAPSEM_PROXY_MASTER_KEY_PREVIOUS", raising=False)
    assert main(["keys", "rotate-master", "--config", str(config)]) == 2  # the old key is needed to open
    monkeypatch.setenv("CAPSEM_PROXY_MASTER_KEY_PREVIOUS", OLD)
    assert main(["keys", "rotate-master", "--config", str(config)]) == 0
    assert "of 1 gateway keys" in capsys.readouterr().out

    async def opened() -> str:
        store = SQLiteKeyStore(db)
        await store.open()
        try:
            (key,) = await store.list()
            return MasterKeys(NEW).open(key.sealed_provider_keys["openai"], key.id)
        finally:
            await store.close()

    assert asyncio.run(opened()) == "sk-held-for-rotation-0123"  # the new key alone opens it now
    assert main(["keys", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "team-r" in listing and "sk-held" not in listing
