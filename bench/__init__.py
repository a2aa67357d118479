"""Benchmark of capsem-proxy against a direct connection and a bare pass-through (`python -m bench`)."""
