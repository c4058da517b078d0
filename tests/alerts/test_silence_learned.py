"""A learned silence rule knows the flow's week: an office-hours flow may be quiet all weekend,
but not on a Monday morning. It learns from the flow's own last four weeks, and waits for a week
of history before it judges."""

from datetime import UTC, datetime, timedelta

import pytest

from hub.alerts.conditions import conditions_read
from hub.alerts.models import Alert, AlertRule
from hub.pipeline import clock
from tests.alerts.helpers import delivery_rows, evaluate, only_rule

pytestmark = pytest.mark.django_db

MONDAY = datetime(2030, 1, 7, tzinfo=UTC)  # a Monday, 00:00 (the tests' TIME_ZONE is UTC)


def clock_at(moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


def office_hours(flow, *, weeks: int, per_hour: int = 6) -> None:
    """Events on weekdays from 09:00 to 17:00, `per_hour` an hour, for `weeks` weeks before MONDAY."""
    for week in range(weeks, 0, -1):
        for day in range(5):
            for hour in range(9, 17):
                clock_at(MONDAY - timedelta(weeks=week, days=-day, hours=-hour))
                delivery_rows(flow, per_hour)


@pytest.fixture
def learned(flow):
    return only_rule(flow, "silence", window_minutes=None)


def reading_at(moment: datetime) -> Alert | None:
    clock_at(moment)
    evaluate()
    return Alert.objects.firing().first()


def test_an_office_hours_flow_may_be_quiet_all_weekend_but_not_on_monday_morning(flow, learned):
    office_hours(flow, weeks=3)
    assert reading_at(MONDAY - timedelta(days=2, hours=21)) is None  # Saturday 03:00
    assert reading_at(MONDAY - timedelta(hours=1)) is None  # Sunday 23:00
    assert reading_at(MONDAY + timedelta(hours=9, minutes=20)) is None  # 8 expected by 09:20: fine
    alert = reading_at(MONDAY + timedelta(hours=10, minutes=30))
    assert alert is not None
    # Friday 16:00-17:00 usually brings 6 more, and Monday 09:00-10:30 another 9.
    assert alert.summary == "last event 3 days ago; about 15 would usually have arrived by now"


def test_it_waits_for_a_week_of_history_before_it_judges(flow, learned):
    for hours in range(3 * 24):
        clock_at(MONDAY + timedelta(hours=hours))
        delivery_rows(flow, 6)
    clock_at(MONDAY + timedelta(days=3, hours=6))  # 7 hours of quiet after 3 busy days
    evaluate()
    assert not Alert.objects.exists()
    learned.refresh_from_db()
    [reading] = conditions_read([learned], now=clock.now()).values()
    assert not reading.firing
    assert reading.summary == "last event 7 hours ago; still learning its usual volume (3 of 7 days seen)"


def test_it_learns_again_every_hour_not_every_minute(flow, learned):
    office_hours(flow, weeks=2)
    clock_at(MONDAY + timedelta(hours=12))
    evaluate()
    first = AlertRule.objects.get(pk=learned.pk).baseline
    tuesday = 24
    assert first["rates"][tuesday + 9] == 6.0 and first["rates"][tuesday + 8] == 0.0
    assert first["history_hours"] >= 7 * 24
    clock.advance(30 * 60)
    evaluate()
    assert AlertRule.objects.get(pk=learned.pk).baseline["learned_at"] == first["learned_at"]
    clock.advance(31 * 60)
    evaluate()
    assert AlertRule.objects.get(pk=learned.pk).baseline["learned_at"] != first["learned_at"]
