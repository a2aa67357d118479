"""Azure OpenAI's personality: OpenAI's bodies under /openai/deployments/{deployment}/..., the key in
``api-key`` (or an Entra ID bearer token)."""

from __future__ import annotations

from aiohttp import web

from .openai_api import OpenAIApi


class AzureApi(OpenAIApi):
    """Key in ``api-key`` or ``Authorization: Bearer``."""

    name = "azure_openai"

    def auth_key(self, request: web.BaseRequest) -> str | None:
        return request.headers.get("api-key") or super().auth_key(request)


API = AzureApi()
