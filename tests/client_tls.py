"""One TLS context for the HTTP clients a test process makes.

httpx (and httpx2, under the OpenAI SDK) builds a new `ssl.SSLContext` for every client it creates,
loading certifi's CA bundle each time: about 35 ms of CPU. The tests create thousands of clients
(every `httpx.get`, every SDK client, every poll of a starting server) and talk plain HTTP to local
servers, so that work is never used; on a two-core machine it is CPU taken from the servers under
test. httpx documents sharing one context between clients: the default one (certificates verified,
no client certificate) is built once per CA location here and shared. A client given its own
context or a client certificate gets what it asked for, as before.

google-genai builds three contexts of its own for every client (for httpx, aiohttp and websockets,
with `ssl.create_default_context`): some 100 ms of CPU per client. Its module is given an `ssl` whose
`create_default_context` hands out one context per set of arguments, the rest of `ssl` unchanged.
"""

from __future__ import annotations

import importlib
import os
import ssl
from collections.abc import Callable
from typing import Any

__all__ = ["share_default_tls_context"]

# Where each library looks its context factory up when a client is created.
_TRANSPORT_MODULES = ("httpx._transports.default", "httpx2._transports.default")
# SDK modules that call `ssl.create_default_context` for every client.
_SDK_MODULES = ("google.genai._api_client",)

_Factory = Callable[..., ssl.SSLContext]


def share_default_tls_context() -> None:
    """Make every httpx, httpx2 and google-genai client of this process share the default TLS context."""
    for name in _TRANSPORT_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        factory = module.create_ssl_context
        if not getattr(factory, "shares_default", False):
            module.create_ssl_context = _sharing(factory)
    for name in _SDK_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if not isinstance(module.ssl, _SharedDefaultContexts):
            module.ssl = _SharedDefaultContexts(module.ssl)


class _SharedDefaultContexts:
    """`ssl` as a module sees it, but `create_default_context` gives one context per arguments."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self._shared: dict[tuple[Any, ...], ssl.SSLContext] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def create_default_context(self, purpose: Any = ssl.Purpose.SERVER_AUTH, *, cafile: Any = None,
                               capath: Any = None, cadata: Any = None) -> ssl.SSLContext:
        key = (purpose, cafile, capath, cadata)
        context = self._shared.get(key)
        if context is None:
            context = self._shared[key] = self._module.create_default_context(
                purpose, cafile=cafile, capath=capath, cadata=cadata)
        return context


def _sharing(factory: _Factory) -> _Factory:
    shared: dict[tuple[Any, ...], ssl.SSLContext] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return factory(verify=verify, cert=cert, trust_env=trust_env)
        # The default context reads its CA location from the environment when trust_env is on.
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else (False,)
        context = shared.get(key)
        if context is None:
            context = shared[key] = factory(verify=verify, cert=cert, trust_env=trust_env)
        return context

    create_ssl_context.shares_default = True  # type: ignore[attr-defined]
    return create_ssl_context
