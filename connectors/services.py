"""Changes to what the hub keeps about systems from their own answers.

Recording deprecation notices sits on the delivery path, so a process remembers what it last wrote
and writes again only when the notice changes or a minute has passed (the count of answers seen
meanwhile is carried over)."""

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F

from connectors.deprecation import DeprecationNotice
from connectors.models import ApiDeprecation

WRITE_AT_MOST_EVERY = timedelta(minutes=1)


@dataclass
class _Written:
    notice: DeprecationNotice
    at: datetime
    unwritten: int = 0  # answers seen since the last write


_written: dict[tuple[int, str, str], _Written] = {}
_written_lock = threading.Lock()


def deprecations_record(*, seen: list[tuple[int, str, str, DeprecationNotice]], now: datetime) -> int:
    """Keep the latest notice per (system id, method, path) from answers seen at `now`; returns the
    number of rows written. A notice already written in the last minute is only counted in memory."""
    due: dict[tuple[int, str, str], tuple[DeprecationNotice, int]] = {}
    with _written_lock:
        for system_id, method, path, notice in seen:
            key = (system_id, method.upper(), path[:300])
            memo = _written.get(key)
            if memo and memo.notice == notice and now - memo.at < WRITE_AT_MOST_EVERY:
                memo.unwritten += 1
                continue
            count = (memo.unwritten if memo else 0) + due.get(key, (None, 0))[1] + 1
            due[key] = (notice, count)
            _written[key] = _Written(notice=notice, at=now)
    for (system_id, method, path), (notice, count) in due.items():
        fields = {
            "deprecated": notice.deprecated,
            "deprecated_since": notice.deprecated_since,
            "sunset_at": notice.sunset_at,
            "link": notice.link,
            "sunset_link": notice.sunset_link,
            "warning": notice.warning,
            "last_seen_at": now,
        }
        key = {"system_id": system_id, "method": method, "path": path}
        if not ApiDeprecation.objects.filter(**key).update(times_seen=F("times_seen") + count, **fields):
            ApiDeprecation.objects.get_or_create(
                **key, defaults={**fields, "first_seen_at": now, "times_seen": count}
            )
    return len(due)


def deprecations_forget() -> None:
    """Forget what this process wrote (tests, and after rows were deleted)."""
    with _written_lock:
        _written.clear()
