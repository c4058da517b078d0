"""The processes a bench run starts, as roles ``(name, argv, env)``.

The hub's roles are measured as one ("hub total"); a new kind of hub process (an "engine") is
one more entry in `hub_roles`. The target is measured on its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from connectors.netpolicy import env_allowing_loopback

from .processes import Role


def child_env(run: str, workers: int) -> dict[str, str]:
    """The hub's environment for a run: its own queue and cache prefix, loopback targets allowed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **env_allowing_loopback(env),  # the targets listen on 127.0.0.1
        "HUB_WORKERS": str(workers),
        "HUB_QUEUE_NAME": f"bench-{run}",
        "HUB_CACHE_PREFIX": f"bench-{run}",
        "HUB_DRAIN_LINGER_SECONDS": "2",
    }


def hub_roles(
    *, base_dir: Path, web_port: int, web_workers: int, env: dict[str, str], engine_port: int | None = None
) -> list[Role]:
    """The hub's processes: the web server (gunicorn), the workers (qcluster) and, with an
    `engine_port`, the engine (webhooks in, deliveries out)."""
    web = [
        sys.executable,
        "-m",
        "gunicorn",
        "hub.wsgi:application",
        "--bind",
        f"127.0.0.1:{web_port}",
        "--workers",
        str(web_workers),
        "--worker-class",
        "hub.gunicorn_worker.NoDelaySyncWorker",
        "--log-level",
        "warning",
    ]
    workers = [sys.executable, str(base_dir / "manage.py"), "qcluster"]
    roles: list[Role] = [("web", web, env), ("workers", workers, env)]
    if engine_port:
        engine = [sys.executable, str(base_dir / "manage.py"), "engine", "--port", str(engine_port)]
        roles.append(("engine", engine, env))
    return roles


def bench_target(*, port: int, latency_ms: float, api_key: str) -> list[str]:
    """The lean aiohttp target (benchkit/target.py)."""
    return [
        sys.executable,
        "-m",
        "hub.management.benchkit.target",
        "--port",
        str(port),
        "--latency-ms",
        f"{latency_ms:g}",
        "--api-key",
        api_key,
    ]


def sandbox_target(*, port: int) -> list[str]:
    """The inventory sandbox system alone, on `port`."""
    port_base = port - 3  # the sandbox numbers its systems from a base; inventory is the third
    return [
        sys.executable,
        "-m",
        "connectors.sandbox",
        "--systems",
        "inventory",
        "--port-base",
        str(port_base),
    ]


def faulty_target(*, port: int, shares: dict[str, float]) -> list[str]:
    """The fault-injection target; its late answers come 1.5 s after the request, past the 1 s
    read timeout the bench gives its target system."""
    return [
        sys.executable,
        "-m",
        "connectors.sandbox.faulty",
        "--port",
        str(port),
        "--timeout-delay",
        "1.5",
        *(f"--share={name}={share}" for name, share in shares.items()),
    ]
