"""Approval stores, in memory and in a real Redis, behave the same: held, approved or denied,
used once by the same tenant with the same request, expired after their TTL."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from capsem_proxy.confirm.store import HeldRequest, MemoryApprovalStore, RedisApprovalStore, request_fingerprint
from tests.services import REDIS_URL, require_service

# Long enough that a busy machine never lets an approval expire mid-test; the expiry test makes
# its own short-lived store.
_TTL_SECONDS = 60.0
_SHORT_TTL_SECONDS = 1.0


@pytest.fixture(params=["memory", "redis"])
async def make_store(request):
    made = []

    def make(ttl_seconds: float = _TTL_SECONDS):
        if request.param == "memory":
            return MemoryApprovalStore(ttl_seconds=ttl_seconds, max_pending=100)
        require_service("Redis", "127.0.0.1", 6379)
        made.append(RedisApprovalStore(REDIS_URL, ttl_seconds=ttl_seconds, prefix=f"capsem-test:{uuid.uuid4().hex}"))
        return made[-1]

    yield make
    for redis_store in made:
        await redis_store.close()


@pytest.fixture
def store(make_store):
    return make_store()


def _held(decision_id="d1", tenant="t1", fingerprint="f1"):
    return HeldRequest(decision_id, tenant, fingerprint, "policy", "reason", "details", time.time())


async def test_approved_request_is_used_once_by_the_same_tenant_and_request(store):
    await store.hold(_held())
    assert [held.decision_id for held in await store.pending()] == ["d1"]
    assert not await store.consume("d1", "t1", "f1")  # not approved yet
    assert (await store.decide("d1", approve=True)).status == "approved"
    assert await store.pending() == []
    assert not await store.consume("d1", "t2", "f1")
    assert not await store.consume("d1", "t1", "f2")
    assert await store.consume("d1", "t1", "f1")
    assert not await store.consume("d1", "t1", "f1")
    assert (await store.get("d1")).status == "used"


async def test_denied_request_cannot_be_approved_or_used(store):
    await store.hold(_held("d2"))
    assert (await store.decide("d2", approve=False)).status == "denied"
    assert (await store.decide("d2", approve=True)).status == "denied"
    assert not await store.consume("d2", "t1", "f1")


async def test_unknown_and_expired_ids(make_store):
    store = make_store(_SHORT_TTL_SECONDS)
    assert await store.decide("nope", approve=True) is None
    await store.hold(_held("d3"))
    await asyncio.sleep(_SHORT_TTL_SECONDS + 0.2)
    assert await store.get("d3") is None
    assert await store.pending() == []


async def test_concurrent_consumers_use_an_approval_once(store):
    await store.hold(_held("d4"))
    await store.decide("d4", approve=True)
    results = await asyncio.gather(*(store.consume("d4", "t1", "f1") for _ in range(20)))
    assert results.count(True) == 1


def test_fingerprint_depends_on_every_part():
    base = request_fingerprint("openai", "chat", "/chat/completions", b"{}")
    assert base != request_fingerprint("openai", "chat", "/chat/completions", b"{ }")
    assert base != request_fingerprint("gemini", "chat", "/chat/completions", b"{}")
    assert len(base) == 64
