"""One command for a working demo: migrate, seed, then run web, workers and sandbox systems."""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand

from connectors.models import System
from connectors.netpolicy import env_allowing_loopback
from hub.demo import demo_seed
from hub.roles import ADMIN, grant_role


def _generated_password(user) -> str:
    """A random password the password validators accept (a random one nearly always is)."""
    while True:
        password = secrets.token_urlsafe(15)
        try:
            validate_password(password, user)
        except ValidationError:
            continue
        return password


def ensure_admin_login() -> tuple[str, str]:
    """The first admin login; its password is generated once and kept in var/ (mode 0600)."""
    password_file = Path(settings.VAR_DIR) / "admin-password.txt"
    User = get_user_model()
    if password_file.exists() and User.objects.filter(username="admin").exists():
        return "admin", password_file.read_text().strip()
    user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
    password = _generated_password(user)
    user.set_password(password)
    user.is_staff = user.is_superuser = True
    user.save()
    grant_role(user, ADMIN)
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return "admin", password


def stop_children(children: list[tuple[str, subprocess.Popen]]) -> None:
    """SIGTERM, then SIGKILL after 10 s. The worker cluster gets it in its main process only: that
    stops the sentinel, which lets each worker hand its batch back (SIGTERM to the whole group
    would kill django-q2's sentinel outright and leave its main process waiting for it)."""
    for name, child in children:
        if child.poll() is not None:
            continue
        if name == "workers":
            child.terminate()
        else:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for _, child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)


class Command(BaseCommand):
    help = "Migrate, seed the demo, and run the web server, workers, sandbox systems and demo activity."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--ingest-port",
            type=int,
            default=0,
            help="Where the engine takes webhooks (default: --port + 1).",
        )
        parser.add_argument(
            "--no-activity", action="store_true", help="Do not generate demo business activity."
        )
        parser.add_argument("--no-sandbox", action="store_true", help="Do not start the sandbox systems.")

    def handle(self, *args, host, port, ingest_port, no_activity, no_sandbox, **options):
        ingest_port = ingest_port or port + 1
        call_command("migrate", interactive=False, verbosity=0)  # also makes the roles and schedules
        username, password = ensure_admin_login()
        if not System.objects.exists():
            counts = demo_seed()
            self.stdout.write(
                f"Seeded the demo: {counts['systems']} systems, {counts['models']} data models, "
                f"{counts['flows']} flows."
            )
        hub_url = f"http://{host}:{port}"
        ingest_url = f"http://{host}:{ingest_port}"
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        # The demo's systems are the sandbox on 127.0.0.1, so the processes started here may
        # connect to loopback addresses (README "Security": the outbound policy).
        env = {
            **env_allowing_loopback(dict(os.environ)),
            "HUB_PUBLIC_URL": hub_url,
            "HUB_INGEST_URL": ingest_url,
            # The engine delivers; the task workers run schedules, polls and bulk jobs: one will do.
            "HUB_WORKERS": os.environ.get("HUB_WORKERS", "1"),
        }
        commands = []
        if not no_sandbox:
            commands.append(
                (
                    "sandbox",
                    [python, "-m", "connectors.sandbox", "--host", "127.0.0.1", "--hub-url", ingest_url],
                )
            )
        commands.append(
            (
                "web",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "hub.wsgi:application",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    os.environ.get("HUB_WEB_WORKERS", "1"),
                    "--worker-class",
                    "gthread",
                    "--threads",
                    "8",
                    "--log-level",
                    "warning",
                ],
            )
        )
        commands.append(("engine", [python, manage, "engine", "--host", host, "--port", str(ingest_port)]))
        commands.append(("workers", [python, manage, "qcluster"]))
        if not no_activity and not no_sandbox:
            commands.append(("activity", [python, manage, "demo_activity", "--wait-for", hub_url]))
        children: list[tuple[str, subprocess.Popen]] = []
        for name, argv in commands:
            children.append(
                (name, subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR, start_new_session=True))
            )
        lines = [
            f"\nIntegration hub is running at {hub_url}/",
            f"  Sign in as: {username} / {password}",
            *(
                []
                if no_sandbox
                else [f"  Try it:     {hub_url}/demo/ (make something happen in the demo systems)"]
            ),
            f"  API docs:   {hub_url}/api/docs/",
            f"  Webhooks:   {ingest_url}/hooks/<system>/",
            f"  Database:   {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
            "Press Ctrl-C to stop everything.\n",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, child in children:
                if child.poll() is not None:
                    self.stderr.write(f"{name} stopped (exit code {child.returncode}); stopping the rest.")
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.3)
        stop_children(children)
        self.stdout.write("Stopped.")
        sys.exit(exit_code)
