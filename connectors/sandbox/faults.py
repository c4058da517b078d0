"""Injectable faults and the sliding-window rate limiter."""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FAULT_MODES = ("500", "503", "429", "401", "slow", "garbage", "drop", "drop_after")
# Faults that happen after the request took effect: the record is written, the answer is lost.
AFTER_COMMIT = frozenset({"garbage", "drop_after"})

_fault_ids = itertools.count(1)


class FaultError(ValueError):
    """A fault specification that cannot be used."""


@dataclass
class Fault:
    """One active fault. ``count`` (next N matching requests) wins over ``rate`` (probability).
    ``until`` (a time.time() value) ends it by itself: a system broken "for a minute" heals."""

    mode: str
    count: int | None = None
    rate: float | None = None
    methods: frozenset[str] | None = None
    resources: frozenset[str] | None = None
    delay: float = 5.0
    retry_after: int = 1
    until: float | None = None
    applied: int = 0
    id: int = field(default_factory=lambda: next(_fault_ids))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        if not isinstance(data, dict):
            raise FaultError("fault must be an object")
        mode = str(data.get("mode", ""))
        if mode not in FAULT_MODES:
            raise FaultError(f"mode must be one of {', '.join(FAULT_MODES)}")
        count = data.get("count")
        rate = data.get("rate")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise FaultError("count must be a positive integer")
        if rate is not None and (not isinstance(rate, int | float) or not 0 <= rate <= 1):
            raise FaultError("rate must be a number between 0 and 1")
        delay = data.get("delay", 5.0)
        if not isinstance(delay, int | float) or delay < 0:
            raise FaultError("delay must be a non-negative number")
        retry_after = data.get("retry_after", 1)
        if not isinstance(retry_after, int) or retry_after < 0:
            raise FaultError("retry_after must be a non-negative integer")
        seconds = data.get("seconds")
        if seconds is not None and (
            not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 < seconds <= 86400
        ):
            raise FaultError("seconds must be a number between 0 and 86400")
        return cls(
            mode=mode,
            count=count,
            rate=None if rate is None else float(rate),
            methods=_upper_set(data.get("methods"), "methods"),
            resources=_plain_set(data.get("resources"), "resources"),
            delay=float(delay),
            retry_after=retry_after,
            until=None if seconds is None else time.time() + seconds,
        )

    def matches(self, method: str, resource: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.resources is None or resource in self.resources

    def roll(self, rng: random.Random) -> bool:
        """Decide whether this fault hits the current (matching) request; consumes a count."""
        if self.count is not None:
            self.count -= 1
            return True
        if self.rate is not None:
            return rng.random() < self.rate
        return True

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.count <= 0

    def expired(self, now: float) -> bool:
        return self.until is not None and now >= self.until

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "count": self.count,
            "rate": self.rate,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "resources": sorted(self.resources) if self.resources is not None else None,
            "delay": self.delay,
            "retry_after": self.retry_after,
            "until": self.until,
            "applied": self.applied,
        }


def _plain_set(value: Any, name: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FaultError(f"{name} must be a list of strings")
    return frozenset(value)


def _upper_set(value: Any, name: str) -> frozenset[str] | None:
    items = _plain_set(value, name)
    return None if items is None else frozenset(item.upper() for item in items)


class SlidingWindow:
    """Counts admitted requests in the last second. Not thread-safe: callers hold the system lock."""

    WINDOW = 1.0

    def __init__(self) -> None:
        self._hits: deque[float] = deque()

    def clear(self) -> None:
        self._hits.clear()

    def check(self, now: float, limit: float | None, enforce: bool) -> tuple[bool, bool]:
        """Return (admitted, window_was_full) for a request arriving at ``now``."""
        if limit is None:
            return True, False
        hits = self._hits
        cutoff = now - self.WINDOW
        while hits and hits[0] <= cutoff:
            hits.popleft()
        full = len(hits) >= limit
        if full and enforce:
            return False, True
        hits.append(now)
        return True, full
