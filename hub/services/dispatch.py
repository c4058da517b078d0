"""Waking workers: one django-q2 task drains many deliveries, so ingest asks for a drain at most
once per moment instead of enqueuing a task per event."""

import time

from django.conf import settings
from django.core.cache import cache

KICK_KEY = "hub:drain-kick"
# A process asks at most this often. Safe because a drain that has started keeps polling for
# new work for HUB_DRAIN_LINGER_SECONDS (longer than this), so a skipped kick is never needed.
LOCAL_KICK_INTERVAL = 0.25
_last_kick = 0.0


def kick_workers() -> None:
    """Ask for a drain task unless one is already queued and not yet started."""
    global _last_kick
    now = time.monotonic()
    if now - _last_kick < min(LOCAL_KICK_INTERVAL, settings.HUB_DRAIN_LINGER_SECONDS / 2):
        return
    _last_kick = now
    if cache.add(KICK_KEY, "1", timeout=2):
        from django_q.tasks import async_task

        async_task("hub.tasks.deliveries_drain", task_name="drain", q_options={"group": "drain"})


def drain_started() -> None:
    cache.delete(KICK_KEY)
