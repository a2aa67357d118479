"""JWT bearer tokens from an identity provider: RS256/ES256 signatures checked against a JWKS (a file,
or a URL fetched at start and again when a token names an unknown key id, at most every 30 s),
issuer, audience and expiry required, clock skew bounded. The tenant and roles come from claims."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from capsem_proxy.errors import ProxyError
from capsem_proxy.gateway.settings import JwtSettings
from capsem_proxy.upstream import PooledClient

__all__ = ["Identity", "InvalidToken", "JwtVerifier", "looks_like_jwt"]

logger = logging.getLogger("capsem_proxy.gateway")

_MAX_TOKEN_CHARS = 16 * 1024
_MAX_JWKS_BYTES = 1024 * 1024
_REFETCH_UNKNOWN_KID_S = 30.0
_JWKS_TIMEOUT_S = 10.0


class InvalidToken(Exception):
    """The token is refused; the message is safe to show (it never quotes the token)."""


@dataclass(slots=True)
class Identity:
    tenant: str
    roles: list[str] = field(default_factory=list)
    subject: str = ""


def looks_like_jwt(value: str) -> bool:
    return value.startswith("eyJ") and value.count(".") == 2


class JwtVerifier:
    """Validates tokens against one issuer's keys."""

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._keys: dict[str, Any] = {}
        self._unnamed: list[Any] = []
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        if settings.jwks_file is not None:
            self._load(settings.jwks_file.read_bytes())

    def _load(self, document: bytes) -> None:
        # PyJWT (and the key types it loads) is imported by the first verifier, not by every proxy.
        import jwt

        try:
            jwks = jwt.PyJWKSet.from_dict(orjson.loads(document))
        except (orjson.JSONDecodeError, jwt.PyJWTError, TypeError, ValueError) as exc:
            raise ValueError(f"auth.jwt: the JWKS cannot be read ({exc})") from exc
        allowed = set(self.settings.algorithms)
        keys, unnamed = {}, []
        for key in jwks.keys:
            if key.algorithm_name not in allowed and key.algorithm_name != "UNKNOWN":
                continue
            if key.key_id:
                keys[key.key_id] = key
            else:
                unnamed.append(key)
        self._keys, self._unnamed = keys, unnamed

    async def start(self) -> None:
        """Fetch the JWKS of a URL. An identity provider down at start does not stop the proxy: tokens
        are refused until a later fetch (on the first token, then at most every 30 s) succeeds."""
        if self.settings.jwks_url is None:
            return
        try:
            await self._fetch()
        except (TimeoutError, ValueError) as exc:
            logger.error("JWKS not fetched at start, JWTs are refused until it is: %s", exc)
            self._fetched_at = time.monotonic() - _REFETCH_UNKNOWN_KID_S

    async def _fetch(self) -> None:
        url = self.settings.jwks_url
        assert url is not None
        client = PooledClient(url, label="the JWKS URL", max_connections=1, connect_timeout=_JWKS_TIMEOUT_S,
                              max_answer_bytes=_MAX_JWKS_BYTES)
        try:
            async with asyncio.timeout(_JWKS_TIMEOUT_S):
                answer = await client.send("GET", client.base_path or "/", [("accept", "application/json")], None,
                                           _JWKS_TIMEOUT_S)
                if answer.status != 200:
                    answer.close()
                    raise ValueError(f"auth.jwt: the JWKS URL answered {answer.status}")
                body = await answer.read()  # UpstreamMalformed past _MAX_JWKS_BYTES
        except ProxyError as exc:
            raise ValueError(f"auth.jwt: the JWKS was not fetched ({exc})") from exc
        finally:
            await client.close()
        self._load(body)
        self._fetched_at = time.monotonic()

    async def _refresh(self, *, unknown_kid: bool) -> None:
        if self.settings.jwks_url is None:
            return
        age = time.monotonic() - self._fetched_at
        if age < (_REFETCH_UNKNOWN_KID_S if unknown_kid else self.settings.jwks_refresh_s):
            return
        async with self._lock:
            if time.monotonic() - self._fetched_at < _REFETCH_UNKNOWN_KID_S:
                return
            try:
                await self._fetch()
            except (TimeoutError, ValueError) as exc:
                self._fetched_at = time.monotonic()  # keep the keys we have; try again later
                logger.warning("JWKS refresh failed: %s", exc)

    async def verify(self, token: str) -> Identity:
        if len(token) > _MAX_TOKEN_CHARS:
            raise InvalidToken("the bearer token is too long")
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the bearer token is not a valid JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.settings.algorithms:
            accepted = ", ".join(self.settings.algorithms)
            raise InvalidToken(f"the bearer token's algorithm is not accepted (use {accepted})")
        kid = header.get("kid")
        no_keys = not self._keys and not self._unnamed
        await self._refresh(unknown_kid=no_keys or (bool(kid) and kid not in self._keys))
        candidates = [self._keys[kid]] if kid in self._keys else ([] if kid else [*self._keys.values(), *self._unnamed])
        if not candidates:
            raise InvalidToken("the bearer token is signed by an unknown key")
        settings = self.settings
        claims: dict[str, Any] | None = None
        last_error = "the bearer token's signature is invalid"
        for key in candidates:
            try:
                claims = jwt.decode(
                    token, key.key, algorithms=[algorithm], audience=settings.audience, issuer=settings.issuer,
                    leeway=settings.clock_skew_s, options={"require": ["exp", "iss", "aud"]},
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise InvalidToken("the bearer token has expired") from None
            except jwt.InvalidAudienceError:
                raise InvalidToken("the bearer token is not meant for this audience") from None
            except jwt.InvalidIssuerError:
                raise InvalidToken("the bearer token's issuer is not trusted") from None
            except jwt.ImmatureSignatureError:
                raise InvalidToken("the bearer token is not valid yet") from None
            except jwt.MissingRequiredClaimError as exc:
                raise InvalidToken(f"the bearer token lacks the {exc.claim} claim") from None
            except jwt.PyJWTError:
                last_error = "the bearer token is invalid"
        if claims is None:
            raise InvalidToken(last_error)
        tenant = claims.get(settings.tenant_claim)
        if not isinstance(tenant, str) or len(tenant) > 128:
            tenant = ""
        roles = claims.get(settings.roles_claim, [])
        if isinstance(roles, str):
            roles = roles.split()
        if not isinstance(roles, list):
            roles = []
        return Identity(tenant, [role for role in roles if isinstance(role, str)], str(claims.get("sub", ""))[:128])
