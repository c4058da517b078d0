"""Waking workers without a task per event.

One django-q2 task drains many deliveries. At most one drain at a time stays on when the
queue runs dry (the lingerer): it polls for new work every few milliseconds and waits for
retries due within the next minute. Ingest asks for a drain only when no lingerer is alive,
and a drain that keeps finding full batches asks for a helper, so under load every worker
joins in, and when the load stops the helpers leave and one poller remains.
"""

import time

from django.conf import settings
from django.core.cache import cache

KICK_KEY = "hub:drain-kick"
LINGERER_KEY = "hub:drain-lingerer"
LINGERER_TTL = 3  # seconds; a killed lingerer is replaced after this
# A process asks at most this often; a skipped ask is covered by the lingerer's polling.
LOCAL_KICK_INTERVAL = 0.25
_last_kick = 0.0


def _enqueue_drain() -> None:
    """Queue a drain unless one is already queued and not yet started."""
    if cache.add(KICK_KEY, "1", timeout=5):
        from django_q.tasks import async_task

        async_task("hub.tasks.deliveries_drain", task_name="drain", q_options={"group": "drain"})


def kick_workers() -> None:
    """New work arrived: make sure some drain will see it soon."""
    global _last_kick
    now = time.monotonic()
    if now - _last_kick < min(LOCAL_KICK_INTERVAL, settings.HUB_DRAIN_LINGER_SECONDS / 2):
        return
    _last_kick = now
    if cache.get(LINGERER_KEY):
        return
    _enqueue_drain()


def ask_for_help() -> None:
    """A drain found a full batch: one more worker may join."""
    _enqueue_drain()


def drain_started() -> None:
    cache.delete(KICK_KEY)


def become_lingerer(name: str) -> bool:
    return cache.add(LINGERER_KEY, name, timeout=LINGERER_TTL)


def still_lingering() -> None:
    cache.touch(LINGERER_KEY, LINGERER_TTL)


def stop_lingering() -> None:
    cache.delete(LINGERER_KEY)
