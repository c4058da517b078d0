"""/metrics shows each target's circuit breaker and rate limit as every worker sees them."""

import time

import pytest

from connectors.base import ErrorClass
from connectors.breaker import COOLDOWN_SECONDS, MIN_CALLS, CircuitBreaker
from connectors.ratelimit import throttled
from hub.metrics.prometheus import exposition
from tests.factories import SystemFactory
from tests.metrics.test_endpoints import parse

pytestmark = pytest.mark.django_db


def samples_of(family: str) -> dict[str, float]:
    """One family's samples by system slug."""
    return {
        dict(labels)["system"]: value
        for (name, labels), value in parse(exposition()).items()
        if name == family
    }


def test_it_shows_each_breaker_state_and_its_failure_ratio():
    calm, down, back = SystemFactory(slug="calm"), SystemFactory(slug="down"), SystemFactory(slug="back")
    breaker = CircuitBreaker(clock=time.time)
    for _ in range(3):
        breaker.record(calm.pk, None)
    breaker.record(calm.pk, ErrorClass.TIMEOUT)
    breaker.flush()
    for _ in range(MIN_CALLS):
        breaker.record(down.pk, ErrorClass.UNREACHABLE)
    earlier = CircuitBreaker(clock=lambda: time.time() - COOLDOWN_SECONDS)
    for _ in range(MIN_CALLS):
        earlier.record(back.pk, ErrorClass.SERVER_ERROR)
    assert samples_of("hub_circuit_breaker_state") == {"calm": 0, "down": 1, "back": 2}
    assert samples_of("hub_circuit_breaker_failure_ratio") == {"calm": 0.25, "down": 1.0, "back": 1.0}


def test_it_shows_the_rate_limit_configured_and_the_one_in_force():
    SystemFactory(slug="free", rate_limit_per_second=None)
    SystemFactory(slug="set", rate_limit_per_second=8)
    busy = SystemFactory(slug="busy", rate_limit_per_second=8)
    learned = SystemFactory(slug="learned", rate_limit_per_second=None)
    throttled(busy, 60)
    throttled(learned, 60)
    assert samples_of("hub_rate_limit_configured_per_second") == {"set": 8, "busy": 8}
    in_force = samples_of("hub_rate_limit_in_force_per_second")
    assert in_force == {"set": 8, "busy": 4, "learned": pytest.approx(10)}
