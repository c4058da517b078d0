"""The system page says how calls to the system go, as every worker sees it: the circuit breaker
(closed with its failure rate, open until when, half-open probing) and the rate limit in force
against the one set; its "calls" region refreshes on its own."""

import time

import pytest
from django.urls import reverse

from connectors.base import ErrorClass
from connectors.breaker import COOLDOWN_SECONDS, MIN_CALLS, CircuitBreaker
from connectors.ratelimit import throttled
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db


def page(client, personas, system, **headers) -> str:
    client.force_login(personas["auditor"])
    response = client.get(reverse("connectors-detail", args=[system.pk]), **headers)
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def test_a_closed_breaker_shows_the_failure_rate_over_the_window(client, personas):
    system = SystemFactory(rate_limit_per_second=20)
    breaker = CircuitBreaker()
    for outcome in [None] * 9 + [ErrorClass.SERVER_ERROR]:
        breaker.record(system.pk, outcome)
    breaker.flush()
    text = page(client, personas, system)
    assert '<span class="badge ok">closed</span>' in text
    assert "In the last 30 seconds 1 of 10 calls failed (10%)" in text
    assert "Set on the system</dt><dd>20 per second" in text
    assert "In force now</dt> <dd>20 per second, as set" in text


def test_an_open_breaker_says_until_when_and_what_opened_it(client, personas):
    system = SystemFactory()
    breaker = CircuitBreaker()
    for _ in range(MIN_CALLS):
        breaker.record(system.pk, ErrorClass.TIMEOUT)
    text = page(client, personas, system)
    assert '<span class="badge bad">open</span>' in text
    assert "<strong>No calls until" in text and "deliveries to it wait" in text
    assert f"{MIN_CALLS} of {MIN_CALLS} calls failed (100%)" in text


def test_a_half_open_breaker_says_one_call_is_probing(client, personas):
    system = SystemFactory()
    earlier = CircuitBreaker(clock=lambda: time.time() - COOLDOWN_SECONDS)
    for _ in range(MIN_CALLS):
        earlier.record(system.pk, ErrorClass.UNREACHABLE)
    text = page(client, personas, system)
    assert '<span class="badge warn">half-open</span>' in text
    assert "the next call probes whether it works again" in text
    assert CircuitBreaker().allows(system.pk)
    assert "<strong>One call is probing</strong>" in page(client, personas, system)


def test_a_429_shows_the_learned_rate_and_the_pause(client, personas):
    system = SystemFactory(name="Vendor", rate_limit_per_second=10)
    throttled(system, 120)
    text = page(client, personas, system, HTTP_HX_REQUEST="true")
    assert text.startswith('<section class="card" id="calls"'), "htmx asks for the region only"
    assert '<span class="badge warn">paused</span>' in text
    assert "In force now</dt> <dd>5 per second, learned" in text
    assert "Paused until</dt><dd>" in text and "as the system asked (Retry-After)" in text
    assert "climbs back to the 10 per second set" in text


def test_with_no_limit_set_and_no_429_there_is_no_limit(client, personas):
    text = page(client, personas, SystemFactory(rate_limit_per_second=None))
    assert "Set on the system</dt><dd>none" in text and "In force now</dt> <dd>no limit" in text
