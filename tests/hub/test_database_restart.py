"""PostgreSQL restarting under load: ingest answers 503 with Retry-After (never 500), the workers
reconnect by themselves, and every event answered 202 reaches the target once.

The hub runs as in production (gunicorn, qcluster) against a throwaway PostgreSQL cluster of its
own on a free port, so the server other tests and CI share is never stopped.
"""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, wait_for
from tests.sandbox_helpers import employee_event, records

pytestmark = pytest.mark.slow

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
SETUP = """
import json, os
from django.contrib.auth import get_user_model
from tests.factories import api_token_for
from hub.roles import PUBLISHER, ensure_role_groups, grant_role
from tests.sandbox_helpers import hr_to_inventory_accounts

class Box:
    def url(self, slug):
        return json.loads(os.environ["SANDBOX_URLS"])[slug]

flow = hr_to_inventory_accounts(Box(), event_type="employee.hired")
flow.source_system.signature_scheme = "none"
flow.source_system.save()
flow.target_model.lookup_field = "email"  # a create whose answer was lost is looked up
flow.target_model.save()
ensure_role_groups()
user = get_user_model().objects.create(username="publisher")
grant_role(user, PUBLISHER)
print(json.dumps({"token": api_token_for(user, [flow.source_system]), "slug": flow.source_system.slug}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """initdb + pg_ctl in a temporary folder, on a free port (as the postgres user when root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hub-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/hub"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            (self.dir / "commands.log").touch()
            shutil.chown(self.dir / "commands.log", "postgres")

    def run(self, *argv: str) -> None:
        command = [f"{PG_BIN[-1]}/{argv[0]}", *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # Output to a file, not a pipe: the server pg_ctl starts would hold a pipe open.
        with open(self.dir / "commands.log", "a") as out:
            subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=120)

    def start(self) -> "ThrowawayPostgres":
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust")
        self.run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "-w",
            "start",
        )
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "hub")
        return self

    def restart(self) -> None:
        """As a crash would: every connection cut at once, recovery from the WAL on start."""
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-m", "immediate", "-w", "restart"
        )

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres():
    if not PG_BIN or not shutil.which("runuser" if os.geteuid() == 0 else "true"):
        pytest.skip("PostgreSQL server binaries are not installed")
    server = ThrowawayPostgres().start()
    yield server
    server.stop()


class Hub:
    """gunicorn and qcluster on the throwaway database."""

    def __init__(self, database_url: str, sandbox) -> None:
        run = uuid.uuid4().hex[:8]
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "HUB_QUEUE_NAME": f"dbrestart-{run}",
            "HUB_CACHE_PREFIX": f"dbrestart-{run}",
            "HUB_LEASE_SECONDS": "3",
            "HUB_DRAIN_LINGER_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
            "SANDBOX_URLS": json.dumps({slug: sandbox.url(slug) for slug in ("hr", "inventory")}),
        }
        self.port = free_port()
        self.log = open(ROOT / "var" / f"dbrestart-{run}.log", "w+")
        self.children: list[subprocess.Popen] = []

    def manage(self, *argv: str) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *argv],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def spawn(self, *argv: str) -> None:
        self.children.append(
            subprocess.Popen(
                [sys.executable, *argv],
                env=self.env,
                cwd=ROOT,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start(self) -> dict:
        self.manage("migrate", "--no-input", "-v", "0")
        setup = json.loads(self.manage("shell", "-c", SETUP).strip().splitlines()[-1])
        self.spawn(
            "-m", "gunicorn", "hub.wsgi:application", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"
        )
        self.spawn(str(ROOT / "manage.py"), "qcluster")
        wait_for(self.up, timeout=60, message="the web server")
        return setup

    def up(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, 9)
        self.log.close()

    def output(self) -> str:
        return Path(self.log.name).read_text()


def test_a_database_restart_costs_no_event_and_no_500(postgres, fresh_sandbox):
    hub = Hub(postgres.url, fresh_sandbox)
    try:
        setup = hub.start()
        total, senders = 240, 4
        acked: set[int] = set()
        statuses: Counter = Counter()
        missing_retry_after: list[int] = []
        lock = threading.Lock()
        base = f"http://127.0.0.1:{hub.port}"

        def post(n: int, session: requests.Session) -> int:
            event = employee_event(n)
            if n % 2:  # half through the webhook, half through the publish API
                return session.post(f"{base}/hooks/{setup['slug']}/", json=event, timeout=30)
            body = {
                "system": setup["slug"],
                "type": "employee.hired",
                "idempotency_key": event["id"],
                "payload": event,
            }
            return session.post(
                f"{base}/api/v1/events/",
                json=body,
                headers={"Authorization": f"Token {setup['token']}"},
                timeout=30,
            )

        def sender(numbers: list[int]) -> None:
            session = requests.Session()
            for n in numbers:
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    try:
                        response = post(n, session)
                    except requests.ConnectionError:
                        with lock:
                            statuses["connection error"] += 1
                        time.sleep(0.2)
                        continue
                    with lock:
                        statuses[response.status_code] += 1
                        if response.status_code == 503 and not response.headers.get("Retry-After"):
                            missing_retry_after.append(n)
                    if response.status_code == 202:
                        with lock:
                            acked.add(n)
                        break
                    # A client waits Retry-After; a shorter pause keeps the test quick.
                    time.sleep(0.2)
                time.sleep(0.01)

        threads = [
            threading.Thread(target=sender, args=(list(range(i, total, senders)),)) for i in range(senders)
        ]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(acked) >= total // 3, timeout=60, message="a third of the events accepted")
        postgres.restart()
        for thread in threads:
            thread.join(120)

        assert statuses[500] == 0, statuses
        assert set(statuses) <= {202, 503, "connection error"}, statuses
        assert statuses[503] > 0, f"the restart was not noticed: {statuses}"
        assert missing_retry_after == []
        assert acked == set(range(total))

        def delivered() -> Counter:
            return Counter(a["email"] for a in records(fresh_sandbox, "inventory", "accounts"))

        wanted = {employee_event(n)["data"]["email"].lower() for n in acked}
        wait_for(lambda: wanted <= set(delivered()), timeout=90, message="every accepted event delivered")
        assert max(delivered().values()) == 1, "a record was created twice"
    finally:
        hub.stop()
