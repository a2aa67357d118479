"""The admin routes of the team gateway: `/admin/keys` and `/admin/spend`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from capsem_proxy.admin.params import BadParameter, parse_params
from capsem_proxy.admin.replies import Reply, error_reply, json_reply, not_allowed
from capsem_proxy.gateway.manage import KeyRequest, KeyRequestError, create_key
from capsem_proxy.gateway.store import GROUPS

if TYPE_CHECKING:
    from capsem_proxy.gateway.gateway import Gateway

__all__ = ["MAX_ADMIN_BODY_BYTES", "answer_keys", "answer_spend", "parse_since"]

MAX_ADMIN_BODY_BYTES = 64 * 1024
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, now: float) -> float:
    """`24h`, `7d`, `30m`, or unix seconds / ISO 8601 (as the other admin routes take)."""
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        return now - int(value[:-1]) * _UNITS[value[-1]]
    from capsem_proxy.admin.params import parse_time

    return parse_time("since", value)


async def answer_keys(gateway: Gateway | None, method: str, parts: list[str], body: bytes | None) -> Reply:
    """POST /admin/keys, GET /admin/keys, GET|DELETE /admin/keys/{id}."""
    if gateway is None:
        return error_reply(404, "gateway keys are off (set auth.mode to gateway or both)")
    now = time.time()
    if len(parts) == 1:
        if method == "GET":
            return json_reply({"keys": [key.public(now) for key in await gateway.store.list()]})
        if method != "POST":
            return not_allowed("GET, POST")
        if body is None or len(body) > MAX_ADMIN_BODY_BYTES:
            return error_reply(413, f"the body must be at most {MAX_ADMIN_BODY_BYTES} bytes")
        try:
            payload = orjson.loads(body or b"{}")
            plain, key = await create_key(gateway.store, gateway.master, KeyRequest.parse(payload))
        except orjson.JSONDecodeError:
            return error_reply(400, "the body is not valid JSON")
        except KeyRequestError as exc:
            return error_reply(400, str(exc))
        reply = json_reply({**key.public(now), "key": plain})
        reply.status = 201
        return reply
    if len(parts) != 2:
        return error_reply(404, "not found")
    key_id = parts[1]
    if method == "GET":
        found = await gateway.store.get(key_id)
        return json_reply(found.public(now)) if found is not None else error_reply(404, "no such key")
    if method != "DELETE":
        return not_allowed("GET, DELETE")
    found = await gateway.store.get(key_id)
    if found is None:
        return error_reply(404, "no such key")
    await gateway.store.revoke(key_id, now)
    gateway.forget(found.key_hash)
    revoked = await gateway.store.get(key_id)
    assert revoked is not None
    return json_reply(revoked.public(now))


async def answer_spend(gateway: Gateway | None, method: str, query_string: bytes) -> Reply:
    """GET /admin/spend?group_by=tenant|key|model|provider&since=24h."""
    if gateway is None:
        return error_reply(404, "spend is recorded only when the gateway is on (auth or limits)")
    if method != "GET":
        return not_allowed("GET")
    params = parse_params(query_string, frozenset({"group_by", "since"}))
    group_by = params.get("group_by", "tenant")
    if group_by not in GROUPS:
        raise BadParameter("group_by", f"must be one of {', '.join(GROUPS)}")
    now = time.time()
    since = parse_since(params.get("since", "24h"), now)
    await gateway.flush_usage()
    rows = await gateway.store.spend(group_by, int(since // 3600) * 3600)
    total = {
        "requests": sum(row["requests"] for row in rows),
        "input_tokens": sum(row["input_tokens"] for row in rows),
        "output_tokens": sum(row["output_tokens"] for row in rows),
        "cost_usd": round(sum(row["cost_usd"] for row in rows), 6),
    }
    return json_reply({"group_by": group_by, "since": since, "rows": rows, "total": total})
