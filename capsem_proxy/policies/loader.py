"""Loads the configured policies by import path and validates them at start-up."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from capsem_proxy.config import ConfigError, PolicySettings
from capsem_proxy.config_errors import closest, did_you_mean, validation_lines, without_help_links
from capsem_proxy.extras import missing_extra, needs_extra_message
from capsem_proxy.hooks import HOOK_NAMES
from capsem_proxy.policies.base import ConfiguredPolicy, PolicyTraits, never_suspends

__all__ = ["BUILTIN_POLICIES", "load_policies", "load_policy"]

# Short names accepted in `class:` besides full import paths; also the names of the TOML files
# in a CAPSEM config directory (as capsem.config_loader names them).
BUILTIN_POLICIES = {
    "debug": "capsem.policies.debug_policy.DebugPolicy",
    "pii": "capsem.policies.pii_policy.PIIPolicy",
    "regex_redact": "capsem_proxy.policies.regex_redact.RegexRedactPolicy",
    "secrets": "capsem_proxy.policies.secrets.SecretsPolicy",
    "pii_detect": "capsem_proxy.policies.pii_detect.PIIDetectPolicy",
    "injection": "capsem_proxy.policies.injection.InjectionPolicy",
    "tool_rules": "capsem_proxy.policies.tool_rules.ToolRulesPolicy",
    "egress": "capsem_proxy.policies.egress.EgressPolicy",
    "usage_rules": "capsem_proxy.policies.usage_rules.UsageRulesPolicy",
    "rego": "capsem_proxy.policies.rego.RegoPolicy",
}
# Policies of other packages whose dependencies make up an extra of their own.
_OWN_EXTRAS = {"capsem.policies.pii_policy.PIIPolicy": "capsem-pii"}
# Keys of a policy TOML file that configure the proxy's handling rather than the policy.
_PROXY_KEYS = ("class", "fail_open", "timeout_ms", "name")


def _import_class(path: str, key: str) -> Any:
    path = BUILTIN_POLICIES.get(path, path)
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ConfigError(
            f"{key}: unknown policy '{path}'{did_you_mean(path, BUILTIN_POLICIES)}; built-in policies: "
            f"{', '.join(BUILTIN_POLICIES)}; any other policy is named by its import path (mypackage.module.Class)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        _raise_if_extra_missing(exc, path, key)
        hint = _module_hint(module_name, exc)
        raise ConfigError(f"{key}: cannot import module '{module_name}': {exc}{hint}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        hint = did_you_mean(attribute, [name for name in dir(module) if not name.startswith("_")])
        raise ConfigError(f"{key}: module '{module_name}' has no '{attribute}'{hint}") from exc


def _raise_if_extra_missing(exc: BaseException, path: str, key: str) -> None:
    """A ConfigError naming the extra to install when `exc` comes from one of its modules missing."""
    extra = missing_extra(exc)
    if path in _OWN_EXTRAS and isinstance(exc, ModuleNotFoundError):
        extra = _OWN_EXTRAS[path]
    if extra is not None:
        short = next((name for name, full in BUILTIN_POLICIES.items() if full == path), path)
        raise ConfigError(f"{key}: {needs_extra_message(f'the {short} policy', extra)}") from exc


def _module_hint(module_name: str, exc: ImportError) -> str:
    """When the module itself is missing (not one it imports): a sibling with a close name, or
    where Python looks for a top-level module."""
    if not isinstance(exc, ModuleNotFoundError) or exc.name != module_name:
        return ""
    parent, _, leaf = module_name.rpartition(".")
    if not parent:
        return " (is the folder that holds it on PYTHONPATH?)"
    try:
        package = importlib.import_module(parent)
    except ImportError:
        return ""
    match = closest(leaf, [module.name for module in pkgutil.iter_modules(getattr(package, "__path__", []))])
    return f" (did you mean `{parent}.{match}`?)" if match else ""


def _instantiate(cls: Any, options: dict[str, Any], key: str) -> Any:
    try:
        from_config = getattr(cls, "from_config", None)
        if callable(from_config) and _defines_from_config(cls):
            return from_config(options)
        return cls(**options)
    except ConfigError:
        raise
    except ValidationError as exc:
        lines = "\n".join(f"  {line}" for line in validation_lines(exc, prefix="options"))
        raise ConfigError(f"{key}.options: {cls.__name__} rejected its options:\n{lines}") from exc
    except (Exception, SystemExit) as exc:  # a policy's own validation error, of any type; some
        # libraries exit the process when a model they want cannot be fetched
        _raise_if_extra_missing(exc, f"{cls.__module__}.{cls.__qualname__}", key)
        reason = without_help_links(str(exc))
        raise ConfigError(f"{key}.options: {cls.__name__} rejected its options: {reason}") from exc


def _capsem_loaded() -> bool:
    """True once CAPSEM's policy package is imported: only then can a class derive from its `Policy`.
    A configuration without CAPSEM policies never imports it (nor networkx, which it imports: about a
    tenth of the proxy's start-up imports)."""
    return "capsem.policies" in sys.modules


def _defines_from_config(cls: Any) -> bool:
    """True when the class has its own `from_config` (CAPSEM's base one only raises)."""
    method = getattr(cls, "from_config", None)
    if method is None:
        return False
    if not _capsem_loaded():
        return True
    from capsem.policies import Policy as CapsemPolicy

    return getattr(method, "__func__", method) is not CapsemPolicy.from_config.__func__


def _is_capsem_policy(instance: Any) -> bool:
    from capsem_proxy.policies.capsem_compat import is_capsem_policy

    return is_capsem_policy(instance)


def load_policy(settings: PolicySettings, key: str) -> ConfiguredPolicy | None:
    """Load one policy; None when it disabled itself (CAPSEM's `enabled = false`)."""
    cls = _import_class(settings.class_path, f"{key}.class")
    instance = _instantiate(cls, settings.options, key)
    if instance is None:
        return None
    if _capsem_loaded() and _is_capsem_policy(instance):
        from capsem_proxy.policies.capsem_compat import CapsemPolicyAdapter

        instance = CapsemPolicyAdapter(instance, name=settings.name)
    elif not any(callable(getattr(instance, hook, None)) for hook in HOOK_NAMES):
        raise ConfigError(f"{key}.class: {settings.class_path} implements none of {', '.join(HOOK_NAMES)}")
    name = settings.name or getattr(instance, "name", None) or type(instance).__name__
    only_hooks = frozenset(settings.hooks) if settings.hooks is not None else None
    try:
        return ConfiguredPolicy(
            policy=instance, name=str(name), fail_open=settings.fail_open, timeout_s=settings.timeout_ms / 1000.0,
            only_hooks=only_hooks, inline_hooks=inline_hooks(instance), shadow=settings.shadow,
        )
    except TypeError as exc:  # a trait of the wrong type (see PolicyTraits)
        raise ConfigError(f"{key}.class: {settings.class_path}: {exc}") from exc


def inline_hooks(policy: Any) -> frozenset[str]:
    """The hooks of `policy` that never await (a CAPSEM adapter knows its wrapped policy's)."""
    declared = PolicyTraits.of(policy).inline_hooks
    if declared is not None:
        return declared
    return frozenset(name for name in HOOK_NAMES if never_suspends(getattr(policy, name, None)))


def load_policy_dir(directory: Path) -> list[ConfiguredPolicy]:
    """Load a CAPSEM config directory: one TOML file per policy, named after it (`debug.toml`),
    or naming any class with a `class = "module.Class"` key. Files load in name order."""
    if not directory.is_dir():
        raise ConfigError(f"policy_dir: {directory} is not a directory")
    loaded = []
    for path in sorted(directory.glob("*.toml")):
        try:
            options = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"policy file {path}: {exc}") from exc
        class_path = options.get("class") or BUILTIN_POLICIES.get(path.stem)
        if not class_path:
            raise ConfigError(
                f"policy file {path}: unknown policy '{path.stem}' (known: {', '.join(BUILTIN_POLICIES)}; "
                "or set class = \"module.Class\")"
            )
        settings = PolicySettings(
            class_path=class_path,
            options={key: value for key, value in options.items() if key not in _PROXY_KEYS},
            fail_open=bool(options.get("fail_open", False)),
            timeout_ms=float(options.get("timeout_ms", 200.0)),
            name=options.get("name"),
        )
        policy = load_policy(settings, f"policy file {path}")
        if policy is not None:
            loaded.append(policy)
    return loaded


def load_policies(
    policies: list[PolicySettings], source: str = "config", policy_dir: Path | None = None
) -> list[ConfiguredPolicy]:
    """Load every configured policy, in order, then those of `policy_dir`; the first bad one
    stops with a clear message."""
    loaded = []
    for index, settings in enumerate(policies):
        policy = load_policy(settings, f"{source}: policies[{index}]")
        if policy is not None:
            loaded.append(policy)
    if policy_dir is not None:
        loaded.extend(load_policy_dir(policy_dir))

    return loaded
