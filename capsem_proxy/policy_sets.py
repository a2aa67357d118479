"""Chooses the policy pipeline for a request: the default set, or the first configured policy
set whose match selects the request's tenant, provider, operation and model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from capsem_proxy.config import PolicySetMatch, Settings
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.loader import load_policies
from capsem_proxy.scanning import ScanLimits

__all__ = ["PolicySelector"]


@dataclass(frozen=True, slots=True)
class _Rule:
    tenants: frozenset[str]
    providers: frozenset[str]
    operations: frozenset[str]
    models: tuple[str, ...]
    pipeline: Pipeline

    def selects(self, tenant_id: str, provider: str, operation: str, model: str) -> bool:
        return (
            (not self.tenants or tenant_id in self.tenants)
            and (not self.providers or provider in self.providers)
            and (not self.operations or operation in self.operations)
            and (not self.models or any(fnmatchcase(model, pattern) for pattern in self.models))
        )


def _rule(match: PolicySetMatch, pipeline: Pipeline) -> _Rule:
    return _Rule(
        frozenset(match.tenants), frozenset(match.providers), frozenset(match.operations), tuple(match.models),
        pipeline,
    )


class PolicySelector:
    """All pipelines of a configuration, built (and validated) once at start-up."""

    def __init__(self, settings: Settings, source: str = "config") -> None:
        default_policies = load_policies(settings.policies, source=source, policy_dir=settings.policy_dir)
        hold = settings.confirm.mode == "hold"
        scanning = settings.scanning
        limits = ScanLimits(scanning.max_chars_per_request, scanning.slice_chars, scanning.max_concurrent_large_scans)
        self.default = Pipeline(default_policies, confirmations_hold=hold, scan_limits=limits)
        self._rules = []
        for index, policy_set in enumerate(settings.policy_sets):
            own = load_policies(policy_set.policies, source=f"{source}: policy_sets[{index}]")
            if policy_set.shadow:
                own = [replace(policy, shadow=True) for policy in own]
            policies = [*default_policies, *own] if policy_set.inherit else own
            pipeline = Pipeline(policies, confirmations_hold=hold, scan_limits=limits)
            self._rules.append(_rule(policy_set.match, pipeline))

    @property
    def pipelines(self) -> list[Pipeline]:
        """Every pipeline, the default first."""
        return [self.default, *(rule.pipeline for rule in self._rules)]

    def select(self, tenant_id: str, provider: str, operation: str, model: str) -> Pipeline:
        """The pipeline for one request."""
        for rule in self._rules:
            if rule.selects(tenant_id, provider, operation, model):
                return rule.pipeline
        return self.default
