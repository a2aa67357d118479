"""Policies: the proxy's interface, CAPSEM compatibility and the loader."""
