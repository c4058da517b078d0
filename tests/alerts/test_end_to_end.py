"""The promise "nothing fails silently", end to end: a flow with two weeks of steady traffic and
its default rules goes quiet; ops get exactly one email and one chat message, and one of each
again when events come back."""

import pytest

from hub.alerts.models import Alert, AlertRule
from hub.pipeline import clock
from tests.alerts.helpers import evaluate, events_arrive, minutes

pytestmark = pytest.mark.django_db

HOUR = 3600


def two_weeks_of_traffic(flow, per_hour: int = 6) -> None:
    """Events through the real ingest, `per_hour` every hour for 14 days, the last ones now."""
    clock.advance(-14 * 24 * HOUR)
    for _ in range(14 * 24):
        clock.advance(HOUR)
        events_arrive(flow, per_hour)


def test_a_flow_goes_silent_ops_hear_once_and_then_hear_it_resolve(flow, channels, mailoutbox, receiver):
    assert sorted(AlertRule.objects.filter(flow=flow).values_list("kind", flat=True)) == [
        "auto_pause",
        "dead_letters",
        "error_rate",
        "silence",
    ]
    two_weeks_of_traffic(flow)
    evaluate()
    assert not Alert.objects.exists()

    # Silence: 6 events an hour are usual, so after 100 quiet minutes 10 are missing.
    fired_after = []
    for step in range(1, 31):  # evaluated every 5 minutes for 150 minutes, within the reminder's hour
        minutes(5)
        if evaluate().fired:
            fired_after.append(step * 5)
    assert fired_after == [100]
    alert = Alert.objects.get()
    assert alert.rule.kind == "silence" and alert.is_firing
    assert len(mailoutbox) == 1 and len(receiver.requests) == 1  # exactly one of each, no reminder yet
    assert mailoutbox[0].to == ["ops@example.com"]
    assert receiver.bodies()[0]["text"].startswith(
        "[FIRING] Deals to invoices gets no events for longer than"
    )
    assert "Now: last event 2 hours ago; about 10 would usually have arrived by now" in mailoutbox[0].body

    events_arrive(flow, 1)  # the source is back
    minutes(1)
    assert evaluate().resolved == [alert.pk]
    assert len(mailoutbox) == 2 and len(receiver.requests) == 2
    assert mailoutbox[1].subject.startswith("[hub] RESOLVED: Deals to invoices gets no events")
    assert receiver.bodies()[1]["status"] == "resolved"
    assert receiver.bodies()[1]["summary"].startswith("last event 1 minute ago")
    minutes(5)
    evaluate()
    assert len(mailoutbox) == 2 and len(receiver.requests) == 2
