"""Provider adapters, one module per provider, looked up by name."""

from capsem_proxy.providers.anthropic import AnthropicAdapter
from capsem_proxy.providers.base import ProviderAdapter
from capsem_proxy.providers.gemini import GeminiAdapter
from capsem_proxy.providers.openai import OpenAIAdapter

ADAPTERS: dict[str, type[ProviderAdapter]] = {
    "openai": OpenAIAdapter,
    "gemini": GeminiAdapter,
    "anthropic": AnthropicAdapter,
}

__all__ = ["ADAPTERS", "AnthropicAdapter", "GeminiAdapter", "OpenAIAdapter", "ProviderAdapter"]
