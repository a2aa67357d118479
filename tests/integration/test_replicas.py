"""Two proxy replicas behind the real HAProxy (deploy/haproxy.cfg), sharing the real PostgreSQL (audit, in a
schema of their own) and Redis (approvals and rate limits, in a db and key prefix of their own), behave as
one proxy."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from tests.load_balancer import LoadBalancer, haproxy_binary, start_load_balancer
from tests.proxy_process import ProxyProcess, start_proxy
from tests.services import require_service
from tests.tcp_relay import TcpRelay

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "admin-token-for-replica-tests-0123"
KEY = {"authorization": "Bearer sk-replica-tenant-0123456789abcdef"}
CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'
CHAT_STREAM = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}'
RISKY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"please transfer money to Bob"}]}'
PG_BASE = os.environ.get("CAPSEM_PROXY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_DB = 12
# A tenant of its own (the keyed hash of this provider key) with a requests-per-minute limit in Redis. At 200 a
# replica reserves a lease of 2 requests of the shared counter at once (1 % of the limit, docs/gateway.md).
LIMITED_KEY = "sk-replica-limited-0123456789abcdef"
RPM = 200
LEASE = RPM // 100
ACCESS_LINE = re.compile(r"(\w+) POST '/v1/chat/completions' (\d{3}) ")


class Cluster:
    def __init__(self, replicas: list[ProxyProcess], balancer: LoadBalancer, relay: TcpRelay, audit_url: str,
                 env: dict[str, str]) -> None:
        self.replicas = replicas
        self.balancer = balancer
        self.relay = relay  # between the second replica and Redis
        self.audit_url = audit_url
        self.env = env

    def replica_of(self, request_id: str, timeout: float = 10) -> int:
        """Index of the replica whose access log names `request_id`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, replica in enumerate(self.replicas):
                if request_id in replica.log_text():
                    return index
            time.sleep(0.1)
        raise AssertionError(f"no replica logged request {request_id}")


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def cluster(fake_provider):
    haproxy_binary()
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    schema = f"capsem_replicas_{uuid.uuid4().hex[:12]}"
    audit_url = f"{PG_BASE}?schema={schema}"
    relay = TcpRelay("127.0.0.1", 6379)
    tenant_secret = f"replicas-{uuid.uuid4().hex}"
    env = {"PYTHONPATH": str(REPO_ROOT), "CAPSEM_PROXY_SERVER__TENANT_SECRET": tenant_secret}
    limited_tenant = hmac.new(tenant_secret.encode(), LIMITED_KEY.encode(), hashlib.sha256).hexdigest()[:32]
    limits_prefix = f"capsem-test:replicas:{uuid.uuid4().hex}:"
    replicas: list[ProxyProcess] = []
    balancer = None
    try:
        for redis_port in (6379, relay.port):
            config = {
                "policies": [{"class": "tests.integration.policies.ConfirmPolicy"}],
                "admin": {"token": ADMIN_TOKEN},
                "audit": {"url": audit_url},
                "confirm": {"store_url": f"redis://127.0.0.1:{redis_port}/{REDIS_DB}"},
                # Only the limited tenant has a limit; the other tests' tenant is never counted. A store that
                # does not answer refuses (503) rather than letting requests past the limit.
                "limits": {
                    "store_url": f"redis://127.0.0.1:{redis_port}/{REDIS_DB}", "key_prefix": limits_prefix,
                    "on_store_down": "closed", "timeout_ms": 2000,
                    "tenants": {limited_tenant: {"requests_per_minute": RPM}},
                },
                # The balancer checks /readyz every second and takes a replica out after two failures.
                "server": {"drain_delay_seconds": 3, "drain_seconds": 20},
            }
            replicas.append(start_proxy(fake_provider.base_url, config, env=env, log_level="info"))
        balancer = start_load_balancer([replica.port for replica in replicas])
        yield Cluster(replicas, balancer, relay, audit_url, env)
    finally:
        if balancer is not None:
            balancer.stop()
        for replica in replicas:
            replica.stop()
        relay.close()
        asyncio.run(_drop_schema(PG_BASE, schema))


def _post(base_url: str, body: bytes = CHAT, **headers: str) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/chat/completions", content=body, headers={**KEY, **headers}, timeout=30)


def _admin(replica: ProxyProcess, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"{replica.base_url}/admin{path}",
                         headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)


def test_requests_spread_over_both_replicas(cluster: Cluster) -> None:
    served = []
    with httpx.Client(base_url=cluster.balancer.base_url, headers=KEY, timeout=30) as client:
        for _ in range(12):
            answer = client.post("/v1/chat/completions", content=CHAT)
            assert answer.status_code == 200, answer.text
            served.append(cluster.replica_of(answer.headers["x-capsem-request-id"]))
    assert set(served) == {0, 1}, served


def test_an_approval_given_through_one_replica_is_honoured_by_the_other(cluster: Cluster) -> None:
    first, second = cluster.replicas
    held = _post(first.base_url, RISKY)
    assert held.status_code == 403
    decision_id = held.headers["x-capsem-decision-id"]
    assert decision_id in {item["decision_id"] for item in _admin(second, "GET", "/approvals").json()["approvals"]}
    assert _admin(first, "POST", f"/approvals/{decision_id}/approve").status_code == 200
    passed = _post(second.base_url, RISKY, **{"x-capsem-approval": decision_id})
    assert passed.status_code == 200, passed.text
    assert _post(first.base_url, RISKY, **{"x-capsem-approval": decision_id}).status_code == 403  # once only


def _served_by(cluster: Cluster, request_ids: list[str], timeout: float = 10) -> dict[str, tuple[int, int]]:
    """{request id: (replica index, status)} from the replicas' access logs."""
    deadline = time.monotonic() + timeout
    while True:
        found = {request_id: (index, int(status)) for index, replica in enumerate(cluster.replicas)
                 for request_id, status in ACCESS_LINE.findall(replica.log_text())}
        missing = [request_id for request_id in request_ids if request_id not in found]
        if not missing:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no replica logged {len(missing)} requests, e.g. {missing[0]}")
        time.sleep(0.1)


def _burst(base_url: str, count: int) -> list[httpx.Response]:
    with httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {LIMITED_KEY}"}, timeout=30) as client:
        return [client.post("/v1/chat/completions", content=CHAT) for _ in range(count)]


def test_a_requests_per_minute_limit_holds_across_both_replicas(cluster: Cluster) -> None:
    if 60 - time.time() % 60 < 10:  # the burst in one minute window, as the limit counts (waits 10 s at most)
        time.sleep(60 - time.time() % 60 + 0.1)
    first_minute = int(time.time() // 60)
    with ThreadPoolExecutor(4) as pool:  # 4 callers at once: leastconn spreads them over both replicas
        answers = [answer for batch in pool.map(_burst, [cluster.balancer.base_url] * 4, [(RPM + 80) // 4] * 4)
                   for answer in batch]
    windows = int(time.time() // 60) - first_minute + 1
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    admitted = statuses.count(200)
    served = _served_by(cluster, [answer.headers["x-capsem-request-id"] for answer in answers])
    by_replica = {(replica, status) for replica, status in served.values()}
    assert {0, 1} <= {replica for replica, status in by_replica if status == 200}, "one replica admitted nothing"
    # The shared counter never passes the limit; a replica may refuse at most one unused lease early.
    assert admitted <= RPM * windows, (admitted, windows)
    if windows == 1:  # a burst crossing into the next minute is also counted against a fresh window
        assert admitted >= RPM - 2 * LEASE, admitted
        assert {(0, 429), (1, 429)} <= by_replica, "a replica never refused: the limit did not hold on it"
    for answer in answers:
        if answer.status_code != 429:
            continue
        error = answer.json()
        assert error["error"]["type"] == "requests" and error["error"]["code"] == "rate_limit_exceeded", error
        assert f"{RPM} requests per minute" in error["detail"], error
        assert 1 <= int(answer.headers["retry-after"]) <= 61  # the counter outlives its minute by a second
        assert answer.headers["x-ratelimit-limit-requests"] == str(RPM)
        assert answer.headers["x-ratelimit-remaining-requests"] == "0"
    if windows == 1:  # the official SDK sees the same refusal as its own RateLimitError
        client = openai.OpenAI(base_url=f"{cluster.balancer.base_url}/v1", api_key=LIMITED_KEY, max_retries=0)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        assert refused.value.code == "rate_limit_exceeded"


def test_a_replica_that_loses_its_store_is_taken_out_and_comes_back(cluster: Cluster) -> None:
    balancer = cluster.balancer
    cluster.relay.cut()
    try:
        answer = httpx.get(f"{cluster.replicas[1].base_url}/readyz", timeout=10)
        assert answer.status_code == 503
        assert "approval store unreachable" in answer.json()["reason"]
        balancer.wait_status("proxy-2", "DOWN")
        for _ in range(6):
            answer = _post(balancer.base_url)
            assert answer.status_code == 200
            assert cluster.replica_of(answer.headers["x-capsem-request-id"]) == 0
    finally:
        cluster.relay.restore()
    balancer.wait_status("proxy-2", "UP")


def _stream(base_url: str, results: list[tuple[int, str, bytes]], started: threading.Event) -> None:
    scenario = {"x-fake-scenario": orjson.dumps({"events": 40, "delay_ms": 100, "chunk_size": 4}).decode()}
    try:
        with httpx.stream("POST", f"{base_url}/v1/chat/completions", content=CHAT_STREAM,
                          headers={**KEY, **scenario}, timeout=60) as answer:
            chunks = answer.iter_raw()
            body = next(chunks)
            started.set()
            body += b"".join(chunks)
            results.append((answer.status_code, answer.headers.get("x-capsem-request-id", ""), body))
    except httpx.HTTPError as exc:
        started.set()
        results.append((0, "", repr(exc).encode()))


def test_sigterm_mid_stream_loses_no_answered_request(cluster: Cluster) -> None:
    balancer = cluster.balancer
    balancer.wait_status("proxy-1", "UP")
    balancer.wait_status("proxy-2", "UP")
    results: list[tuple[int, str, bytes]] = []
    threads = []
    for _ in range(4):  # leastconn puts two on each replica
        started = threading.Event()
        thread = threading.Thread(target=_stream, args=(balancer.base_url, results, started))
        thread.start()
        assert started.wait(30)
        threads.append(thread)
    leaving = cluster.replicas[0]
    leaving.process.send_signal(signal.SIGTERM)
    statuses = []
    while leaving.process.poll() is None:
        statuses.append(_post(balancer.base_url).status_code)  # new requests while it drains
        time.sleep(0.05)
    for thread in threads:
        thread.join(60)
    assert statuses and set(statuses) == {200}, statuses
    assert len(results) == 4
    for status, _, body in results:
        assert status == 200, body[-300:]
        assert body.rstrip().endswith(b"data: [DONE]"), body[-300:]
    on_leaving = [request_id for _, request_id, _ in results if request_id in leaving.log_text()]
    assert on_leaving, "no stream was open on the replica that was stopped"
    assert "Application shutdown complete" in leaving.log_text()


def test_the_audit_chain_verifies_with_rows_from_both_replicas(cluster: Cluster) -> None:
    first, second = cluster.replicas
    first.stop()  # its queued rows are flushed on the way out (stopped already when the drain test ran)
    answer = _post(second.base_url)
    request_ids = {index: [] for index in range(2)}
    for index, replica in enumerate(cluster.replicas):
        request_ids[index] = re.findall(r"(\w+) POST '/v1/chat/completions' 200 ", replica.log_text())
    second.stop()
    assert answer.status_code == 200 and request_ids[0] and request_ids[1]
    env = {**os.environ, **cluster.env}
    verify = subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", "audit", "verify", "--config", str(first.workdir / "proxy.yaml"),
         "--url", cluster.audit_url],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit chain intact" in verify.stdout
    export = subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", "audit", "export", "--config", str(first.workdir / "proxy.yaml"),
         "--url", cluster.audit_url],
        env=env, capture_output=True, text=True, timeout=60,
    )
    stored = {orjson.loads(line)["request_id"] for line in export.stdout.splitlines()}
    for index in range(2):
        assert set(request_ids[index]) & stored, f"no request of replica {index + 1} is in the audit trail"
