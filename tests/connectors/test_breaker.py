"""The circuit breaker is one per target, shared by every worker: instances that share no memory
(in one process or two) see it open on a failure rate over the window, rest for the cooldown, let
exactly one probe through half-open, and close or open again on the probe's answer."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connectors.base import ErrorClass
from connectors.breaker import (
    COOLDOWN_SECONDS,
    MIN_CALLS,
    PROBE_SECONDS,
    REFRESH_SECONDS,
    WINDOW_SECONDS,
    CircuitBreaker,
    answered_per_second,
    circuit_status,
)
from connectors.models import BreakerState, Circuit
from tests.connectors.elsewhere import run_elsewhere
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db

DOWN = ErrorClass.UNREACHABLE


class Clock:
    """Unix time that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def workers(clock):
    """Two workers' breakers: separate instances on one clock, sharing only the database."""
    return CircuitBreaker(clock=clock), CircuitBreaker(clock=clock)


@pytest.fixture
def target():
    return SystemFactory().pk


def opened(breaker: CircuitBreaker, target: int) -> None:
    for _ in range(MIN_CALLS):
        assert breaker.allows(target)
        breaker.record(target, DOWN)


def test_it_opens_for_every_worker_when_most_calls_in_the_window_fail(workers, target, clock):
    one, other = workers
    assert other.allows(target)
    opened(one, target)
    assert not one.allows(target)
    clock.advance(REFRESH_SECONDS)  # the other worker reads the shared state at most this late
    assert not other.allows(target)
    status = circuit_status(target, now=clock())
    assert (status.label, status.window.failed, status.window.calls) == ("open", MIN_CALLS, MIN_CALLS)
    assert status.open_until == pytest.approx(clock() + COOLDOWN_SECONDS - REFRESH_SECONDS)


def test_failures_spread_over_workers_add_up(workers, target, clock):
    one, other = workers
    for _ in range(MIN_CALLS - 1):
        one.record(target, ErrorClass.TIMEOUT)
        clock.advance(1.1)  # each written at once, not held for the second
    other.record(target, ErrorClass.SERVER_ERROR)
    assert circuit_status(target, now=clock()).label == "open"


@pytest.mark.parametrize(
    "outcomes",
    [
        pytest.param([DOWN] * (MIN_CALLS - 1), id="too few calls"),
        pytest.param([None] * 5 + [DOWN] * 4, id="less than half failed"),
        pytest.param([ErrorClass.RATE_LIMITED] * 20, id="rate limited: the limiter's business"),
        pytest.param([ErrorClass.REJECTED] * 20, id="rejected: the target answered"),
        pytest.param([ErrorClass.AUTH_FAILURE] * 20, id="auth failure: the target answered"),
    ],
)
def test_it_stays_closed(workers, target, clock, outcomes):
    one, other = workers
    for outcome in outcomes:
        one.record(target, outcome)
    one.flush()
    clock.advance(REFRESH_SECONDS)
    assert other.allows(target) and circuit_status(target, now=clock()).label == "closed"


def test_failures_older_than_the_window_are_forgotten(workers, target, clock):
    one, _ = workers
    for _ in range(MIN_CALLS - 1):
        one.record(target, DOWN)
    one.flush()
    clock.advance(WINDOW_SECONDS + 1)
    for _ in range(MIN_CALLS - 1):
        one.record(target, DOWN)
    one.flush()
    assert circuit_status(target, now=clock()).window.failed == MIN_CALLS - 1
    assert one.allows(target)


def test_after_the_cooldown_exactly_one_worker_probes_and_its_success_closes_it(workers, target, clock):
    one, other = workers
    opened(one, target)
    clock.advance(COOLDOWN_SECONDS)
    assert circuit_status(target, now=clock()).label == "half-open"
    assert other.allows(target)  # the probe
    assert not one.allows(target)
    assert other.allows(target), "the worker holding the probe keeps it until it records an outcome"
    assert circuit_status(target, now=clock()).state == BreakerState.HALF_OPEN
    other.record(target, None)
    assert other.allows(target)
    clock.advance(REFRESH_SECONDS)
    assert one.allows(target)
    status = circuit_status(target, now=clock())
    assert (status.label, status.window.calls) == ("closed", 0)


def test_a_failed_probe_opens_it_for_another_cooldown(workers, target, clock):
    one, other = workers
    opened(one, target)
    clock.advance(COOLDOWN_SECONDS)
    assert one.allows(target)
    one.record(target, ErrorClass.TIMEOUT)
    assert not one.allows(target) and not other.allows(target)
    status = circuit_status(target, now=clock())
    assert status.label == "open" and status.open_until == clock() + COOLDOWN_SECONDS
    assert (status.window.failed, status.window.calls) == (1, 1)
    clock.advance(COOLDOWN_SECONDS)
    assert other.allows(target)


def test_a_probe_never_answered_is_given_to_another_worker_in_time(workers, target, clock):
    one, other = workers
    opened(one, target)
    clock.advance(COOLDOWN_SECONDS)
    assert one.allows(target)
    clock.advance(PROBE_SECONDS - 1)
    assert not other.allows(target)
    clock.advance(1)
    assert other.allows(target)
    one.record(target, None)  # the first probe answers late: it no longer decides anything
    assert circuit_status(target, now=clock()).state == BreakerState.HALF_OPEN
    other.record(target, None)
    assert circuit_status(target, now=clock()).state == BreakerState.CLOSED


def test_resting_claims_nothing(workers, target, clock):
    one, other = workers
    opened(one, target)
    assert one.resting(target)
    clock.advance(COOLDOWN_SECONDS)
    assert not one.resting(target) and not other.resting(target)
    assert circuit_status(target, now=clock()).state == BreakerState.OPEN
    assert other.allows(target)
    assert not other.resting(target), "its own probe does not hold it back"
    clock.advance(REFRESH_SECONDS)
    assert one.resting(target), "another worker's probe does"


def test_the_hot_path_reads_and_writes_the_database_about_once_a_second(workers, target, clock):
    one, _ = workers
    one.allows(target)
    one.record(target, None)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(1000):
            assert one.allows(target)
            one.record(target, None)
            clock.advance(0.001)
    assert len(queries) <= 8, [q["sql"] for q in queries]
    one.flush()
    assert circuit_status(target, now=clock()).window.answered == 1001


def test_the_answered_rate_is_read_across_workers(workers, target, clock):
    one, other = workers
    for _ in range(100):
        one.record(target, None)
        other.record(target, None)
        clock.advance(0.1)
    one.flush()
    other.flush()
    assert answered_per_second(target, now=clock()) == pytest.approx(20, rel=0.25)
    assert answered_per_second(SystemFactory().pk, now=clock()) is None


@pytest.mark.django_db(transaction=True)
def test_another_process_sees_the_breaker_this_one_opened():
    target = SystemFactory()
    opened(CircuitBreaker(), target.pk)
    assert Circuit.objects.get(system=target).state == BreakerState.OPEN
    seen = run_elsewhere(
        "from connectors.breaker import CircuitBreaker",
        f"print(CircuitBreaker().allows({target.pk}))",
    )
    assert seen == "False"


@pytest.mark.django_db(transaction=True)
def test_this_process_sees_the_breaker_another_one_opened():
    target = SystemFactory()
    here = CircuitBreaker()
    assert here.allows(target.pk)
    run_elsewhere(
        "from connectors.base import ErrorClass",
        "from connectors.breaker import CircuitBreaker, MIN_CALLS",
        "breaker = CircuitBreaker()",
        f"for _ in range(MIN_CALLS): breaker.record({target.pk}, ErrorClass.UNREACHABLE)",
    )
    time.sleep(REFRESH_SECONDS)
    assert not here.allows(target.pk)
