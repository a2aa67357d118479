"""`capsem-proxy run | validate-config | generate-config | audit verify|export|tail | replay | mcp-stdio`:
parses arguments, calls the library."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from capsem_proxy import __version__
from capsem_proxy.banner import announce_when_listening
from capsem_proxy.config import CONFIG_ENV_VAR, ConfigError, Settings, load_settings
from capsem_proxy.config_errors import without_help_links
from capsem_proxy.config_template import render_config_template
from capsem_proxy.gateway.cli import add_keys_commands

if TYPE_CHECKING:
    from capsem_proxy.audit.tools import Reader

__all__ = ["main"]


def _load_and_validate(config: str | None) -> Settings:
    """Settings plus their policies, loaded once so that any mistake stops here."""
    from capsem_proxy.audit import open_audit_sink
    from capsem_proxy.confirm.store import open_approval_store
    from capsem_proxy.extras import needs_extra
    from capsem_proxy.policy_sets import PolicySelector

    settings = load_settings(config)
    open_audit_sink(settings.audit)
    open_approval_store(settings.confirm.store_url, settings.confirm.approval_ttl_seconds, settings.confirm.max_pending)
    PolicySelector(settings, source=f"config {config}" if config else "config")
    if settings.tracing.enabled:
        with needs_extra("tracing.enabled"):
            import capsem_proxy.tracing  # noqa: F401 - the OpenTelemetry SDK it loads is an extra
    return settings


def _run(args: argparse.Namespace) -> int:
    import logging.config

    import uvicorn

    from capsem_proxy.http_server import uvicorn_options
    from capsem_proxy.logs import logging_config
    from capsem_proxy.metrics import prepare_multiprocess

    if args.config:
        os.environ[CONFIG_ENV_VAR] = str(Path(args.config).resolve())
    settings = _load_and_validate(args.config)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    workers = args.workers or settings.server.workers
    log_config = logging_config(settings)
    logging.config.dictConfig(log_config)
    announce_when_listening(settings, host, port, workers)
    options: dict[str, Any] = {
        "log_config": log_config,
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
    options.update(uvicorn_options(settings.server))  # the HTTP server's limits (capsem_proxy.http_server)
    if workers > 1:
        # Workers share one set of metric files, so /metrics sums what every worker counted.
        os.environ.update(prepare_multiprocess(settings, workers))
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


def _mcp_stdio(args: argparse.Namespace) -> int:
    import logging

    from capsem_proxy.mcp.stdio import run_stdio_server

    command = args.server_command[1:] if args.server_command[:1] == ["--"] else args.server_command
    if not command:
        raise ConfigError("mcp-stdio needs the server's command after --: capsem-proxy mcp-stdio --name N -- CMD ARGS")
    # Standard output carries the MCP messages: every log line goes to standard error.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="capsem-proxy: %(levelname)s %(message)s")
    settings = _load_and_validate(args.config)
    try:
        return asyncio.run(run_stdio_server(settings, args.name, command))
    except KeyboardInterrupt:
        return 130
    except FileNotFoundError as exc:
        raise ConfigError(f"mcp-stdio: cannot start the server command {command[0]!r} ({exc.strerror})") from None


def _validate(args: argparse.Namespace) -> int:
    # `validate-config FILE` (the documented form) and `validate-config --config FILE` (as `run` and
    # `audit` spell it) are the same; with neither, the file $CAPSEM_PROXY_CONFIG names, as `run` does.
    if args.file and args.config and Path(args.file) != Path(args.config):
        raise ConfigError(f"two config files given ({args.file} and --config {args.config}); give one")
    config = args.file or args.config or os.environ.get(CONFIG_ENV_VAR)
    if not config:
        raise ConfigError(f"no config file given: capsem-proxy validate-config FILE (or set ${CONFIG_ENV_VAR})")
    settings = _load_and_validate(config)
    for missing in settings.mcp.missing_variables():
        # Header secrets are often set only where the proxy runs: `run` refuses to start without them.
        print(f"warning: {missing} is not set in this environment", file=sys.stderr)
    print(f"{config}: configuration is valid")
    return 0


def _generate(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.exists() and not args.force:
        print(f"{path} exists; use --force to overwrite", file=sys.stderr)
        return 2
    path.write_text(render_config_template(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _audit_url(args: argparse.Namespace, settings: Settings | None = None) -> str:
    """The store to read: --url, else audit.url of --config (or of the usual config sources)."""
    if args.url:
        return str(args.url)
    return (settings or load_settings(args.config)).audit.url


def _with_reader(url: str, work: Callable[[Reader], Awaitable[int]]) -> int:
    """Open the store read-only, run `work` on it, close it; store failures exit with 2."""
    from capsem_proxy.audit.tools import open_reader

    reader = open_reader(url)

    async def session() -> int:
        try:
            await reader.open()
            return await work(reader)
        finally:
            await reader.close()

    try:
        return asyncio.run(session())
    except KeyboardInterrupt:
        return 130
    except (ConfigError, BrokenPipeError):
        raise
    except Exception as exc:
        print(f"capsem-proxy: audit store {reader.description}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _audit_verify(args: argparse.Namespace) -> int:
    from capsem_proxy.audit.head import HeadFileError, read_exported_head
    from capsem_proxy.audit.keys import chain_key_for, default_head_path
    from capsem_proxy.audit.tools import parse_anchor, verify_chain

    settings = load_settings(args.config)
    anchors = [parse_anchor(anchor) for anchor in args.anchor]
    key = chain_key_for(settings)
    head_path = None if args.no_head else Path(args.head) if args.head else default_head_path(settings)
    exported = None
    if head_path is not None:
        try:
            exported = read_exported_head(head_path, key)
        except FileNotFoundError:
            pass
        except HeadFileError as exc:
            print(f"chain broken: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            raise ConfigError(f"cannot read the exported head {head_path}: {exc.strerror or exc}") from None

    async def work(reader: Reader) -> int:
        report = await verify_chain(reader, key, anchors, exported, f"the exported head in {head_path}")
        if report.broken is None and head_path is not None and exported is None and report.walk.rows:
            print(
                f"chain not anchored: there is no exported head at {head_path}. The proxy writes it as it writes "
                "rows, so either it was deleted or this is not the proxy's data dir: pass --config (or --head "
                "FILE), or --no-head to check the store alone (a store cut short with its head moved back then "
                "goes unseen)", file=sys.stderr,
            )
            return 1
        print(report.describe(), file=sys.stderr if report.broken else sys.stdout)
        return 1 if report.broken else 0

    return _with_reader(_audit_url(args, settings), work)


def _audit_export(args: argparse.Namespace) -> int:
    from capsem_proxy.audit.tools import export_rows, parse_moment, write_rows

    since = parse_moment(args.since) if args.since else None
    until = parse_moment(args.until) if args.until else None

    async def work(reader: Reader) -> int:
        rows = export_rows(reader, args.table, since, until, tenant_id=args.tenant)
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                count = await write_rows(rows, args.table, args.format, out)
            print(f"wrote {count} {args.table} rows to {args.output}", file=sys.stderr)
        else:
            await write_rows(rows, args.table, args.format, sys.stdout)
        return 0

    return _with_reader(_audit_url(args), work)


def _audit_lifecycle(args: argparse.Namespace) -> int:
    """`audit prune` and `audit erase`: the only audit commands that write (they need the chain key)."""
    from capsem_proxy.audit.keys import chain_key_for
    from capsem_proxy.audit.lifecycle import erase, open_store, prune
    from capsem_proxy.audit.tools import parse_moment

    settings = load_settings(args.config)
    key = chain_key_for(settings)
    store = open_store(_audit_url(args, settings), key)

    async def work() -> int:
        await store.open()
        try:
            if args.audit_command == "prune":
                if args.before:
                    before = parse_moment(args.before)
                elif settings.audit.retention_days is not None:
                    before = time.time() - settings.audit.retention_days * 86400
                else:
                    raise ConfigError("audit prune: give --before (a time or a duration ago, e.g. 90d), or set "
                                      "audit.retention_days")
                pruned = await prune(store, key, before)
                if not pruned.upto_seq:
                    print("nothing to prune: no row older than the cut-off starts the chain")
                else:
                    print(f"pruned {pruned.requests} request and {pruned.decisions} decision rows (up to seq "
                          f"{pruned.upto_seq}); recorded as row {pruned.record_seq}")
                return 0
            erased = await erase(store, key, tenant_id=args.tenant, session_id=args.session,
                                 max_rows=args.max_rows)
            scope = f"tenant {args.tenant}" if args.tenant is not None else f"session {args.session}"
            recorded = (f"recorded as row {erased.record_seq}" if erased.steps == 1 else
                        f"in {erased.steps} steps, recorded as rows, the last {erased.record_seq}")
            print(f"erased the content of {erased.requests} request and {erased.decisions} decision rows of "
                  f"{scope}; {recorded}")
            return 0
        finally:
            await store.close()

    try:
        return asyncio.run(work())
    except (ConfigError, KeyboardInterrupt):
        raise
    except ValueError as exc:
        raise ConfigError(f"audit {args.audit_command}: {exc}") from None
    except Exception as exc:
        print(f"capsem-proxy: audit store {store.description}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _audit_tail(args: argparse.Namespace) -> int:
    from capsem_proxy.audit.tools import tail_rows

    tables = ("requests", "decisions") if args.table == "all" else (args.table,)

    def emit(row: dict[str, Any]) -> None:
        sys.stdout.write(orjson.dumps(row).decode() + "\n")
        sys.stdout.flush()

    async def work(reader: Reader) -> int:
        await tail_rows(reader, tables, args.n, args.follow, emit, interval=args.interval)
        return 0

    return _with_reader(_audit_url(args), work)


def _add_audit_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    audit = commands.add_parser(
        "audit", parents=[common], help="the audit trail: verify its hash chain, export, tail, prune, erase",
        description="Read the audit trail of a SQLite or PostgreSQL store (verify, export and tail are read-only), or "
        "apply retention and erasure to it (prune, erase); the proxy may keep running.",
    )
    actions = audit.add_subparsers(
        dest="audit_command", required=True, metavar="{verify,export,tail,prune,erase}",
        help="what to do with the trail"
    )
    store = argparse.ArgumentParser(add_help=False, parents=[common])
    store.add_argument(
        "--config", metavar="FILE", help=f"the proxy's YAML config: its audit.url, server.data_dir and secret "
        f"(default: ${CONFIG_ENV_VAR})"
    )
    store.add_argument(
        "--url", help="audit store URL, instead of the config's audit.url: sqlite:///path or "
        "postgresql://...[?schema=name]"
    )
    verify = actions.add_parser(
        "verify", parents=[store],
        help="check the keyed hash chain and the exported head; names the first broken row and exits 1",
        description="Walk every row in order and check the keyed hash chain, the head's MAC and the head the "
        "proxy exported; exit 1 naming the first broken row.",
    )
    head = verify.add_mutually_exclusive_group()
    head.add_argument(
        "--head", metavar="FILE", help="the head file the proxy exports (default: audit.head_file, else "
        "<server.data_dir>/audit-head.json); the row it names must still be in the store, unchanged",
    )
    head.add_argument("--no-head", action="store_true", help="check the store alone, without an exported head")
    verify.add_argument(
        "--anchor", action="append", default=[], metavar="SEQ:HASH",
        help="a head noted elsewhere (printed by an earlier verify, or an 'audit chain head' log line): the "
        "row must still have that hash; repeatable",
    )
    verify.set_defaults(handler=_audit_verify)
    export = actions.add_parser(
        "export", parents=[store], help="write rows as JSON lines or CSV",
        description="Write the rows of one table, oldest first, as JSON lines or CSV.",
    )
    export.add_argument("--since", help="first row's time: ISO 8601, or a duration ago (90s, 15m, 1h, 2d)")
    export.add_argument("--until", help="end time (exclusive): ISO 8601, or a duration ago")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format (default: jsonl)")
    export.add_argument(
        "--table", choices=["requests", "decisions"], default="requests", help="which rows (default: requests)"
    )
    export.add_argument("--output", "-o", metavar="FILE", help="file to write (default: standard output)")
    export.add_argument("--tenant", metavar="TENANT_ID", help="only this tenant's rows")
    export.set_defaults(handler=_audit_export)
    prune = actions.add_parser(
        "prune", parents=[store], help="remove rows older than the retention period, keeping the chain verifiable",
        description="Remove the oldest rows (those older than --before, default audit.retention_days ago). The chain "
        "then begins at a checkpoint signed with the chain key, so `audit verify` still checks every row left.",
    )
    prune.add_argument("--before", help="cut-off: ISO 8601, or a duration ago (90d)")
    prune.set_defaults(handler=_audit_lifecycle)
    erase = actions.add_parser(
        "erase", parents=[store], help="erase the stored content of one tenant or one session",
        description="Blank the prompts, answers, decision details and subjects of one tenant's or one session's "
        "rows, keeping the rows (and the chain) verifiable; the erasure is recorded as a row of its own.",
    )
    scope = erase.add_mutually_exclusive_group(required=True)
    scope.add_argument("--tenant", metavar="TENANT_ID", help="the tenant whose content to erase")
    scope.add_argument("--session", metavar="SESSION_ID", help="the session whose content to erase")
    erase.add_argument("--max-rows", type=int, default=10_000, metavar="N",
                       help="rows erased per transaction (default 10000); a stopped erasure resumes when rerun")
    erase.set_defaults(handler=_audit_lifecycle)
    tail = actions.add_parser(
        "tail", parents=[store], help="print the newest rows as JSON lines, oldest first",
        description="Print the newest rows as JSON lines, oldest first; with --follow, then every new row.",
    )
    tail.add_argument("-n", type=int, default=20, metavar="N", help="how many rows to print first (default: 20)")
    tail.add_argument("--follow", "-f", action="store_true", help="then keep printing new rows")
    tail.add_argument(
        "--table", choices=["all", "requests", "decisions"], default="all", help="which rows (default: all)"
    )
    tail.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="seconds between polls with --follow "
        "(default: 1)"
    )
    tail.set_defaults(handler=_audit_tail)


def _replay(args: argparse.Namespace) -> int:
    from capsem_proxy.audit.tools import parse_moment
    from capsem_proxy.policy_sets import PolicySelector
    from capsem_proxy.replay import replay

    settings = load_settings(args.config)
    selector = PolicySelector(settings, source=f"config {args.config}")
    since = parse_moment(args.since) if args.since else None
    until = parse_moment(args.until) if args.until else None

    async def work(reader: Reader) -> int:
        report = await replay(reader, selector, since=since, until=until, limit=args.limit)
        if args.format == "json":
            for change in report.changes:
                sys.stdout.write(orjson.dumps(change.as_dict()).decode() + "\n")
        else:
            _print_replay_table(report)
        summary = (
            f"replayed {report.replayed} request(s) with stored content; {len(report.changes)} verdict(s) changed"
            f"; {report.without_content} request(s) without stored content skipped"
            + (f"; {report.not_comparable} redacted before storage, not comparable" if report.not_comparable else "")
        )
        print(summary, file=sys.stderr if args.format == "json" else sys.stdout)
        return 0

    return _with_reader(_audit_url(args, settings), work)


def _print_replay_table(report: Any) -> None:
    rows = [("request", "policy", "before", "after", "reason")]
    rows += [(c.request_id, c.policy, c.before, c.after, c.reason) for c in report.changes]
    widths = [max(len(row[index]) for row in rows) for index in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4])
    counts = report.counts()
    if counts:
        print("\nchanges per policy:")
        for policy, counter in counts.items():
            moves = ", ".join(f"{move}: {number}" for move, number in counter.items() if move != "changed")
            print(f"  {policy}: {counter['changed']} ({moves})")


_ENV_NOTE = (
    "Every config key can also be set by an environment variable CAPSEM_PROXY_<SECTION>__<KEY> "
    "(CAPSEM_PROXY_ADMIN__TOKEN=...); the environment wins over the file."
)


def _parser() -> argparse.ArgumentParser:
    version = f"capsem-proxy {__version__}"
    # Every command and subcommand answers --version, so it works wherever a user types it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--version", action="version", version=version, help="print the version and exit")
    parser = argparse.ArgumentParser(
        prog="capsem-proxy", parents=[common],
        description="Security proxy for LLM APIs: point an OpenAI, Gemini or Anthropic SDK at it and every "
        "prompt, tool call and answer passes through security policies.",
        epilog="Start with `capsem-proxy run`; `capsem-proxy COMMAND --help` describes each command. "
        "Docs: README.md, docs/detectors.md, docs/observability.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")
    run = commands.add_parser(
        "run", parents=[common], help="start the proxy",
        description="Start the proxy (default 127.0.0.1:8000) and print what it serves, its policies and "
        "where its data goes.",
        epilog=_ENV_NOTE,
    )
    run.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    run.add_argument("--port", type=int, help="TCP port to listen on (default: server.port, 8000)")
    run.add_argument(
        "--config", metavar="FILE",
        help=f"YAML config file (default: ${CONFIG_ENV_VAR}; without either, the built-in defaults)",
    )
    run.add_argument(
        "--workers", type=int, metavar="N",
        help="worker processes (default: server.workers, 1); with more than one, set confirm.store_url to "
        "Redis so approvals reach every worker",
    )
    run.set_defaults(handler=_run)
    validate = commands.add_parser(
        "validate-config", parents=[common], help="check a config file and load its policies",
        description="Check a config file the way `run` reads it (environment included) and load every "
        "policy it names; exit 2 naming the key at fault.",
        epilog=_ENV_NOTE,
    )
    validate.add_argument("file", nargs="?", metavar="FILE", help="the YAML config file to check")
    validate.add_argument(
        "--config", metavar="FILE", help=f"the same, spelled as for `run` (default: ${CONFIG_ENV_VAR})"
    )
    validate.set_defaults(handler=_validate)
    generate = commands.add_parser(
        "generate-config", parents=[common], help="write a commented config file with every default",
        description="Write a YAML config file listing every key with its default and a comment.",
    )
    generate.add_argument("file", metavar="FILE", help="where to write it")
    generate.add_argument("--force", action="store_true", help="overwrite an existing file")
    generate.set_defaults(handler=_generate)
    _add_audit_commands(commands, common)
    add_keys_commands(commands, common)
    replay = commands.add_parser(
        "replay", parents=[common], help="re-run recorded requests through another config's policies",
        description="Re-run the requests the audit trail stored content for (audit.store_content) through the "
        "policies of --config, offline, and print every verdict that changes, with counts per policy.",
    )
    replay.add_argument("--config", metavar="FILE", required=True, help="the configuration whose policies to try")
    replay.add_argument(
        "--url", help="audit store to read (default: the config's audit.url): sqlite:///path or postgresql://..."
    )
    replay.add_argument("--since", default="24h", help="first request's time: ISO 8601 or a duration ago "
                        "(default: 24h)")
    replay.add_argument("--until", help="end time (exclusive): ISO 8601, or a duration ago")
    replay.add_argument("--limit", type=int, metavar="N", help="replay at most N requests, newest first")
    replay.add_argument(
        "--format", choices=["table", "json"], default="table",
        help="table, or json: one {request_id, policy, before, after, reason} object per line (default: table)",
    )
    replay.set_defaults(handler=_replay)
    stdio = commands.add_parser(
        "mcp-stdio", parents=[common], help="run a local MCP server over stdio under the proxy's policies",
        description="Start CMD ARGS as an MCP server on stdio and guard what passes between it and this "
        "command's stdin/stdout with the config's policies (for desktop clients and IDEs: configure this "
        "command in place of the server's own).",
        epilog="Example: capsem-proxy mcp-stdio --name files --config proxy.yaml -- npx server-filesystem ~/work",
    )
    stdio.add_argument("--name", required=True, help="the server's name in decisions and the audit (mcp:NAME)")
    stdio.add_argument("--config", metavar="FILE", help=f"YAML config file (default: ${CONFIG_ENV_VAR})")
    stdio.add_argument("server_command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                       help="the MCP server's command line, after --")
    stdio.set_defaults(handler=_mcp_stdio)
    return parser


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (`capsem-proxy audit export | head`): stop without a
    traceback. Standard output is pointed at /dev/null so the interpreter's final flush cannot
    fail again; the exit status is a shell's for a process ended by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `capsem-proxy` command."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"capsem-proxy: {without_help_links(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _quiet_broken_pipe()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
