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


def minutes_until_it_fires(*, every: int, within: int) -> list[int]:
    """Evaluate every `every` minutes for `within` minutes; the minutes at which an alert fired."""
    fired = []
    for after in range(every, within + 1, every):
        minutes(every)
        if evaluate().fired:
            fired.append(after)
    return fired


def heard(mailoutbox, receiver) -> list[tuple[str, str]]:
    """(email subject, chat text) of each notice, in order."""
    return list(zip([m.subject for m in mailoutbox], [b["text"] for b in receiver.bodies()], strict=True))


def at_minute_of_the_hour(minute: int) -> None:
    """Move the clock to `minute` past an hour: the learned silence must not depend on where in
    its hour the last event fell (it once fired early when that was just after the hour)."""
    now = clock.now()
    clock.advance(((minute - now.minute) % 60) * 60 - now.second)


@pytest.mark.parametrize("minute", [1, 30, 58])
def test_a_flow_goes_silent_ops_hear_once_and_then_hear_it_resolve(
    flow, channels, mailoutbox, receiver, minute
):
    at_minute_of_the_hour(minute)
    kinds = sorted(AlertRule.objects.filter(flow=flow).values_list("kind", flat=True))
    assert kinds == ["auto_pause", "dead_letters", "error_rate", "schema_drift", "silence", "target_sunset"]
    two_weeks_of_traffic(flow)
    evaluate()
    assert not Alert.objects.exists()

    # 6 events an hour are usual, so after 100 quiet minutes 10 are missing. Evaluated for 150
    # minutes, within the hour before the first reminder: exactly one email and one chat message.
    assert minutes_until_it_fires(every=5, within=150) == [100]
    alert = Alert.objects.get(rule__kind="silence")
    [(subject, text)] = heard(mailoutbox, receiver)
    assert subject.startswith("[hub] FIRING: Deals to invoices gets no events for longer than")
    assert text.startswith("[FIRING] Deals to invoices gets no events for longer than")
    assert mailoutbox[0].to == ["ops@example.com"]
    assert "Now: last event 2 hours ago; about 10 would usually have arrived by now" in mailoutbox[0].body

    events_arrive(flow, 1)  # the source is back
    minutes(1)
    assert evaluate().resolved == [alert.pk]
    minutes(5)
    evaluate()
    [_, (subject, text)] = heard(mailoutbox, receiver)
    assert subject.startswith("[hub] RESOLVED: Deals to invoices gets no events")
    assert text.startswith("[RESOLVED] Deals to invoices gets no events for longer than")
    assert receiver.bodies()[1]["summary"].startswith("last event 1 minute ago")
