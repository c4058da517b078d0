"""The pipeline's one source of time and chance.

Everything in the pipeline that asks "what time is it?" or draws a random number (retry
jitter) goes through here, so a test can move time forward or fix the dice instead of
sleeping through a backoff.
"""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)
rng = random.Random()


def now() -> datetime:
    return timezone.now() + _offset


def uniform(low: float, high: float) -> float:
    return rng.uniform(low, high)


def advance(seconds: float) -> None:
    """Move the pipeline's clock forward (tests only)."""
    global _offset
    _offset += timedelta(seconds=seconds)


def reset() -> None:
    global _offset
    _offset = timedelta(0)
    rng.seed()


@contextmanager
def travelled(seconds: float) -> Iterator[None]:
    """Run a block as if `seconds` had passed (tests only)."""
    advance(seconds)
    try:
        yield
    finally:
        advance(-seconds)
