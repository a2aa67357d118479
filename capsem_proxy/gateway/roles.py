"""Admin roles: `admin` (everything), `operator` (approvals and reads), `viewer` (reads). The admin
token (and the dashboard session derived from it) is `admin`; a JWT valid under `auth.jwt` carries
its roles in the configured claim."""

from __future__ import annotations

from collections.abc import Mapping

from capsem_proxy.gateway.jwt_auth import InvalidToken, JwtVerifier, looks_like_jwt

__all__ = ["ROLES", "allowed", "jwt_role"]

ROLES = ("viewer", "operator", "admin")  # weakest first


def strongest(roles: list[str]) -> str | None:
    known = [role for role in roles if role in ROLES]
    return max(known, key=ROLES.index) if known else None


async def jwt_role(verifier: JwtVerifier | None, headers: Mapping[str, str]) -> str | None:
    """The role of a valid JWT bearer on an admin request, or None."""
    if verifier is None:
        return None
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not looks_like_jwt(token):
        return None
    try:
        identity = await verifier.verify(token)
    except InvalidToken:
        return None
    return strongest(identity.roles)


def allowed(role: str, method: str, resource: str) -> bool:
    """Whether `role` may `method` the admin resource (`keys`, `approvals`, `requests`, ...)."""
    if role == "admin":
        return True
    if method in ("GET", "HEAD"):
        return True
    return role == "operator" and resource == "approvals"
