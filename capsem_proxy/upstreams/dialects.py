"""Where the caller's key arrives on Azure OpenAI's and Vertex AI's own paths."""

from __future__ import annotations

from collections.abc import Mapping

from capsem_proxy.providers._decode_helpers import bearer_token, valid_key
from capsem_proxy.providers.base import ConflictingKeys

__all__ = ["dialect_key"]


def dialect_key(dialect: str, headers: Mapping[str, str]) -> str | None:
    """Azure: `api-key`, or an Entra ID token as `Authorization: Bearer`; Vertex: the bearer
    (OAuth) token. "" when malformed, None when absent; ConflictingKeys when two differ."""
    authorization = headers.get("authorization")
    token = None if authorization is None else bearer_token(authorization)
    if dialect == "azure":
        api_key = headers.get("api-key")
        if api_key is not None:
            if token is not None and token != valid_key(api_key):
                raise ConflictingKeys("api-key and Authorization carry different credentials")
            return valid_key(api_key)
    return token
