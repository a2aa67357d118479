"""`capsem-proxy keys create|list|revoke|rotate-master`: gateway keys managed straight in the store the
config's audit.url names (the proxy may keep running; its cache takes up changes within auth.cache_ttl_s)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from capsem_proxy.config import ConfigError, load_settings
from capsem_proxy.gateway.crypto import MasterKeyError, load_master_keys
from capsem_proxy.gateway.manage import KeyRequest, KeyRequestError, create_key, reseal_all
from capsem_proxy.gateway.settings import AuthSettings
from capsem_proxy.gateway.store import KeyStore, open_key_store

__all__ = ["add_keys_commands"]

T = TypeVar("T")


def _with_store(args: argparse.Namespace, work: Callable[[KeyStore, AuthSettings], Awaitable[T]]) -> T:
    settings = load_settings(args.config)
    store = open_key_store(settings.audit.url)
    auth = settings.auth or AuthSettings()

    async def run() -> T:
        await store.open()
        try:
            return await work(store, auth)
        finally:
            await store.close()

    return asyncio.run(run())


def _print(payload: Any) -> None:
    sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")


def _create(args: argparse.Namespace) -> int:
    provider_keys = {}
    for item in args.provider_key_env:
        provider, _, variable = item.partition("=")
        if not variable or not os.environ.get(variable):
            raise ConfigError(f"--provider-key-env {item}: expected PROVIDER=VARIABLE naming a set variable")
        provider_keys[provider] = os.environ[variable]
    payload: dict[str, Any] = {
        "tenant": args.tenant, "name": args.name or "", "providers": args.provider, "models": args.model,
        "provider_keys": provider_keys, "expires_at": args.expires_at, "policy_set": args.policy_set,
    }
    if args.limits:
        try:
            payload["limits"] = orjson.loads(args.limits)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"--limits is not JSON: {exc}") from None

    async def work(store: KeyStore, auth: AuthSettings) -> int:
        try:
            plain, key = await create_key(store, load_master_keys(auth.master_key_env), KeyRequest.parse(payload))
        except KeyRequestError as exc:
            raise ConfigError(str(exc)) from None
        _print({**key.public(time.time()), "key": plain})
        print("The key is shown once: store it now.", file=sys.stderr)
        return 0

    return _with_store(args, work)


def _list(args: argparse.Namespace) -> int:
    async def work(store: KeyStore, auth: AuthSettings) -> int:
        now = time.time()
        _print([key.public(now) for key in await store.list()])
        return 0

    return _with_store(args, work)


def _revoke(args: argparse.Namespace) -> int:
    async def work(store: KeyStore, auth: AuthSettings) -> int:
        if not await store.revoke(args.id, time.time()):
            print(f"no active key {args.id}", file=sys.stderr)
            return 1
        print(f"revoked {args.id}")
        return 0

    return _with_store(args, work)


def _rotate(args: argparse.Namespace) -> int:
    async def work(store: KeyStore, auth: AuthSettings) -> int:
        master = load_master_keys(auth.master_key_env)
        if master is None:
            raise ConfigError(f"{auth.master_key_env} is not set")
        try:
            changed = await reseal_all(store, master)
        except MasterKeyError as exc:
            raise ConfigError(f"{exc}; list the former master key in {auth.master_key_env}_PREVIOUS") from None
        print(f"re-sealed the provider keys of {changed} gateway keys under the current master key")
        return 0

    return _with_store(args, work)


def add_keys_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    keys = commands.add_parser(
        "keys", parents=[common], help="gateway keys (cpk-...): create, list, revoke, rotate-master",
        description="Manage gateway keys in the store beside the audit trail (the config's audit.url).",
    )
    actions = keys.add_subparsers(
        dest="keys_command", required=True, metavar="{create,list,revoke,rotate-master}", help="what to do with keys"
    )
    store = argparse.ArgumentParser(add_help=False, parents=[common])
    store.add_argument("--config", metavar="FILE", help="the proxy's YAML config (default: $CAPSEM_PROXY_CONFIG)")
    create = actions.add_parser("create", parents=[store], help="create a key; prints it once")
    create.add_argument("--tenant", required=True, help="the tenant's name, shown everywhere")
    create.add_argument("--name", help="a label for this key")
    create.add_argument("--provider", action="append", default=[], choices=["openai", "gemini", "anthropic"],
                        help="a provider the key may use (repeatable; default: all)")
    create.add_argument("--model", action="append", default=[], metavar="GLOB",
                        help="a model the key may use, glob allowed (repeatable; default: all)")
    create.add_argument("--provider-key-env", action="append", default=[], metavar="PROVIDER=VARIABLE",
                        help="hold the provider key read from this environment variable (repeatable)")
    create.add_argument("--expires-at", metavar="ISO8601", help="when the key stops working (UTC)")
    create.add_argument("--limits", metavar="JSON", help='limits of this key: {"requests_per_minute": 60, ...}')
    create.add_argument("--policy-set", help="select policy sets as this tenant name instead")
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", parents=[store], help="list keys (never in clear)")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", parents=[store], help="revoke a key by id")
    revoke.add_argument("id", help="the key's id (gk_...), as `keys list` shows it")
    revoke.set_defaults(handler=_revoke)
    rotate = actions.add_parser(
        "rotate-master", parents=[store], help="re-seal held provider keys under the current master key",
        description="After setting a new master key, with the former one in <master_key_env>_PREVIOUS: re-seal "
        "every held provider key under the new key; the former key can then be dropped.",
    )
    rotate.set_defaults(handler=_rotate)
