"""The `order-watcher` command line.

Exit codes: 0 success, 1 a dependency failed (`check`, `once` with failed sources, `tail`
without a broker, `run` when a part of the service failed and it stopped), 2 bad
configuration or usage (one line per mistake, never a traceback), 130 interrupted by
Ctrl-C (`tail`, `demo`, `simulate`; `run` drains on SIGINT and SIGTERM and exits 0).
Only this module configures logging handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import NoReturn, TypeAlias

from watcher import app, demo, logs, settings, vendors
from watcher.bus import tail
from watcher.core.durations import parse_duration_s
from watcher.core.errors import BusError, ConfigError, ServiceFailed

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
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
        # Ctrl-C on tail, demo or simulate: the shell's convention, 128 + SIGINT, no traceback.
        return EXIT_INTERRUPTED


class _Parser(argparse.ArgumentParser):
    """A usage error is one line naming the option, and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see {self.prog} --help)\n")


_Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="order-watcher",
        description="Watch vendor orders and publish their changes.",
        parents=[_logging_options(defaults=True)],
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, text in (
        ("run", _run, "the service: pollers and the outbox relay; SIGTERM drains cleanly"),
        ("once", _once, "one poll of every source; events printed as JSON lines"),
        ("check", _check, "validate the config and reach each dependency; the store is only read"),
    ):
        command = _command(commands, name, text)
        command.add_argument("--config", type=Path, help="TOML file (default: $WATCHER_CONFIG)")
        command.set_defaults(handler=handler)
    _add_tail(commands)
    _add_demo(commands)
    _add_simulate(commands)
    return parser


def _logging_options(*, defaults: bool) -> _Parser:
    """--log-level and --log-format, before the command (`defaults`) or after it."""
    options = _Parser(add_help=False)
    options.add_argument(
        "--log-level",
        type=_log_level,
        default="INFO" if defaults else argparse.SUPPRESS,
        help=f"{', '.join(LOG_LEVELS)} (default: INFO)",
    )
    options.add_argument(
        "--log-format",
        choices=("plain", "json"),
        default=None if defaults else argparse.SUPPRESS,
        help="overrides the config's log_format",
    )
    return options


def _command(commands: _Commands, name: str, text: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name, help=text, description=text, parents=[_logging_options(defaults=False)]
    )


def _log_level(text: str) -> str:
    if text.upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return text.upper()


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return number


def _first_of_four_ports(text: str) -> int:
    port = int(text) if text.isdigit() else 0
    if not 1 <= port <= 65_535 - 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65532 (four in a row)")
    return port


def _duration(*, zero: bool) -> Callable[[str], float]:
    """A duration option ('90s', '2m' or seconds): more than zero, or zero too."""

    def parse(text: str) -> float:
        try:
            seconds = parse_duration_s(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if seconds < 0 or (seconds == 0 and not zero):
            bound = "0 or more" if zero else "more than 0"
            raise argparse.ArgumentTypeError(f"{text!r} is not a duration of {bound}")
        return seconds

    return parse


def _version() -> str:
    try:
        return metadata.version("order-watcher")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _add_tail(commands: _Commands) -> None:
    text = "print events from the broker as they are published (a temporary queue of its own)"
    command = _command(commands, "tail", text)
    command.add_argument(
        "patterns", nargs="*", default=["#"], help="routing-key patterns (default: #)"
    )
    command.add_argument("--config", type=Path, help="TOML file; without one, the defaults")
    command.add_argument("--json", action="store_true", help="print each message's body exactly")
    command.add_argument("--limit", type=_at_least_one, help="stop after this many events")
    command.set_defaults(handler=_tail)


def _add_demo(commands: _Commands) -> None:
    text = "the bundled simulator and the watcher on embedded defaults, changes shown live"
    command = _command(commands, "demo", text)
    command.add_argument("--customers", type=_at_least_one, default=3, help="per vendor")
    positive = _duration(zero=False)
    command.add_argument("--tick-s", type=positive, default=3.0, help="time between changes")
    command.add_argument("--poll-interval-s", type=positive, default=2.0)
    command.add_argument("--duration-s", type=positive, default=None, help="stop after this long")
    command.set_defaults(handler=_demo)


def _add_simulate(commands: _Commands) -> None:
    text = "the four vendor simulators (tokens, paging, faults, order lifecycles) on PORT.."
    command = _command(commands, "simulate", text)
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=_first_of_four_ports, default=8080, help="first of four")
    command.add_argument("--customers", type=_at_least_one, default=3, help="per vendor")
    command.add_argument("--orders", type=_at_least_one, default=4, help="per customer")
    command.add_argument(
        "--tick-s", type=_duration(zero=True), default=0.0, help="0: change only via admin"
    )
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
    try:
        loaded = settings.load(path, notices=notices)
    except ConfigError:
        for notice in notices:  # logging is not set up yet, and may never be
            print(f"order-watcher: warning: {notice}", file=sys.stderr)
        raise
    logs.configure(style=args.log_format or loaded.log_format, level=args.log_level)
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
    baselines = [result for result in results if result.baseline]
    if baselines:
        orders = sum(result.orders for result in baselines)
        print(
            f"order-watcher: baseline: {orders} order(s) of {len(baselines)} customer(s)"
            " recorded; a baseline publishes nothing, the next poll reports what changed",
            file=sys.stderr,
        )
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
    logs.configure(style=args.log_format or "plain", level="WARNING")
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
    logs.configure(style=args.log_format or "plain", level=args.log_level)
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
