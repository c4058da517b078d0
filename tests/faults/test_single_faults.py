"""Each fault alone, against a target that ignores Idempotency-Key: every order reaches the target
exactly once in effect, or is dead-lettered with the class its fault explains (promises 1, 2, 3
and 9)."""

import pytest

from tests.faults.harness import Scenario, plan, shop_to_target

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
# A 429 or 503 slows the whole target down (it halves the pace every worker keeps, which then
# climbs back over seconds), so those scenarios send fewer orders to end in bounded time.
SLOWED = 60
ORDERS = 100

# scenario, what the target does (as the README table names it), shares, orders, dead-letter
# classes allowed
SINGLE_FAULTS = [
    ("429_seconds", "429 with Retry-After in seconds (10%)", {"429": 0.10}, SLOWED, ()),
    ("429_date", "429 with Retry-After as an HTTP date (10%)", {"429_date": 0.10}, SLOWED, ()),
    ("503", "503 with Retry-After (10%)", {"503": 0.10}, SLOWED, ()),
    ("500", "500 (20%)", {"500": 0.20}, ORDERS, ()),
    ("timeout", "read timeout, half of them after the commit (15%)", {"timeout": 0.15}, ORDERS, ()),
    ("drop_before", "connection dropped before the commit (20%)", {"drop_before": 0.20}, ORDERS, ()),
    ("drop_after", "connection dropped after the commit (25%)", {"drop_after": 0.25}, ORDERS, ()),
    ("garbage", "2xx with a body that is not JSON (25%)", {"garbage": 0.25}, ORDERS, ()),
    ("empty_201", "201 with an empty body (25%)", {"empty_201": 0.25}, ORDERS, ()),
    ("no_id", 'a 2xx without the id: {"ok": true} (25%)', {"no_id": 0.25}, ORDERS, ()),
    ("422", "422 (10%)", {"422": 0.10}, ORDERS, ("rejected",)),
]


@pytest.mark.parametrize(
    "name, fault, shares, orders, allowed_dead", SINGLE_FAULTS, ids=[row[0] for row in SINGLE_FAULTS]
)
def test_it_delivers_each_order_once_in_effect_under(
    name, fault, shares, orders, allowed_dead, faulty_target, live_server, shared_cluster
):
    faulty_target.set_plan(plan(shares))
    run = Scenario(name, fault, faulty_target, shop_to_target(faulty_target), orders, allowed_dead)
    run.post(live_server.url)
    figures = run.finish()
    assert figures.problems == [], figures
    assert figures.target_records + sum(figures.dead_lettered.values()) == orders
    if allowed_dead:
        # One dead letter per refusal: a 422 is never retried, and nothing else is dead-lettered.
        assert figures.dead_lettered == {"rejected": figures.injected["422"]}
