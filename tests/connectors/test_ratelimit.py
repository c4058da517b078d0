"""A 429 slows the whole target for every worker: nobody calls it before its Retry-After has
passed, its rate is halved, and it climbs back over time to the configured limit (or, with none
configured, to no limit at all)."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connectors import ratelimit
from connectors.breaker import CircuitBreaker
from connectors.ratelimit import (
    DECREASE_GAP,
    DEFAULT_PAUSE,
    FIRST_GUESS,
    FORGET_SECONDS,
    RECOVERY_SECONDS,
    SAFETY_FACTOR,
    Learned,
    limit_at,
    pace,
    throttled,
)
from tests.connectors.elsewhere import run_elsewhere
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_copies():
    ratelimit.forget()
    yield
    ratelimit.forget()


def test_a_429_pauses_a_target_with_no_configured_limit_for_every_worker():
    target = SystemFactory(rate_limit_per_second=None)
    assert ratelimit.acquire(target, max_wait=0.1)
    throttled(target, 1.5)
    ratelimit.forget()  # what a worker that did not see the 429 knows
    assert not ratelimit.acquire(target, max_wait=0.5)
    assert ratelimit.seconds_until_free(target) == pytest.approx(1.5, abs=0.3)


def test_after_the_pause_calls_go_at_the_learned_rate():
    target = SystemFactory(rate_limit_per_second=None)
    throttled(target, 0.2)
    assert pace(target).current == pytest.approx(FIRST_GUESS)  # nothing known of what it answered lately
    started = time.monotonic()
    for _ in range(3):
        assert ratelimit.acquire(target, max_wait=1.0)
    interval = 1 / (FIRST_GUESS * SAFETY_FACTOR)
    assert time.monotonic() - started == pytest.approx(0.2 + 2 * interval, abs=0.1)


def test_the_first_429_of_an_unpaced_target_paces_it_at_what_it_answered_lately():
    target = SystemFactory(rate_limit_per_second=None)
    now = time.time() - 10
    breaker = CircuitBreaker(clock=lambda: now)
    for _ in range(200):  # 20 answers a second for 10 seconds
        breaker.record(target.pk, None)
        now += 0.05
    breaker.flush()
    assert throttled(target, None, now=now).rate == pytest.approx(20, rel=0.25)


def test_each_429_after_the_last_has_been_digested_halves_the_rate():
    target = SystemFactory(rate_limit_per_second=10)
    now = time.time()
    assert throttled(target, None, now=now).rate == 5
    # Calls already under way answer 429 too: they do not halve it again.
    assert throttled(target, None, now=now + DECREASE_GAP / 2).rate == 5
    # Once those are answered, the next 429 halves what it has regained since its pause ended.
    resumed = now + DECREASE_GAP / 2 + DEFAULT_PAUSE
    recovered = 5 * (1 + 3 / RECOVERY_SECONDS)
    assert throttled(target, None, now=resumed + 3).rate == pytest.approx(recovered / 2)


@pytest.mark.parametrize("configured", [10.0, None])
def test_the_learned_rate_recovers_after_the_pause(configured):
    target = SystemFactory(rate_limit_per_second=configured)
    learned = throttled(target, 2, now=time.time())
    first, resumed = learned.rate, learned.until
    assert pace(target, now=resumed - 1).current == first
    assert pace(target, now=resumed).current == first
    assert pace(target, now=resumed + RECOVERY_SECONDS / 2).current == pytest.approx(first * 1.5)
    if configured:
        assert pace(target, now=resumed + RECOVERY_SECONDS).current == configured
        assert pace(target, now=resumed + 100 * RECOVERY_SECONDS).current == configured
    else:
        assert pace(target, now=learned.at + FORGET_SECONDS - 1).current > first
        assert pace(target, now=learned.at + FORGET_SECONDS).current is None


def test_a_pause_longer_than_the_memory_is_still_honoured():
    learned = Learned(rate=1, at=0, until=FORGET_SECONDS + 60)
    assert limit_at(None, learned, FORGET_SECONDS + 30) is not None
    assert limit_at(None, learned, FORGET_SECONDS + 60) is None


def test_an_unpaced_target_costs_no_shared_state_per_call():
    target = SystemFactory(rate_limit_per_second=None)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(1000):
            assert ratelimit.acquire(target, max_wait=0.1)
    assert len(queries) <= 2


@pytest.mark.django_db(transaction=True)
def test_a_429_seen_by_another_process_slows_this_one():
    target = SystemFactory(rate_limit_per_second=None)
    assert ratelimit.acquire(target, max_wait=0.1)
    run_elsewhere(
        "from connectors import ratelimit",
        "from connectors.models import System",
        f"ratelimit.throttled(System.objects.get(pk={target.pk}), 30.0)",
    )
    time.sleep(ratelimit.CHECK_SECONDS)
    assert not ratelimit.acquire(target, max_wait=0.5)
    assert ratelimit.seconds_until_free(target) > 20
    assert pace(target).current == pytest.approx(FIRST_GUESS)


@pytest.mark.django_db(transaction=True)
def test_another_process_waits_for_the_pause_this_one_was_told():
    target = SystemFactory(rate_limit_per_second=5)
    throttled(target, 30.0)
    waited = run_elsewhere(
        "from connectors import ratelimit",
        "from connectors.models import System",
        f"system = System.objects.get(pk={target.pk})",
        "print(ratelimit.acquire(system, max_wait=0.5), round(ratelimit.seconds_until_free(system)))",
    )
    allowed, wait = waited.split()
    assert allowed == "False" and 20 < int(wait) <= 30
