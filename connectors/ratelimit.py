"""A per-system pace shared by every worker on every machine.

Calls to one system are spaced at least 1/rate seconds apart (a "next free slot" scheme), so
in any one-second window the system sees at most its limit, whatever the number of workers.
The state lives in Redis when REDIS_URL is set, else in the database (RateLimitBucket).
"""

import time
from functools import cache

from django.conf import settings
from django.db import transaction

from connectors.models import RateLimitBucket, System

# Calls are paced at 80% of the limit. A call that leaves late (a busy machine, a slow network)
# lands closer to the next one; with this headroom, at most floor(0.8 * rate * (1 + D)) + 1 calls
# reach the system in any one-second window when the lateness is at most D, which stays within
# the limit for D up to about 0.25 s at any rate.
SAFETY_FACTOR = 0.8

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


@cache
def _redis():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    return client, client.register_script(_RESERVE_SCRIPT)


def interval_for(system: System) -> float | None:
    if not system.rate_limit_per_second:
        return None
    return 1.0 / (system.rate_limit_per_second * SAFETY_FACTOR)


def reserve(system: System, *, max_wait: float) -> float | None:
    """Reserve the next call slot: seconds to sleep before calling, or None when the wait would
    exceed `max_wait` (nothing is reserved then; come back later)."""
    interval = interval_for(system)
    if interval is None:
        return 0.0
    if settings.REDIS_URL:
        _, script = _redis()
        wait = float(script(keys=[f"hub:pace:{system.pk}"], args=[interval, max_wait]))
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
    """How long until the next slot, for deferring work; 0 when unlimited."""
    interval = interval_for(system)
    if interval is None:
        return 0.0
    if settings.REDIS_URL:
        client, _ = _redis()
        raw = client.get(f"hub:pace:{system.pk}")
        next_free = float(raw) if raw else 0.0
    else:
        next_free = (
            RateLimitBucket.objects.filter(system_id=system.pk).values_list("next_free_at", flat=True).first()
            or 0.0
        )
    return max(0.0, next_free - time.time())
