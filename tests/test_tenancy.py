"""Tenant ids are keyed hashes of the caller's key; the secret is kept in the data dir."""

import hashlib
import hmac

from capsem_proxy.tenancy import SECRET_FILE_NAME, TenantHasher, load_or_create_secret


def test_tenant_id_is_hmac_sha256_of_the_key():
    hasher = TenantHasher(b"secret")
    expected = hmac.new(b"secret", b"sk-key", hashlib.sha256).hexdigest()[:32]
    assert hasher.tenant_id("sk-key") == expected
    assert hasher.tenant_id("sk-key") == expected  # stable
    assert hasher.tenant_id("sk-other") != expected
    assert "sk-key" not in hasher.tenant_id("sk-key")


def test_tenant_id_matches_hmac_for_every_secret_length():
    # Secrets shorter than, equal to and longer than SHA-256's 64-byte block (hashed first).
    for secret in (b"", b"s", b"k" * 63, b"k" * 64, b"k" * 65, bytes(range(256)) * 3):
        for key in ("sk-key", "é-ключ", "x" * 500):
            expected = hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:32]
            assert TenantHasher(secret).tenant_id(key) == expected


def test_secret_is_generated_once_and_kept(tmp_path):
    first = load_or_create_secret(tmp_path, None)
    assert len(first) == 64
    assert (tmp_path / SECRET_FILE_NAME).stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(tmp_path, None) == first


def test_configured_secret_wins(tmp_path):
    assert load_or_create_secret(tmp_path, "mine") == b"mine"
    assert not (tmp_path / SECRET_FILE_NAME).exists()


def test_replicas_starting_together_agree_on_one_secret(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: load_or_create_secret(tmp_path, None), range(32)))
    assert len(secrets) == 1 and len(secrets.pop()) == 64
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE_NAME]


def test_an_empty_secret_file_is_refused(tmp_path):
    import pytest

    from capsem_proxy.config import ConfigError

    (tmp_path / SECRET_FILE_NAME).write_bytes(b"")
    with pytest.raises(ConfigError, match="empty"):
        load_or_create_secret(tmp_path, None)
