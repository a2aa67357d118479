"""The gateway's narrow hook into the request path: one `Passage` per proxied request.

    passage = gateway.passage()                      # when the request starts
    tenant = await passage.authenticate(key, provider) or <hash of the provider key>
    body, route = await passage.admit(route, model, body, stream, extra_headers)   # 403 / 429, downgrade
    forwarded, query = passage.upstream_credentials(provider, forwarded, query)   # held provider key
    passage.finish(record)                           # when it is over: usage, spend, open streams
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import orjson

from capsem_proxy.errors import ErrorKind, ProxyError
from capsem_proxy.gateway.gateway import Admission, Gateway, Grant
from capsem_proxy.gateway.store import open_key_store

if TYPE_CHECKING:
    from capsem_proxy.config import Settings
    from capsem_proxy.records import RequestRecord
    from capsem_proxy.routing import Route

__all__ = ["DOWNGRADED_HEADER", "HeldKeyRefused", "Passage", "open_gateway"]

logger = logging.getLogger("capsem_proxy.gateway")

DOWNGRADED_HEADER = b"x-capsem-downgraded-from"


class HeldKeyRefused(ProxyError):
    status = 502
    kind = ErrorKind.UPSTREAM_UNAVAILABLE


def open_gateway(settings: Settings, registry: Any = None) -> Gateway | None:
    """The gateway when `auth:` (other than passthrough) or `limits:` is configured, else None."""
    from capsem_proxy.config import ConfigError
    from capsem_proxy.gateway.crypto import MasterKeyError

    auth, limits = settings.auth, settings.limits
    if (auth is None or auth.mode == "passthrough") and limits is None:
        return None
    if limits is not None and limits.store_url.startswith("memory:") and settings.server.workers > 1:
        logger.warning("limits.store_url is memory://: each of the %d workers counts on its own, so a limit "
                       "lets up to %d times as much through; use redis:// to share them", settings.server.workers,
                       settings.server.workers)
    if settings.audit.url.startswith("memory:") and auth is not None and auth.mode != "passthrough":
        logger.warning("audit.url is memory://: gateway keys live in process memory and are lost when it exits")
    try:
        return Gateway(auth, limits, open_key_store(settings.audit.url), registry)
    except MasterKeyError as exc:
        raise ConfigError(f"auth.master_key_env: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"auth.jwt.jwks_file: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


class Passage:
    """One request through the gateway."""

    __slots__ = ("admission", "gateway", "grant")

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.grant: Grant | None = None
        self.admission: Admission | None = None

    async def authenticate(self, presented: str, provider: str) -> str:
        """The tenant name of a gateway key or JWT; "" when the caller's own provider key goes upstream."""
        self.grant = await self.gateway.authenticate(presented, provider)
        return self.grant.tenant

    def policy_tenant(self, tenant_id: str) -> str:
        grant = self.grant
        return grant.policy_tenant if grant is not None and grant.held else tenant_id

    async def admit(
        self, tenant_id: str, route: Route, model: str, body: bytes, stream: bool,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> tuple[bytes, Route, str]:
        """Check the model list and the limits; a spent budget may downgrade the model, rewritten in the
        body (or, for Gemini, the path). Returns (body, route, model) as they go upstream."""
        grant = self.grant if self.grant is not None else Grant(tenant_id, held=False)
        if not grant.tenant:
            grant.tenant = tenant_id
        admission = self.admission = await self.gateway.admit(
            grant, grant.tenant, route.provider, model, stream, extra_headers
        )
        if admission is None or not admission.downgraded_from:
            return body, route, model
        extra_headers.append((DOWNGRADED_HEADER, admission.downgraded_from.encode()))
        return _with_model(body, route, admission.model)

    def upstream_credentials(
        self, provider: str, forwarded: list[tuple[str, str]], query_string: bytes
    ) -> tuple[list[tuple[str, str]], bytes]:
        if self.grant is None:
            return forwarded, query_string
        return self.gateway.upstream_credentials(self.grant, provider, forwarded, query_string)

    def refused_upstream(self, provider: str, status: int) -> ProxyError | None:
        """A provider refusing the key the proxy holds is answered 502 in the proxy's own words: its own
        error would name (part of) that key, which the caller must never see."""
        if status in (401, 403) and self.grant is not None and self.grant.held:
            return HeldKeyRefused(f"the {provider} key this proxy holds for the caller was refused by {provider}")
        return None

    def finish(self, record: RequestRecord) -> None:
        """Charge what the request used (its stream, if any, is over now) and record its spend."""
        grant = self.grant
        # Callers' own provider keys are charged to the tenant the proxy derives from them, limits or not,
        # so the spend view covers all traffic through the gateway, not only gateway keys.
        if self.admission is None and (grant is None or record.status in (401, 403)):
            return
        self.gateway.settle(self.admission, grant, record.provider, record.model, record.input_tokens,
                            record.output_tokens)


def _with_model(body: bytes, route: Route, model: str) -> tuple[bytes, Route, str]:
    if route.path_model:
        path = route.upstream_path.replace("/models/" + route.path_model, "/models/" + model, 1)
        return body, dataclasses.replace(route, upstream_path=path, path_model=model), model
    document = orjson.loads(body)
    document["model"] = model
    return orjson.dumps(document), route, model
