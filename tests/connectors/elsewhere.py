"""Running a few lines in another Python process on the test database: what one worker does,
another must see through the shared state alone."""

import subprocess
import sys

from tests.conftest import ROOT, worker_env


def run_elsewhere(*lines: str) -> str:
    """Run `lines` after django.setup() in a new process; returns what it printed."""
    script = "\n".join(["import django", "django.setup()", *lines])
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**worker_env(), "DJANGO_SETTINGS_MODULE": "hub.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
