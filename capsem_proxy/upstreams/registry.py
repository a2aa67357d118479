"""The upstreams the proxy can reach, built once from the settings: named `upstreams:`, or the three
providers of `providers:` when none are named."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from capsem_proxy.config import ProviderSettings, Settings
from capsem_proxy.upstream import UpstreamClient
from capsem_proxy.upstreams.breaker import CircuitBreaker
from capsem_proxy.upstreams.settings import DEFAULT_UPSTREAM_NAMES, UpstreamSettings, wire_format

__all__ = ["Target", "Upstream", "build_upstreams"]


@dataclass(slots=True, eq=False)
class Upstream:
    """One reachable upstream: its pooled client, what it serves and its breaker."""

    name: str
    type: str
    client: UpstreamClient
    wire: str = ""  # the API it speaks: openai, anthropic or gemini
    model_globs: tuple[re.Pattern[str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    api_version: str | None = None
    project: str | None = None
    location: str | None = None
    # The key this upstream is called with instead of the caller's (`api_key_env`, or one the gateway holds).
    held_key: str | None = None
    breaker: CircuitBreaker | None = None
    settings: UpstreamSettings | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.wire:
            self.wire = wire_format(self.type)

    def serves_model(self, model: str) -> bool:
        """True when one of the upstream's model globs matches `model` (False when it lists none)."""
        return any(glob.fullmatch(model) for glob in self.model_globs)


@dataclass(slots=True, frozen=True, eq=False)
class Target:
    """One entry of a plan: an upstream, and the model to ask it for (None: the client's own).
    `label` is `name`, or `name:model` when an alias chose the model (x-capsem-upstream)."""

    upstream: Upstream
    model: str | None = None
    label: str = field(init=False)

    def __post_init__(self) -> None:
        name = self.upstream.name
        object.__setattr__(self, "label", name if self.model is None else f"{name}:{self.model}")


def _client_settings(upstream: UpstreamSettings) -> ProviderSettings:
    return ProviderSettings(
        base_url=upstream.base_url,
        connect_timeout=upstream.connect_timeout,
        read_timeout=upstream.read_timeout,
        stream_idle_timeout=upstream.stream_idle_timeout,
        max_connections=upstream.max_connections,
        max_answer_bytes=upstream.max_answer_bytes,
    )


def build_upstreams(
    settings: Settings, breaker_for: Callable[[str], CircuitBreaker | None]
) -> dict[str, Upstream]:
    """Every upstream by name, in configured order; `breaker_for(name)` gives each its breaker."""
    if not settings.upstreams:
        return {
            name: Upstream(
                name, name, UpstreamClient(name, getattr(settings.providers, name)), breaker=breaker_for(name)
            )
            for name in DEFAULT_UPSTREAM_NAMES
        }
    upstreams: dict[str, Upstream] = {}
    for configured in settings.upstreams:
        held_key = None
        if configured.api_key_env:
            held_key = os.environ.get(configured.api_key_env) or None
            if held_key is None:
                raise ValueError(f"upstream {configured.name}: the env var {configured.api_key_env} is not set")
        upstreams[configured.name] = Upstream(
            configured.name,
            configured.type,
            UpstreamClient(configured.name, _client_settings(configured)),
            model_globs=tuple(re.compile(fnmatch.translate(glob)) for glob in configured.models),
            headers=tuple(configured.headers.items()),
            api_version=configured.api_version,
            project=configured.project,
            location=configured.location,
            held_key=held_key,
            breaker=breaker_for(configured.name),
            settings=configured,
        )
    # An API no named upstream speaks is still served by its provider of `providers:`.
    spoken = {upstream.wire for upstream in upstreams.values()}
    for name in DEFAULT_UPSTREAM_NAMES:
        if name not in spoken and name not in upstreams:
            upstreams[name] = Upstream(
                name, name, UpstreamClient(name, getattr(settings.providers, name)), breaker=breaker_for(name)
            )
    return upstreams
