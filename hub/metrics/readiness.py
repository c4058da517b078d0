"""What /readyz checks: the database, the broker and that some worker is alive. Each check
returns None when all is well, else the reason (internal text: only admins may see it)."""

from collections.abc import Callable
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.status import Stat

from hub.metrics.models import Heartbeat
from hub.pipeline import clock


def _problem(check: Callable[[], str | None]) -> str | None:
    try:
        return check()
    except Exception as exc:  # any failure of a dependency means it is missing
        return f"{type(exc).__name__}: {exc}"[:300]


def database() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return None


def broker() -> str | None:
    """Redis answers a ping (REDIS_URL), or the ORM broker's table can be read."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return None
    OrmQ.objects.exists()
    return None


def workers() -> str | None:
    """A cluster that reports itself running, or a drain that ran recently (its heartbeat)."""
    try:
        running = [
            s for s in Stat.get_all(broker=get_broker()) if s.status not in (Conf.STOPPING, Conf.STOPPED)
        ]
    except Exception:  # the cluster status lives in the broker; the heartbeat may still answer
        running = []
    if running:
        return None
    recent = clock.now() - timedelta(seconds=settings.HUB_WORKER_HEARTBEAT_MAX_AGE)
    if Heartbeat.objects.filter(seen_at__gte=recent).exists():
        return None
    return (
        f"no worker cluster is running and no drain ran in the last {settings.HUB_WORKER_HEARTBEAT_MAX_AGE} s"
    )


CHECKS: dict[str, Callable[[], str | None]] = {"database": database, "broker": broker, "workers": workers}


def readiness(only: list[str] | None = None) -> dict[str, str | None]:
    """{check name: None when ready, else why not}, for the named checks (all by default)."""
    return {name: _problem(check) for name, check in CHECKS.items() if not only or name in only}
