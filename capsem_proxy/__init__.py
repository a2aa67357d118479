"""capsem-proxy: a security proxy for LLM APIs that enforces CAPSEM policies."""

__version__ = "0.2.0"

__all__ = ["__version__"]
