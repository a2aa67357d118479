"""Renders the commented YAML written by `capsem-proxy generate-config`, from the settings model
itself, so the file always lists every key with its current default."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from capsem_proxy.config import Settings

__all__ = ["render_config_template"]

_SECTION_COMMENTS = {
    "server": "where the proxy listens and what it accepts",
    "providers": "upstream providers; base_url has each SDK's own meaning, timeouts in seconds",
    "policies": "run in this order on requests, reverse order on answers",
    "policy_sets": "policies per tenant / provider / operation / model (first match wins), e.g.\n"
    "#   - match: {providers: [openai], models: ['gpt-4*']}\n"
    "#     inherit: true\n"
    "#     policies: [{class: mypackage.StrictPolicy}]",
    "policy_dir": "a CAPSEM config directory of policy TOML files (debug.toml, pii.toml ...), loaded after",
    "streaming": "pass | guard | buffer: how streamed answers are released while policies check them",
    "scanning": "bounds on the text detectors' work: text screened per request, slices, large scans at once",
    "audit": "decision and request records: sqlite:///path or postgresql://user@host:5432/db",
    "admin": "admin API and dashboard are off while no token is set",
    "confirm": "CONFIRM / CLARIFY / REPLAN verdicts: hold for an admin's approval, or only log",
    "cors": "browser origins allowed to call the proxy (none by default)",
    "mcp": "MCP servers served at /mcp/{name} under the same policies (docs/mcp.md), e.g.\n"
    "#   servers:\n"
    "#     files: {url: http://127.0.0.1:9000/mcp, headers: {authorization: 'Bearer ${FILES_TOKEN}'}}",
    "auth": "gateway keys (cpk-...) and JWTs instead of provider keys (docs/gateway.md), e.g.\n"
    "#   mode: gateway              # passthrough | gateway | both",
    "limits": "rate limits, daily budgets and spend per tenant, key and model (docs/gateway.md), e.g.\n"
    "#   store_url: redis://127.0.0.1:6379/0\n"
    "#   tenants: {team-a: {requests_per_minute: 600, budget_usd_per_day: 50}}",
    "upstreams": "named upstreams (docs/providers.md); without them the providers above are used, e.g.\n"
    "#   - {name: azure-eu, type: azure_openai, base_url: https://NAME.openai.azure.com, api_version: '2024-10-21'}\n"
    "#   - {name: groq, type: openai_compatible, base_url: https://api.groq.com/openai/v1, models: ['llama-*']}",
    "models": "model aliases: a client's model name -> upstream:model entries tried in order, e.g.\n"
    "#   smart: [azure-eu:gpt-4o, openai:gpt-4o, claude:claude-sonnet-4-5]",
    "retries": "tries of each upstream before the next of a chain; only before the answer's first byte",
    "circuit_breaker": "per upstream: skipped for open_s seconds after `failures` failures in a row",
}


def _scalar(value: Any) -> str:
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def _render_model(model: BaseModel, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name
        comment = f"  # {field.description}" if field.description else ""
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{key}:{comment}")
            _render_model(value, indent + 1, lines)
        else:
            if hasattr(value, "__fspath__"):
                value = str(value)
            lines.append(f"{pad}{key}: {_scalar(value)}{comment}")


def render_config_template() -> str:
    """The commented default configuration as YAML text."""
    defaults = Settings()
    lines = [
        "# capsem-proxy configuration. Every key can also be set by an environment variable",
        "# CAPSEM_PROXY_<SECTION>__<KEY> (e.g. CAPSEM_PROXY_SERVER__PORT=9000); the environment wins.",
        "",
    ]
    for name in type(defaults).model_fields:
        value = getattr(defaults, name)
        lines.append(f"# {_SECTION_COMMENTS.get(name, name)}")
        lines.append(f"{name}:")
        if isinstance(value, BaseModel):
            _render_model(value, 1, lines)
        elif not isinstance(value, list) or not value:
            lines[-1] = f"{name}: {_scalar(value)}"
        else:
            for item in value:
                fields = item.model_dump(by_alias=True)
                first = True
                for key, item_value in fields.items():
                    prefix = "  - " if first else "    "
                    lines.append(f"{prefix}{key}: {_scalar(item_value)}")
                    first = False
        lines.append("")
    return "\n".join(lines)
