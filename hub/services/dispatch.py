"""Waking workers: one django-q2 task drains many deliveries, so ingest asks for a drain at most
once per moment instead of enqueuing a task per event."""

import logging

from django.core.cache import cache

log = logging.getLogger(__name__)
KICK_KEY = "hub:drain-kick"


def kick_workers() -> None:
    """Ask for a drain task unless one is already queued and not yet started."""
    if cache.add(KICK_KEY, "1", timeout=2):
        from django_q.tasks import async_task

        async_task("hub.tasks.deliveries_drain", task_name="drain", q_options={"group": "drain"})


def drain_started() -> None:
    cache.delete(KICK_KEY)
