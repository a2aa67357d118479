"""What a request costs: USD per one million input / output tokens, by model.

The built-in table holds list prices of current OpenAI, Anthropic and Gemini models (standard tier,
text, no caching discounts); `limits.prices` overrides or extends it by name or glob. A dated or
suffixed model name (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`) takes the price of the
longest known name it starts with; a model found nowhere costs nothing (and is logged once).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from fnmatch import fnmatchcase

__all__ = ["BUILT_IN_PRICES", "PriceTable"]

logger = logging.getLogger("capsem_proxy.gateway")

BUILT_IN_PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.0, 60.0),
    "o1-mini": (1.10, 4.40),
    "o3": (2.0, 8.0),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    # Anthropic
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-haiku": (0.25, 1.25),
    # Gemini (prompts up to 200k tokens)
    "gemini-2.5-pro": (1.25, 10.0),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.0-flash-lite": (0.075, 0.30),
    "gemini-1.5-pro": (1.25, 5.0),
    "gemini-1.5-flash": (0.075, 0.30),
    "text-embedding-004": (0.0, 0.0),
}

_MAX_CACHED = 1024


class PriceTable:
    """Looks up a model's price (cached per name); overrides first, globs allowed there."""

    def __init__(self, overrides: Mapping[str, tuple[float, float]] | None = None) -> None:
        self._exact = dict(BUILT_IN_PRICES)
        self._globs: list[tuple[str, tuple[float, float]]] = []
        for name, price in (overrides or {}).items():
            if any(char in name for char in "*?["):
                self._globs.append((name, price))
            else:
                self._exact[name] = price
        self._cache: dict[str, tuple[float, float]] = {}

    def price(self, model: str) -> tuple[float, float]:
        """(input, output) USD per 1M tokens."""
        cached = self._cache.get(model)
        if cached is not None:
            return cached
        found = self._lookup(model)
        if len(self._cache) < _MAX_CACHED:
            self._cache[model] = found
        return found

    def _lookup(self, model: str) -> tuple[float, float]:
        bare = model.removeprefix("models/")
        for pattern, price in self._globs:
            if fnmatchcase(bare, pattern):
                return price
        best = ""
        for name in self._exact:
            boundary = len(bare) == len(name) or bare[len(name):len(name) + 1] in ("-", "@", ":", ".")
            if len(name) > len(best) and bare.startswith(name) and boundary:
                best = name
        if best:
            return self._exact[best]
        logger.info("no price known for model %r: its usage is counted at no cost", bare[:64])
        return (0.0, 0.0)

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        price_in, price_out = self.price(model)
        return (input_tokens * price_in + output_tokens * price_out) / 1_000_000
