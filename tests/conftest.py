import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def sandbox():
    """The sandbox business systems on free loopback ports, for the whole test session."""
    from connectors.sandbox import Sandbox

    box = Sandbox(ports={"crm": 0, "accounting": 0, "inventory": 0, "hr": 0, "payments": 0}).start()
    yield box
    box.stop()


SANDBOX_SYSTEMS = ("crm", "accounting", "inventory", "hr", "payments")


@pytest.fixture
def fresh_sandbox(sandbox):
    """The sandbox with fresh records and no faults, sending no webhooks until a test asks. After
    the test, the webhooks it caused are delivered before its data is flushed: the session's
    live server would otherwise carry a late one into the next test's database, where a system
    of the same name and secret accepts it."""
    import requests

    for name in SANDBOX_SYSTEMS:
        requests.put(
            f"{sandbox.url(name)}/_control/webhook", json={"enabled": False}, timeout=5
        ).raise_for_status()
        requests.post(f"{sandbox.url(name)}/_control/reset", timeout=5).raise_for_status()
    yield sandbox
    for name in SANDBOX_SYSTEMS:
        requests.put(f"{sandbox.url(name)}/_control/webhook", json={"enabled": False}, timeout=5)
        sandbox.system(name).webhooks.wait_idle(timeout=10)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_caches():
    from connectors import ratelimit
    from connectors.services import deprecations_forget
    from hub.pipeline import dispatch
    from hub.pipeline.attempt import breaker
    from hub.pipeline.concurrency import call_windows
    from hub.pipeline.drift import stats as drift_stats
    from hub.pipeline.ingest import forget_systems
    from hub.pipeline.shapes import forget_shapes
    from hub.pipeline.subscriptions import forget_subscriptions

    forget_systems()
    forget_subscriptions()
    forget_shapes()
    drift_stats.comparisons = 0
    dispatch._last_kick = 0.0
    breaker.failures.clear()
    breaker.open_until.clear()
    breaker.forget()
    ratelimit.forget()
    call_windows.forget()
    deprecations_forget()
    clear_own_cache()
    yield


def clear_own_cache() -> None:
    """Empty this test process's cache and task queue. On Redis only its own keys (its cache prefix
    and queue name), not the whole database as `cache.clear()` would: a parallel test worker's (or
    another run's) keys there are not this test's to lose."""
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        cache.clear()  # files in a folder of this process's own under pytest-xdist (hub/settings.py)
        return
    client = cache._cache.get_client(None, write=True)
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    queue = settings.Q_CLUSTER["name"]
    for pattern in (f"{_glob_escape(prefix)}:*", f"django_q:{_glob_escape(queue)}:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


@pytest.fixture(autouse=True)
def _real_time():
    """Every test starts on the real clock, with no stop requested, whatever the last one did."""
    from hub.pipeline import clock, dispatch

    clock.reset()
    dispatch.forget_stop()
    yield
    clock.reset()
    dispatch.forget_stop()


@pytest.fixture
def personas(db):
    """An admin, an ops user, an auditor, a publisher machine account and an outsider (no role)."""
    from tests.factories import UserFactory

    return {
        "admin": UserFactory(username="alice-admin", role="admin"),
        "ops": UserFactory(username="oscar-ops", role="ops"),
        "auditor": UserFactory(username="audrey-auditor", role="auditor"),
        "publisher": UserFactory(username="pat-publisher", role="publisher"),
        "outsider": UserFactory(username="olga-outsider", role=None),
    }


def worker_env() -> dict[str, str]:
    """Environment for a child process that must use the test database."""
    from django.conf import settings
    from django.db import connection

    # The queue and cache prefix this test process really uses (settings were read before any
    # conftest ran), so the workers hear its kicks and share its rate-limit and drain keys.
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HUB_QUEUE_NAME": settings.Q_CLUSTER["name"],
        "HUB_CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
    }
    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(os.environ["DATABASE_URL"])
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    else:
        env["SQLITE_PATH"] = str(name)
    return env


class WorkerProcess:
    """A real `manage.py qcluster` on the test database."""

    command: tuple[str, ...] = ("qcluster",)

    def __init__(self, workers: int = 2, extra_env: dict | None = None) -> None:
        env = {**worker_env(), "HUB_WORKERS": str(workers), **(extra_env or {})}
        self.log = open(ROOT / "var" / f"worker-{uuid.uuid4().hex[:6]}.log", "w+")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *self.command],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole cluster: no chance to finish anything."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return  # every process of the group has exited
        self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM to the cluster's main process, as Docker, Kubernetes and systemd (with
        KillMode=mixed) send it: the cluster stops its workers, which hand their work back."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.kill()  # whatever did not stop, and anything the cluster left behind
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()


class EngineProcess(WorkerProcess):
    """A real `manage.py engine` (webhooks in, deliveries out) on the test database and a free port."""

    def __init__(self, extra_env: dict | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = ("engine", "--port", str(self.port))
        # The tests' own permission to call the database from async code must not hide a mistake here.
        super().__init__(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": "", **(extra_env or {})})
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self.answers, timeout=60, interval=0.1, message=f"the engine on {self.url}")

    def answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the engine exited with {self.process.returncode}:\n{self.output()}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False


@pytest.fixture
def start_engine():
    started: list[EngineProcess] = []

    def start(**kwargs) -> EngineProcess:
        engine = EngineProcess(**kwargs)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()


@pytest.fixture
def start_worker():
    started: list[WorkerProcess] = []

    def start(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(**kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


# --- browser tests ------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture
def sign_in(live_server, page):
    """Sign `page` in as a user (created with the factories' password) and return the page."""
    from tests.factories import PASSWORD

    def go(user):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
        return page

    return go


# Figures a test measures (record_property("measured", "...")), printed at the end of the run: the
# report carries them from an xdist worker to the terminal, where a print in the worker is lost.
_measured: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _measured.extend(value for name, value in report.user_properties if name == "measured")


def pytest_terminal_summary(terminalreporter):
    if _measured:
        terminalreporter.section("measured")
        for line in _measured:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _test_database_dropped_at_the_end(django_db_setup, django_db_blocker):
    """Closes what is still connected to the test database before it is dropped: connections a
    live server's request threads keep (CONN_MAX_AGE) or a worker's last ones would otherwise make
    PostgreSQL refuse the DROP, leaving one database behind per run."""
    yield
    with django_db_blocker.unblock():
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
