"""The API keeps its word: schemathesis against the OpenAPI schema of a real hub.

Creates a database of its own next to DATABASE_URL's (never the test database), migrates it,
seeds the demo and an admin with an API token, serves the hub with gunicorn on a free loopback
port, runs schemathesis with every check (tests/api_contract/schemathesis.toml says which ones
do not fit and why), then stops the server and drops the database. Exits non-zero on any
finding, so `.ci/run` fails.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python -m tests.api_contract.run

Extra arguments go to `schemathesis run` (e.g. `--max-examples 5`, `--include-path-regex dead`).
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import psycopg
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
MAX_EXAMPLES = 50  # per operation: the whole run (81 operations) took 3.6 minutes on two cores
SEED = 20240609  # the same cases every run, so a finding reproduces


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def admin_connection(url: dict) -> psycopg.Connection:
    """A connection to the server's maintenance database, for CREATE and DROP DATABASE."""
    return psycopg.connect(
        dbname="postgres", user=url["USER"], password=url["PASSWORD"] or None,
        host=url["HOST"] or None, port=url["PORT"] or None, autocommit=True,
    )  # fmt: skip


def seed() -> str:
    """The demo's systems, models and flows; events with deliveries, some dead-lettered, and a
    bulk job, so ids 1, 2, 3 … lead somewhere; an admin who may also publish, and its API token."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from connectors.base import ErrorClass
    from dlq.jobs import bulk_job_start
    from hub.demo import demo_seed
    from hub.models import Delivery, DeliveryStatus, Flow, SchemaDrift
    from hub.pipeline import clock
    from hub.pipeline.ingest import IncomingEvent, events_store
    from hub.pipeline.signals import delivery_dead_lettered
    from hub.roles import PUBLISHER, grant_role
    from hub.services.users import user_token_create
    from hub.services.versions import version_move_start

    admin = get_user_model().objects.create_superuser("contract-admin", "contract@example.com", None)
    demo_seed(actor=admin)
    flow = Flow.objects.filter(event_type="deal.won").order_by("pk").first()
    sample = flow.source_model.sample
    events_store(
        [IncomingEvent(flow.source_system, flow.event_type, f"contract-{n}", sample) for n in range(6)]
    )
    for delivery in Delivery.objects.order_by("pk")[:4]:  # as the pipeline leaves a refused delivery
        with transaction.atomic():
            Delivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.DEAD,
                attempts=1,
                finished_at=clock.now(),
                last_error_class=ErrorClass.REJECTED,
            )
            delivery.refresh_from_db()
            delivery_dead_lettered.send(
                sender=Delivery, delivery=delivery, error_class=ErrorClass.REJECTED,
                reason="422 from the target: email is required", last_response={"status": 422},
            )  # fmt: skip
    bulk_job_start(action="discard", filters={}, description="every open letter", reason="seed", actor=admin)
    # A change in the source records' shape and a move to a new API version, so the drift and
    # version-move ids lead somewhere too.
    SchemaDrift.objects.create(
        system=flow.source_system, data_model=flow.source_model, kind=SchemaDrift.Kind.ADDED,
        path="coupon", seen_type="string", samples=["WINTER"], events=1,
        first_seen_at=clock.now(), last_seen_at=clock.now(),
    )  # fmt: skip
    target = flow.target_system
    version_move_start(
        system=target, to_version="v9", to_in=target.api_version_in, to_name=target.api_version_name,
        actor=admin,
    )  # fmt: skip
    grant_role(admin, PUBLISHER)  # tokens are for accounts that publish; a superuser is also admin
    return user_token_create(user=admin, actor=admin)


def prepare(env: dict) -> str:
    """Migrate, seed the demo, and return an admin's API token (in a child process, so this one
    never holds a connection to the database it drops)."""
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from tests.api_contract.run import seed\n"
        "call_command('migrate', verbosity=0)\n"
        "print(seed())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"migrating and seeding the contract database failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server did not answer {url}/healthz within {timeout} s")


def main(extra: list[str]) -> int:
    server_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    base = dj_database_url.parse(server_url)
    if "postgresql" not in base["ENGINE"]:
        raise SystemExit(
            "DATABASE_URL must name a PostgreSQL server: the contract run creates its own database"
        )
    name = f"api_contract_{os.getpid()}"
    var_dir = tempfile.mkdtemp(prefix="api-contract-")  # var/ of this hub: its env file, SQLite never
    env = {
        **os.environ,
        "DATABASE_URL": urlsplit(server_url)._replace(path=f"/{name}").geturl(),
        "DJANGO_SETTINGS_MODULE": "hub.settings",
        "DEBUG": "0",  # as deployed: a server error is a plain 500, not a debug page
        "SECRET_KEY": secrets.token_urlsafe(50),
        "HUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HUB_QUEUE_NAME": f"api-contract-{os.getpid()}",  # no running worker takes its deliveries
        "HUB_CACHE_PREFIX": f"api-contract-{os.getpid()}",
        "HUB_VAR_DIR": var_dir,
        "LOG_LEVEL": "ERROR",  # the server's log shows its errors, not every refused request
    }
    with admin_connection(base) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    server = None
    try:
        token = prepare(env)
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "hub.wsgi:application", "--bind", f"127.0.0.1:{port}",
                "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--timeout", "30",
                "--log-level", "warning",
            ],
            cwd=ROOT, env=env,
        )  # fmt: skip
        wait_until_up(origin, server)
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
            f"{origin}/api/schema/", "--url", origin,
            "--header", f"Authorization: Token {token}",
            "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
            "--workers", "2", "--request-timeout", "10",
            *extra,
        ]  # fmt: skip
        print("+", " ".join(part if token not in part else "Authorization: Token …" for part in command))
        return subprocess.run(command, cwd=ROOT, env=env).returncode
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with admin_connection(base) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
