"""The team gateway: gateway keys and JWTs that map callers to tenants and to provider keys the proxy
holds, admin roles, rate limits and budgets, and spend. Off unless `auth:` or `limits:` is configured."""
