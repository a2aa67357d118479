"""Named upstreams and routing: which upstream serves a request, with retries, fail-over along a
model chain and a circuit breaker per upstream (see docs/providers.md).

Kept free of imports: `capsem_proxy.config` reads this package's settings module.
"""
