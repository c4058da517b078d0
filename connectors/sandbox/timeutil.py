"""Timestamps in one canonical, lexically sortable form: ``2026-11-23T10:00:00.123456Z``."""

from __future__ import annotations

import datetime as dt

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_ONE_MICROSECOND = dt.timedelta(microseconds=1)


def format_timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(_FORMAT)


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp; naive values are taken as UTC. Raises ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError("empty timestamp")
    # "+00:00" arrives as " 00:00" when a client forgot to URL-encode the query string.
    if " " in value and "T" in value:
        value = value.replace(" ", "+")
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def normalize_timestamp(value: str) -> str:
    return format_timestamp(parse_timestamp(value))


class MonotonicClock:
    """Wall-clock timestamps that never go backwards and never repeat (callers hold a lock)."""

    def __init__(self) -> None:
        self._last = dt.datetime.min.replace(tzinfo=dt.UTC)

    def tick(self) -> str:
        now = dt.datetime.now(dt.UTC)
        if now <= self._last:
            now = self._last + _ONE_MICROSECOND
        self._last = now
        return now.strftime(_FORMAT)
