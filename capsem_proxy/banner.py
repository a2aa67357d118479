"""What `capsem-proxy run` prints once the proxy listens: where it listens and where each provider's
traffic goes, the policies in force, where its data goes, whether the admin API and dashboard are on
(and how to turn them on), a first request to try and the docs to read next.

The banner is printed by the process that runs `capsem-proxy run`, once, whatever the number of
workers: a background thread waits until the listening socket accepts a connection (the moment
uvicorn, or its supervisor with `--workers N`, has bound it) and prints then, so a proxy that
fails to start prints no banner. It never shows a secret: the admin token and the tenant secret
are only said to be set, and credentials inside URLs (`postgresql://user:pw@…`, `redis://:pw@…`,
`?key=…`) are masked.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from capsem_proxy import __version__
from capsem_proxy.config import CONFIG_ENV_VAR, PolicySettings, Settings
from capsem_proxy.logs import REDACTED, mask_secrets
from capsem_proxy.tenancy import SECRET_FILE_NAME

__all__ = ["StartupFacts", "announce_when_listening", "mask_url", "render_banner", "startup_facts"]

logger = logging.getLogger("capsem_proxy")

MASK = REDACTED  # as the logs mask keys
# Query parameters whose values are credentials (libpq's `password`, Gemini's `key`, signed URLs...).
_SECRET_PARAMETERS = ("pass", "secret", "token", "key", "sig", "auth", "credential")
# Schemes whose user name is an account name; in any other URL a lone user name may be a token.
_NAMED_USER_SCHEMES = ("postgres", "postgresql", "redis", "rediss")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")
_PROBE_TIMEOUT_S = 0.25
_GIVE_UP_AFTER_S = 600.0

# What each built-in policy looks for, in a few words (the class path maps back to its short name).
_BUILTIN_SUMMARIES = {
    "debug": "blocks prompts and tool names containing capsem_block",
    "pii": "CAPSEM's PII policy (Presidio)",
    "regex_redact": "redacts the configured patterns",
    "secrets": "API keys, tokens, private keys, connection strings",
    "pii_detect": "emails, phone numbers, cards, IBANs, national ids",
    "injection": "prompt injection and jailbreaks",
    "tool_rules": "tool allow/deny lists, argument rules",
    "egress": "URLs and images pointing off the allow-list",
    "usage_rules": "allowed models, request-size caps",
    "rego": "your Rego rules",
}
_DOCS = (
    ("README.md", "start here: SDK set-up, policies, configuration"),
    ("docs/detectors.md", "the built-in detectors and their options"),
    ("docs/observability.md", "audit trail, admin API, dashboard, metrics"),
)
_TRY_PROMPT = "please capsem_block this"


def mask_url(url: str) -> str:
    """`url` with any password, token-like user name and credential query value replaced by [REDACTED]."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        if parts.scheme.lower() not in _NAMED_USER_SCHEMES:
            userinfo = MASK
        elif has_password:
            userinfo = f"{user}:{MASK}"
        else:
            userinfo = user
        netloc = f"{userinfo}@{host}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_is_secret_parameter(name) for name, _ in pairs):
        query = urlencode([(name, MASK if _is_secret_parameter(name) else value) for name, value in pairs], safe="/:[]")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _is_secret_parameter(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_PARAMETERS)


def _url_host(host: str) -> str:
    """The host as it goes into a URL a person can open: wildcard addresses become loopback."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class StartupFacts:
    """Everything the banner says, already masked; also logged as one JSON object with `logging.json`."""

    listen_url: str  # as people reach it (a wildcard host becomes 127.0.0.1)
    bound_host: str
    workers: int
    config_source: str
    upstreams: dict[str, str]
    policies: list[str]
    policy_sets: list[str]
    streaming: str
    data_dir: str
    audit: str
    tenant_secret: str
    approvals: str
    admin_on: bool
    tracing: str | None
    metrics_on: bool
    blocks_capsem_block: bool
    docs: list[tuple[str, str]]
    # Each MCP server served at /mcp/{name}: name -> its masked URL.
    mcp_servers: dict[str, str] = field(default_factory=dict)

    def as_log_fields(self) -> dict[str, Any]:
        """The facts as JSON log fields."""
        return {
            "listen": self.listen_url, "workers": self.workers, "config": self.config_source,
            "upstreams": self.upstreams, "policies": self.policies, "policy_sets": self.policy_sets,
            "streaming": self.streaming, "data_dir": self.data_dir, "audit": self.audit,
            "tenant_secret": self.tenant_secret, "approvals": self.approvals,
            "admin_api": f"{self.listen_url}/admin/" if self.admin_on else None,
            "dashboard": f"{self.listen_url}/dashboard" if self.admin_on else None,
            "metrics": f"{self.listen_url}/metrics" if self.metrics_on else None, "tracing": self.tracing,
            "mcp_servers": self.mcp_servers,
        }


def _short_names() -> dict[str, str]:
    from capsem_proxy.policies.loader import BUILTIN_POLICIES

    return {path: name for name, path in BUILTIN_POLICIES.items()} | {name: name for name in BUILTIN_POLICIES}


def _policy_name(policy: PolicySettings, short_names: dict[str, str]) -> str:
    return policy.name or short_names.get(policy.class_path) or policy.class_path


def _describe_policy(policy: PolicySettings, short_names: dict[str, str]) -> str:
    """`name: what it does [flags]`: never its options, which may hold secrets (allow-listed values)."""
    short = short_names.get(policy.class_path)
    if short is None:
        text = policy.class_path
    elif short == "rego" and policy.options.get("policy_file"):
        text = f"rego: rules in {policy.options['policy_file']}"
    else:
        text = f"{short}: {_BUILTIN_SUMMARIES[short]}"
    if policy.name:
        text = f"{policy.name} ({text})"
    flags = []
    if policy.hooks is not None:
        flags.append("hooks: " + ", ".join(policy.hooks))
    if policy.fail_open:
        flags.append("fails open")
    return text + (f" [{'; '.join(flags)}]" if flags else "")


def _describe_match(match: Any) -> str:
    parts = [f"{name} {', '.join(values)}" for name, values in match.model_dump().items() if values]
    return "; ".join(parts) or "every request"


def _audit_place(url: str, store_content: bool) -> str:
    content = "prompts and answers too (audit.store_content)" if store_content else "metadata only, no content"
    if url.startswith("memory:"):
        return f"in process memory, lost when the proxy stops; {content}"
    if url.startswith("sqlite:///"):
        return f"{Path(url.removeprefix('sqlite:///')).resolve()}; {content}"
    return f"{mask_url(url)}; {content}"


def startup_facts(settings: Settings, host: str, port: int, workers: int) -> StartupFacts:
    """What the banner reports for these settings, listening on host:port with `workers` processes."""
    short_names = _short_names()
    listen_url = f"http://{_url_host(host)}:{port}"
    config_path = os.environ.get(CONFIG_ENV_VAR)
    config_source = f"{config_path} and the environment" if config_path else "built-in defaults and the environment"
    data_dir = settings.server.data_dir.resolve()
    policies = [_describe_policy(policy, short_names) for policy in settings.policies]
    if settings.policy_dir is not None:
        files = sorted(path.name for path in settings.policy_dir.glob("*.toml"))
        policies.append(f"from {settings.policy_dir}: {', '.join(files) or 'no .toml file'}")
    policy_sets = []
    for index, policy_set in enumerate(settings.policy_sets, 1):
        names = ", ".join(_policy_name(policy, short_names) for policy in policy_set.policies)
        how = "the defaults, then" if policy_set.inherit else "instead of the defaults:"
        policy_sets.append(f"{index}. {_describe_match(policy_set.match)}: {how} {names or 'no policy'}")
    streaming = settings.streaming
    streaming_text = {
        "guard": "guard: answers flow as they come, only what may still become a finding held back (policies "
        f"that cannot say where: the last {streaming.holdback_chars} characters) while answer policies check them",
        "pass": "pass: answers are released at once; a policy can only cut the stream",
        "buffer": "buffer: whole answers are checked before the client sees them",
    }[streaming.mode]
    blocks = any(short_names.get(policy.class_path) == "debug" and (policy.hooks is None or "on_model_call" in
                 policy.hooks) for policy in settings.policies)
    tenant_secret = (
        "server.tenant_secret (set in the configuration)" if settings.server.tenant_secret
        else str(data_dir / SECRET_FILE_NAME)
    )
    approvals = settings.confirm.store_url
    approvals_text = "in process memory" if approvals.startswith("memory:") else mask_url(approvals)
    repository = Path(__file__).resolve().parents[1]
    docs = [(str(repository / name) if (repository / name).is_file() else name, what) for name, what in _DOCS]
    return StartupFacts(
        listen_url=listen_url, bound_host=host, workers=workers, config_source=config_source,
        upstreams={name: mask_url(provider.base_url) for name, provider in settings.providers},
        policies=policies, policy_sets=policy_sets, streaming=streaming_text, data_dir=str(data_dir),
        audit=_audit_place(settings.audit.url, settings.audit.store_content), tenant_secret=tenant_secret,
        approvals=approvals_text, admin_on=bool(settings.admin.token),
        tracing=mask_url(settings.tracing.otlp_endpoint) if settings.tracing.enabled else None,
        metrics_on=settings.metrics.enabled, blocks_capsem_block=blocks, docs=docs,
        mcp_servers={name: mask_url(server.url) for name, server in settings.mcp.servers.items()},
    )


def _try_command(listen_url: str) -> str:
    body = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + _TRY_PROMPT + '"}]}'
    return (
        f"curl -s {listen_url}/v1/chat/completions -H 'authorization: Bearer sk-test' "
        f"-H 'content-type: application/json' -d '{body}'"
    )


def render_banner(facts: StartupFacts) -> str:
    """The banner as text lines (a label column, then the value)."""
    url = facts.listen_url
    rows: list[tuple[str, str]] = []
    rows.append(("SDK base URL", f"OpenAI {url}/v1; Anthropic and Gemini {url}"))
    for index, (name, base_url) in enumerate(facts.upstreams.items()):
        rows.append(("upstreams" if index == 0 else "", f"{name:<10} {base_url}"))
    for index, (name, server_url) in enumerate(facts.mcp_servers.items()):
        rows.append(("MCP servers" if index == 0 else "", f"{url}/mcp/{name} -> {server_url}"))
    for index, policy in enumerate(facts.policies or ["none: every request is forwarded unchecked"]):
        rows.append(("policies" if index == 0 else "", policy))
    for index, policy_set in enumerate(facts.policy_sets):
        rows.append(("policy sets" if index == 0 else "", policy_set))
    rows.append(("streaming", facts.streaming))
    rows.append(("config", facts.config_source))
    rows.append(("data", facts.data_dir))
    rows.append(("  audit trail", facts.audit))
    rows.append(("  tenant secret", facts.tenant_secret))
    rows.append(("  approvals", facts.approvals))
    if facts.admin_on:
        rows.append(("admin API", f"{url}/admin/ (Authorization: Bearer <admin.token>)"))
        rows.append(("dashboard", f"{url}/dashboard (log in with admin.token)"))
    else:
        rows.append(("admin API", "off, and so is the dashboard: set admin.token in the config, or"))
        rows.append(("", "CAPSEM_PROXY_ADMIN__TOKEN=<a long random string>, to turn on /admin/ and /dashboard"))
        rows.append(("", 'step by step: README.md, "Your first blocked request, in the dashboard"'))
    rows.append(("metrics", f"{url}/metrics" if facts.metrics_on else "off (metrics.enabled)"))
    if facts.tracing:
        rows.append(("traces", f"OTLP to {facts.tracing}"))
    if facts.blocks_capsem_block:
        rows.append(("try it", _try_command(url)))
        rows.append(("", "answers 403: the debug policy blocks prompts containing capsem_block"))
    for index, (name, what) in enumerate(facts.docs):
        rows.append(("read next" if index == 0 else "", f"{name} ({what})"))
    workers = f"{facts.workers} worker{'s' if facts.workers != 1 else ''}"
    where = f" (bound to {facts.bound_host or '0.0.0.0'})" if facts.bound_host in _WILDCARD_HOSTS else ""
    lines = [f"capsem-proxy {__version__} is listening on {url}{where}, {workers}"]
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label:<{width}}  {value}".rstrip() for label, value in rows]
    # A second line of defence behind mask_url: nothing shaped like a provider key goes out.
    return mask_secrets("\n".join(lines))


def _probe_address(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if host == "::" else host


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _print_when_listening(facts: StartupFacts, host: str, port: int, json_logs: bool, stream: IO[str]) -> None:
    deadline = time.monotonic() + _GIVE_UP_AFTER_S
    pause = 0.02
    while not _accepts(host, port):
        if time.monotonic() > deadline:
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
    if json_logs:
        # One JSON line like every other log line, so log collectors keep parsing.
        logger.info("capsem-proxy %s is listening on %s", __version__, facts.listen_url,
                       extra={"startup": facts.as_log_fields()})
    else:
        stream.write(render_banner(facts) + "\n")
        stream.flush()


def announce_when_listening(
    settings: Settings, host: str, port: int, workers: int, stream: IO[str] | None = None
) -> threading.Thread | None:
    """Print the banner once the proxy accepts connections on host:port (see the module docstring).
    Nothing is printed when another process already holds the port (the proxy will fail to bind)."""
    probe_host = _probe_address(host)
    if _accepts(probe_host, port):
        return None
    facts = startup_facts(settings, host, port, workers)
    thread = threading.Thread(
        target=_print_when_listening,
        args=(facts, probe_host, port, settings.logging.json_format, stream or sys.stderr),
        name="capsem-proxy-banner", daemon=True,
    )
    thread.start()
    return thread
