"""Command line: ``python -m connectors.sandbox [--host H] [--hub-url URL] [--systems crm,hr] [--port-base 8100]``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .config import DEFAULT_PORTS
from .server import Sandbox


def name_and_number(value: str, *, expected: str) -> tuple[str, float]:
    """A NAME=NUMBER command-line value, e.g. crm=20."""
    name, sep, number = value.partition("=")
    try:
        if not sep:
            raise ValueError
        return name, float(number)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected {expected}") from exc


def _parse_rate_limit(value: str) -> tuple[str, float]:
    return name_and_number(value, expected="SYSTEM=REQUESTS_PER_SECOND, e.g. crm=20")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.sandbox",
        description="Run the sandbox business systems (fake vendor APIs) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--hub-url", help="send signed webhooks to HUB_URL/hooks/<system>/")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_PORTS),
        help=f"comma-separated subset of {','.join(DEFAULT_PORTS)}",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=8100,
        help="system N (in the order above, from 1) listens on PORT_BASE + N",
    )
    parser.add_argument(
        "--rate-limit",
        action="append",
        type=_parse_rate_limit,
        default=[],
        metavar="SYSTEM=N",
        help="requests per second for a system (repeatable)",
    )
    parser.add_argument(
        "--duplicate-rate", type=float, default=0.05, help="probability of resending a webhook"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = [name for name in names if name not in DEFAULT_PORTS]
    if unknown:
        print(f"unknown systems: {', '.join(unknown)}", file=sys.stderr)
        return 2
    ports = {name: args.port_base + position + 1 for position, name in enumerate(DEFAULT_PORTS)}
    sandbox = Sandbox(
        names,
        host=args.host,
        ports={name: ports[name] for name in names},
        hub_url=args.hub_url,
        rate_limits=dict(args.rate_limit),
        duplicate_rate=args.duplicate_rate,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        sandbox.start()
    except OSError as exc:
        print(f"cannot start sandbox: {exc}", file=sys.stderr)
        return 1
    for name in names:
        print(f"{name} {sandbox.url(name)}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0
