"""`capsem-proxy run | validate-config | generate-config`: parses arguments, calls the library."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from capsem_proxy import __version__
from capsem_proxy.config import CONFIG_ENV_VAR, ConfigError, Settings, load_settings
from capsem_proxy.config_template import render_config_template

__all__ = ["main"]


def _load_and_validate(config: str | None) -> Settings:
    """Settings plus their policies, loaded once so that any mistake stops here."""
    from capsem_proxy.approvals import open_approval_store
    from capsem_proxy.audit import open_audit_sink
    from capsem_proxy.policy_sets import PolicySelector

    settings = load_settings(config)
    open_audit_sink(settings.audit.url)
    open_approval_store(settings.confirm.store_url, settings.confirm.approval_ttl_seconds, settings.confirm.max_pending)
    PolicySelector(settings, source=f"config {config}" if config else "config")
    return settings


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    if args.config:
        os.environ[CONFIG_ENV_VAR] = str(Path(args.config).resolve())
    settings = _load_and_validate(args.config)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    workers = args.workers or settings.server.workers
    logging.basicConfig(
        level=settings.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = {
        "host": host,
        "port": port,
        "http": "httptools",
        "lifespan": "on",
        # uvicorn's access log prints query strings, where Gemini callers may put their key.
        "access_log": False,
        "server_header": False,
        "log_level": settings.server.log_level,
        "timeout_keep_alive": 75,
    }
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:  # pragma: no cover - uvloop is missing on Windows
        options["loop"] = "asyncio"
    if workers > 1:
        if settings.confirm.store_url.startswith("memory:"):
            logging.getLogger("capsem_proxy").warning(
                "%d workers with confirm.store_url memory://: an approval given to one worker is unknown to the "
                "others; set confirm.store_url to a redis:// URL",
                workers,
            )
        uvicorn.run("capsem_proxy.server:app", workers=workers, **options)
    else:
        from capsem_proxy.app import ProxyApp

        uvicorn.run(ProxyApp(settings), **options)
    return 0


def _validate(args: argparse.Namespace) -> int:
    _load_and_validate(args.file)
    print(f"{args.file}: configuration is valid")
    return 0


def _generate(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.exists() and not args.force:
        print(f"{path} exists; use --force to overwrite", file=sys.stderr)
        return 2
    path.write_text(render_config_template(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capsem-proxy", description="Security proxy for LLM APIs.")
    parser.add_argument("--version", action="version", version=f"capsem-proxy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the proxy")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--config", help=f"YAML config file (or ${CONFIG_ENV_VAR})")
    run.add_argument("--workers", type=int, help="number of worker processes")
    run.set_defaults(handler=_run)
    validate = commands.add_parser("validate-config", help="check a config file and its policies")
    validate.add_argument("file")
    validate.set_defaults(handler=_validate)
    generate = commands.add_parser("generate-config", help="write a commented config file with every default")
    generate.add_argument("file")
    generate.add_argument("--force", action="store_true", help="overwrite an existing file")
    generate.set_defaults(handler=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `capsem-proxy` command."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"capsem-proxy: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
