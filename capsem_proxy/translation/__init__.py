"""Cross-API translation: an OpenAI chat completion request served by an Anthropic or Gemini
upstream, and its answer (whole or streamed, tool calls and usage included) translated back, so
one OpenAI client can fail over across providers. Policies never see it: they ran on the client's
request, and read the translated answer as the client will."""

from __future__ import annotations

from capsem_proxy.translation.base import Translation, TranslationError

__all__ = ["Translation", "TranslationError", "translation_for"]


def translation_for(wire: str) -> Translation:
    """A fresh translation of an OpenAI chat request for an upstream speaking `wire`."""
    if wire == "anthropic":
        from capsem_proxy.translation.openai_anthropic import OpenAIToAnthropic

        return OpenAIToAnthropic()
    if wire == "gemini":
        from capsem_proxy.translation.openai_gemini import OpenAIToGemini

        return OpenAIToGemini()
    raise TranslationError(f"no translation from OpenAI chat to the {wire} API")
