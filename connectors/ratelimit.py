"""A per-system pace shared by every worker on every machine, which a 429 slows for all of them.

Calls to one system are spaced at least 1/rate seconds apart (a "next free slot" scheme), so
in any one-second window the system sees at most its limit, whatever the number of workers.
The rate is the one configured on the system, or lower when the system has said "too many
requests" (429, or 503 with Retry-After): `throttled()` pushes the next free slot past the pause
it asked for, for every worker at once, and halves the rate (multiplicative decrease). After the
pause the learned rate climbs back linearly, regaining its size every RECOVERY_SECONDS, up to the
configured limit; a system with no configured limit is paced at the learned rate until
FORGET_SECONDS pass without a 429, then runs unpaced again.
The state lives in Redis when REDIS_URL is set, else in the database (RateLimitBucket).
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import transaction

from connectors.breaker import answered_per_second
from connectors.models import RateLimitBucket, System

# Calls are paced at 80% of the limit. A call that leaves late (a busy machine, a slow network)
# lands closer to the next one; with this headroom, at most floor(0.8 * rate * (1 + D)) + 1 calls
# reach the system in any one-second window when the lateness is at most D, which stays within
# the limit for D up to about 0.25 s at any rate.
SAFETY_FACTOR = 0.8
DECREASE = 0.5
RECOVERY_SECONDS = 15.0
FORGET_SECONDS = 300.0
# The pace never drops below one call a second: a system that refuses a share of calls at random
# (not for their rate) would otherwise drive it towards zero. Its Retry-After pauses still hold.
MIN_RATE = 1.0
# The first 429 from a system with no configured limit paces it at what it answered lately
# (across all workers, from the circuit breaker's counts), but not below this.
FIRST_GUESS = 10.0
# A 429 without Retry-After pauses the system this long; a Retry-After is honoured up to an hour.
DEFAULT_PAUSE = 1.0
MAX_PAUSE = 3600.0
# The least time between two decreases (the pause, if longer): long enough for the last halving to
# show its effect before the next, so scattered 429s settle the pace instead of collapsing it.
DECREASE_GAP = 5.0
# How stale a process's copy of a system's learned limit may be. It decides only whether a system
# with no configured limit goes through the shared pace at all; the pause itself is in the shared
# next free slot, which every paced call reads.
CHECK_SECONDS = 0.5

_RESERVE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(next_free, now)
local wait = start - now
if wait > max_wait then
  return tostring(-wait)
end
redis.call('SET', KEYS[1], tostring(start + interval), 'PX', math.ceil((wait + interval) * 1000) + 1000)
return tostring(wait)
"""
# The next free slot moves to now + pause unless it is later already.
_PAUSE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local pause = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free < now + pause then
  redis.call('SET', KEYS[1], tostring(now + pause), 'PX', math.ceil(pause * 1000) + 1000)
end
return tostring(now + pause)
"""


@dataclass(frozen=True)
class Learned:
    """A limit learned from a system's 429s: `rate` right after the last decrease, at `at`, with
    no call before `until` (all Unix seconds)."""

    rate: float
    at: float
    until: float

    def rate_at(self, now: float) -> float:
        """The rate climbs back once the pause is over (nothing is learned while nothing is sent)."""
        return self.rate * (1 + max(0.0, now - max(self.at, self.until)) / RECOVERY_SECONDS)


def limit_at(configured: float | None, learned: Learned | None, now: float) -> float | None:
    """Requests per second allowed now: the learned rate while it is below the configured one
    (or, with none configured, until it is forgotten); None for no limit."""
    if learned is None:
        return configured
    rate = learned.rate_at(now)
    if configured:
        return min(configured, rate)
    if now - learned.at >= FORGET_SECONDS and now >= learned.until:
        return None
    return rate


@cache
def _redis():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    return client, client.register_script(_RESERVE_SCRIPT), client.register_script(_PAUSE_SCRIPT)


def _key(kind: str, system_id: int) -> str:
    # The cache's prefix keeps two hubs (or test runs) sharing one Redis from pacing each other.
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "hub"
    return f"{prefix}:{kind}:{system_id}"


# This process's copy of each system's learned limit: system id -> (read at, monotonic; limit).
_known: dict[int, tuple[float, Learned | None]] = {}


def forget() -> None:
    """Drop this process's copies of the learned limits (tests, between databases)."""
    _known.clear()


def _learned_of(system_ids: list[int]) -> dict[int, Learned]:
    """The learned limits of these systems (those that have one), in one round trip."""
    if settings.REDIS_URL:
        client, _, _ = _redis()
        batch = client.pipeline(transaction=False)
        for system_id in system_ids:
            batch.hmget(_key("learned", system_id), "rate", "at", "until")
        found = zip(system_ids, batch.execute(), strict=True)
        return {system_id: Learned(*map(float, raw)) for system_id, raw in found if raw[0] is not None}
    rows = RateLimitBucket.objects.filter(system_id__in=system_ids, learned_rate__isnull=False)
    return {row.system_id: Learned(row.learned_rate, row.learned_at, row.throttled_until) for row in rows}


def _load(system_id: int) -> Learned | None:
    return _learned_of([system_id]).get(system_id)


def learned(system: System) -> Learned | None:
    """The system's learned limit as this process knows it (at most CHECK_SECONDS old)."""
    checked = _known.get(system.pk)
    if checked is None or not 0 <= time.monotonic() - checked[0] < CHECK_SECONDS:
        checked = (time.monotonic(), _load(system.pk))
        _known[system.pk] = checked
    return checked[1]


def interval_for(system: System, *, now: float | None = None) -> float | None:
    now = time.time() if now is None else now
    rate = limit_at(system.rate_limit_per_second, learned(system), now)
    if not rate:
        return None
    return 1.0 / (rate * SAFETY_FACTOR)


def reserve(system: System, *, max_wait: float) -> float | None:
    """Reserve the next call slot: seconds to sleep before calling, or None when the wait would
    exceed `max_wait` (nothing is reserved then; come back later)."""
    interval = interval_for(system)
    if interval is None:
        return 0.0
    if settings.REDIS_URL:
        _, script, _ = _redis()
        wait = float(script(keys=[_key("pace", system.pk)], args=[interval, max_wait]))
    else:
        wait = _reserve_in_database(system.pk, interval, max_wait)
    return None if wait < 0 else wait


def _reserve_in_database(system_id: int, interval: float, max_wait: float) -> float:
    with transaction.atomic():
        bucket, _ = RateLimitBucket.objects.select_for_update().get_or_create(system_id=system_id)
        now = time.time()
        start = max(bucket.next_free_at, now)
        wait = start - now
        if wait > max_wait:
            return -wait
        bucket.next_free_at = start + interval
        bucket.save(update_fields=["next_free_at"])
        return wait


def acquire(system: System, *, max_wait: float = 2.0) -> bool:
    """Wait for a slot (up to `max_wait`); False means the caller should defer the call."""
    wait = reserve(system, max_wait=max_wait)
    if wait is None:
        return False
    if wait > 0:
        time.sleep(wait)
    return True


def seconds_until_free(system: System) -> float:
    """How long until the next slot, for deferring work; 0 when unpaced."""
    if interval_for(system) is None:
        return 0.0
    if settings.REDIS_URL:
        client, _, _ = _redis()
        raw = client.get(_key("pace", system.pk))
        next_free = float(raw) if raw else 0.0
    else:
        next_free = (
            RateLimitBucket.objects.filter(system_id=system.pk).values_list("next_free_at", flat=True).first()
            or 0.0
        )
    return max(0.0, next_free - time.time())


def throttled(system: System, retry_after: float | None, *, now: float | None = None) -> Learned:
    """The system answered 429 (or 503 with Retry-After): no worker calls it before the pause
    ends, and its rate is lowered for all of them. Returns the limit learned."""
    now = time.time() if now is None else now
    pause = min(MAX_PAUSE, retry_after if retry_after and retry_after > 0 else DEFAULT_PAUSE)
    if settings.REDIS_URL:
        new = _throttle_in_redis(system, now, pause)
    else:
        new = _throttle_in_database(system, now, pause)
    _known[system.pk] = (time.monotonic(), new)
    return new


def _after_429(system: System, old: Learned | None, now: float, pause: float) -> Learned:
    """The limit after a 429 at `now`: half the rate allowed until then (multiplicative decrease);
    for a system that was unpaced, what got through lately, across all workers."""
    until = max(now + pause, old.until if old else 0.0)
    # Calls already under way when a 429 came answer 429 too: within the gap after a decrease
    # they push the pause on but do not halve the rate again.
    if old is not None and now - old.at < max(DECREASE_GAP, pause):
        return Learned(old.rate, old.at, until)
    current = limit_at(system.rate_limit_per_second, old, now)
    if current is None:
        # What got through leans low while counts are still being written (the first seconds of
        # traffic), so FIRST_GUESS bounds it from below; further 429s halve from there.
        rate = max(FIRST_GUESS, answered_per_second(system.pk, now=now) or 0.0)
    else:
        rate = max(MIN_RATE, current * DECREASE)
    return Learned(rate, now, until)


def _throttle_in_redis(system: System, now: float, pause: float) -> Learned:
    client, _, pause_script = _redis()
    pause_script(keys=[_key("pace", system.pk)], args=[pause])
    key, lock = _key("learned", system.pk), _key("deciding", system.pk)
    # One worker at a time decides the rate; one that finds another deciding leaves it alone
    # (the pause is in the next free slot already).
    deciding = client.set(lock, 1, nx=True, px=5000)
    try:
        new = _after_429(system, _load(system.pk), now, pause)
        if deciding:
            client.hset(key, mapping={"rate": new.rate, "at": new.at, "until": new.until})
        return new
    finally:
        if deciding:
            client.delete(lock)


def _throttle_in_database(system: System, now: float, pause: float) -> Learned:
    with transaction.atomic():
        bucket, _ = RateLimitBucket.objects.select_for_update().get_or_create(system_id=system.pk)
        old = None
        if bucket.learned_rate is not None:
            old = Learned(bucket.learned_rate, bucket.learned_at, bucket.throttled_until)
        new = _after_429(system, old, now, pause)
        bucket.next_free_at = max(bucket.next_free_at, new.until)
        bucket.learned_rate, bucket.learned_at, bucket.throttled_until = new.rate, new.at, new.until
        bucket.save()
        return new


@dataclass(frozen=True)
class Pace:
    """A system's limit as the page shows it: configured, in force now, and the pause."""

    configured: float | None
    current: float | None
    paused_until: float
    learned_at: float | None


def paces(systems: Iterable[System], *, now: float | None = None) -> dict[int, Pace]:
    """Each system's limit as all workers see it, read in one round trip."""
    now = time.time() if now is None else now
    systems = list(systems)
    found = _learned_of([system.pk for system in systems])
    return {
        system.pk: Pace(
            configured=system.rate_limit_per_second,
            current=limit_at(system.rate_limit_per_second, found.get(system.pk), now),
            paused_until=found[system.pk].until if system.pk in found else 0.0,
            learned_at=found[system.pk].at if system.pk in found else None,
        )
        for system in systems
    }


def pace(system: System, *, now: float | None = None) -> Pace:
    return paces([system], now=now)[system.pk]
