"""A target announcing that it retires what a flow uses is an alert: told when first heard, again
when the switch-off comes within the rule's days (30 by default) and again a week before, and not
in between."""

from datetime import timedelta
from email.utils import format_datetime

import pytest

from hub.alerts.models import Alert, AlertRule
from hub.pipeline import clock
from hub.services.flows import flow_create
from tests.alerts.helpers import evaluate, only_rule
from tests.deprecating_target import DeprecatingTarget, contacts_flow, people_signed_up
from tests.factories import crm_and_books, model_with_fields
from tests.sandbox_helpers import drain_all

pytestmark = pytest.mark.django_db


def days(n: float) -> None:
    clock.advance(n * 86400)


def calendar_days_until(moment) -> int:
    return (moment.date() - clock.now().date()).days


def statuses(receiver) -> list[str]:
    return [body["status"] for body in receiver.bodies()]


def test_ops_hear_of_a_retirement_at_once_then_a_month_and_a_week_before(channels, receiver, mailoutbox):
    sunset = clock.now() + timedelta(days=60, hours=12)
    headers = {
        "Deprecation": "@1764547200",
        "Sunset": format_datetime(sunset, usegmt=True),
        "Link": '<https://developer.example.com/v2-migration>; rel="deprecation"',
    }
    with DeprecatingTarget(headers) as target:
        flow = contacts_flow(target.url)
        rule = only_rule(flow, "target_sunset", threshold=30)
        assert rule.renotify_minutes == 0  # no hourly reminders for months

        evaluate()
        assert not Alert.objects.exists()  # nothing heard yet

        people_signed_up(flow, 1)
        drain_all()
        assert len(evaluate().fired) == 1
        alert = Alert.objects.get()
        assert alert.summary == (
            f"Old CRM says POST /v1/contacts is deprecated (since 2025-12-01) "
            f"and will be switched off on {sunset:%Y-%m-%d}, {calendar_days_until(sunset)} days from now."
        )
        assert statuses(receiver) == ["firing"]
        assert "Sign-ups to contacts uses an API its target is retiring" in mailoutbox[0].subject

        for n, day in enumerate((10, 20, 30, 40, 50, 53, 54), start=2):
            days(day - (clock.now() - alert.started_at).days)
            people_signed_up(flow, n)  # the flow keeps calling, and the target keeps saying so
            drain_all()
            evaluate()
            heard = {10: 1, 20: 1, 30: 1, 40: 2, 50: 2, 53: 2, 54: 3}[day]
            assert len(receiver.bodies()) == heard, f"day {day}"
    assert statuses(receiver) == ["firing", "reminder", "reminder"]
    last = receiver.bodies()[-1]["summary"]
    assert last.endswith(f"switched off on {sunset:%Y-%m-%d}, {calendar_days_until(sunset)} days from now.")
    assert calendar_days_until(sunset) in (6, 7)
    assert Alert.objects.get().is_firing


def heard_and_evaluated(flow, *numbers: int) -> None:
    people_signed_up(flow, *numbers)
    drain_all()
    evaluate()


def test_a_deprecation_without_a_date_is_told_once(channels, receiver):
    with DeprecatingTarget({"Deprecation": "true"}) as target:
        flow = contacts_flow(target.url)
        only_rule(flow, "target_sunset", threshold=30)
        heard_and_evaluated(flow, 1)
        days(3)
        heard_and_evaluated(flow, 2)
    assert statuses(receiver) == ["firing"]
    assert "it has not said when it will be switched off" in receiver.bodies()[0]["summary"]


def test_it_resolves_once_the_target_stops_saying_so_for_a_month(channels, receiver):
    with DeprecatingTarget({"Deprecation": "true"}) as target:
        flow = contacts_flow(target.url)
        only_rule(flow, "target_sunset", threshold=30)
        heard_and_evaluated(flow, 1)
        days(31)
        assert len(evaluate().resolved) == 1


def test_a_new_flow_watches_for_it_by_default(personas):
    crm, books = crm_and_books()
    flow = flow_create(
        name="Won deals",
        source_model=model_with_fields(crm, "Deal", "/deals", "id!"),
        target_model=model_with_fields(books, "Invoice", "/invoices", "total:number!"),
        actor=personas["admin"],
    )
    rule = AlertRule.objects.get(flow=flow, kind="target_sunset")
    assert (rule.threshold, rule.renotify_minutes) == (30, 0)
