"""The `order-watcher` command line.

Exit codes: 0 success, 1 a dependency failed (`check`, `once` with failed sources, `tail`
without a broker, `run` when a part of the service failed and it stopped), 2 bad
configuration or usage. Only this module configures logging handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from watcher import app, demo, logs, settings, vendors
from watcher.bus import tail
from watcher.core.errors import BusError, ConfigError, ServiceFailed

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
log = logging.getLogger("watcher.cli")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"order-watcher: bad configuration: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="order-watcher", description="Watch vendor orders and publish their changes."
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, text in (
        ("run", _run, "the service: pollers and the outbox relay; SIGTERM drains cleanly"),
        ("once", _once, "one poll of every source; events printed as JSON lines"),
        ("check", _check, "validate the config and reach each dependency"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--config", type=Path, help="TOML file (default: $WATCHER_CONFIG)")
        command.set_defaults(handler=handler)
    _add_tail(commands)
    _add_demo(commands)
    _add_simulate(commands)
    return parser


def _add_tail(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "print events from the broker as they are published (a temporary queue of its own)"
    command = commands.add_parser("tail", help=text, description=text)
    command.add_argument(
        "patterns", nargs="*", default=["#"], help="routing-key patterns (default: #)"
    )
    command.add_argument("--config", type=Path, help="TOML file; without one, the defaults")
    command.add_argument("--json", action="store_true", help="print each event as a JSON line")
    command.add_argument("--limit", type=int, default=None, help="stop after this many events")
    command.set_defaults(handler=_tail)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "the bundled simulator and the watcher on embedded defaults, changes shown live"
    command = commands.add_parser("demo", help=text, description=text)
    command.add_argument("--customers", type=int, default=3)
    command.add_argument("--tick-s", type=float, default=3.0, help="seconds between changes")
    command.add_argument("--poll-interval-s", type=float, default=2.0)
    command.add_argument("--duration-s", type=float, default=None, help="stop after this long")
    command.set_defaults(handler=_demo)


def _add_simulate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "the four vendor simulators (tokens, paging, faults, order lifecycles) on PORT.."
    command = commands.add_parser("simulate", help=text, description=text)
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=int, default=8080, help="first of four ports")
    command.add_argument("--customers", type=int, default=3, help="customers per vendor")
    command.add_argument("--orders", type=int, default=4, help="orders per customer")
    command.add_argument("--tick-s", type=float, default=0.0, help="0: change only via admin")
    command.add_argument(
        "--provider",
        action="append",
        choices=vendors.NAMES,
        help="serve only this vendor (repeatable; default: all four)",
    )
    command.set_defaults(handler=_simulate)


def _config_path(args: argparse.Namespace) -> Path | None:
    if args.config is not None:
        return Path(args.config)
    return Path(os.environ["WATCHER_CONFIG"]) if "WATCHER_CONFIG" in os.environ else None


def _load(args: argparse.Namespace, *, required: bool = True) -> settings.Settings:
    path = _config_path(args)
    if path is None and required:
        raise ConfigError("--config", "give a config file with --config PATH or WATCHER_CONFIG")
    notices: list[str] = []
    loaded = settings.load(path, notices=notices)
    logs.configure(style=loaded.log_format, level=args.log_level)
    for notice in notices:
        log.warning("%s", notice)
    return loaded


def _load_with_sources(args: argparse.Namespace) -> settings.Settings:
    loaded = _load(args)
    if not loaded.sources:
        raise ConfigError("sources", "at least one [[sources]] entry is needed")
    return loaded


def _run(args: argparse.Namespace) -> int:
    try:
        asyncio.run(app.serve_until_signalled(_load_with_sources(args)))
    except ServiceFailed as exc:
        # The service logged the failure when it happened; this line is what a supervisor
        # shows next to the exit code.
        print(f"order-watcher: the service stopped: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _once(args: argparse.Namespace) -> int:
    results = asyncio.run(app.once(_load_with_sources(args), out=sys.stdout))
    return EXIT_OK if all(result.error is None for result in results) else EXIT_FAILED


def _check(args: argparse.Namespace) -> int:
    checks = asyncio.run(app.check(_load(args)))
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED


def _tail(args: argparse.Namespace) -> int:
    loaded = _load(args, required=False)
    try:
        asyncio.run(
            tail.tail(
                loaded.amqp,
                patterns=args.patterns,
                out=sys.stdout,
                json_lines=args.json,
                limit=args.limit,
            )
        )
    except BusError as exc:
        print(f"order-watcher: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    logs.configure(level="WARNING")
    try:
        asyncio.run(
            demo.run(
                customers=args.customers,
                tick_s=args.tick_s,
                poll_interval_s=args.poll_interval_s,
                duration_s=args.duration_s,
                out=sys.stdout,
            )
        )
    except* BrokenPipeError:
        # The reader went away (`demo | head`): stop quietly, and keep the interpreter
        # from complaining when it flushes the closed stdout on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    logs.configure(level=args.log_level)
    asyncio.run(
        demo.simulate(
            host=args.host,
            port=args.port,
            customers=args.customers,
            orders=args.orders,
            tick_s=args.tick_s,
            providers=args.provider,
        )
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
