"""Minutes roll up into hours and hours into days, old rows expire, and every read adds up to the
same totals whatever has been rolled up so far. Time moves with the pipeline's clock."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from hub.metrics.buckets import Span, latency_bucket, percentile_ms
from hub.metrics.models import FlowCount, LatencyCount, QueueSample, SystemCount
from hub.metrics.recording import DeliveryTally
from hub.metrics.rollup import metrics_maintain, retention_apply, rollup
from hub.metrics.schedules import METRICS_SCHEDULE
from hub.metrics.series import collect, total
from hub.models import Delivery
from hub.pipeline import clock
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
START = datetime(2031, 3, 4, 22, 0, 10, tzinfo=UTC)


def travel_to(moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


@pytest.fixture
def flow():
    source = model_with_fields(SystemFactory(slug="crm"), "Deal", "/deals", "id! name")
    target = model_with_fields(SystemFactory(slug="books"), "Invoice", "/invoices", "name")
    return flow_with_mapping(
        source_model=source, target_model=target, rules=[{"target": "name", "source": "name"}]
    )


def events(flow, count: int, tag: str) -> None:
    events_store(
        [
            IncomingEvent(flow.source_system, "deal.won", f"{tag}-{n}", {"id": f"{tag}-{n}"})
            for n in range(count)
        ]
    )


def deliver_all(after_seconds: float) -> None:
    """Count every queued delivery as succeeded `after_seconds` after its event arrived."""
    for delivery in Delivery.objects.filter(status="pending").select_related("event"):
        tally = DeliveryTally(delivery.event.received_at + timedelta(seconds=after_seconds))
        tally.succeeded(delivery)
        tally.save()
        Delivery.objects.filter(pk=delivery.pk).update(status="succeeded")


def traffic_over_three_days(flow) -> None:
    """5 events at 22:00, 7 at 23:30 and 11 the next day at 01:15; 100 ms, 2 s and 40 s late."""
    for offset, count, late in (
        (timedelta(0), 5, 0.1),
        (timedelta(minutes=90), 7, 2),
        (timedelta(hours=3, minutes=15), 11, 40),
    ):
        travel_to(START + offset)
        events(flow, count, f"at{offset.seconds}")
        deliver_all(late)


def received(system, span: str, since: datetime) -> int:
    return total(SystemCount, since, span, system=system)["received"]


def test_it_rolls_minutes_into_hours_and_hours_into_days_and_reads_the_same_totals_throughout(flow):
    traffic_over_three_days(flow)
    since = START - timedelta(days=1)
    before = {span: received(flow.source_system, span, since) for span in (Span.MINUTE, Span.HOUR, Span.DAY)}
    travel_to(START + timedelta(hours=6))
    report = metrics_maintain()
    assert report["hours"] > 0 and report["days"] > 0
    after = {span: received(flow.source_system, span, since) for span in (Span.MINUTE, Span.HOUR, Span.DAY)}
    assert before == after == dict.fromkeys(after, 23)
    hours = dict(SystemCount.objects.filter(span=Span.HOUR).values_list("start", "received"))
    assert hours == {
        START.replace(second=0): 5,
        START.replace(hour=23, second=0): 7,
        START.replace(day=5, hour=1, second=0): 11,
    }
    days = dict(SystemCount.objects.filter(span=Span.DAY).values_list("start", "received"))
    # 01:00 on the 5th is rolled into its day only once every minute of that hour was in.
    assert days == {START.replace(hour=0, second=0): 12, START.replace(day=5, hour=0, second=0): 11}
    succeeded = total(FlowCount, since, Span.DAY, flow=flow)["succeeded"]
    assert succeeded == 23


def test_it_rolls_each_minute_up_only_once_however_often_the_task_runs(flow):
    traffic_over_three_days(flow)
    for minutes in (0, 1, 5, 5, 61, 200, 200):
        travel_to(START + timedelta(hours=3, minutes=20 + minutes))
        metrics_maintain()
    hours = SystemCount.objects.filter(span=Span.HOUR)
    assert sum(hours.values_list("received", flat=True)) == 23
    assert received(flow.source_system, Span.HOUR, START) == 23


def test_it_keeps_minutes_two_days_hours_ninety_days_and_days_for_ever(flow):
    traffic_over_three_days(flow)
    travel_to(START + timedelta(hours=49))
    metrics_maintain()
    assert not SystemCount.objects.filter(span=Span.MINUTE, start__lt=START + timedelta(hours=1)).exists()
    assert SystemCount.objects.filter(span=Span.MINUTE).exists()  # 01:15 on the 5th is younger than 48 h
    assert received(flow.source_system, Span.HOUR, START - timedelta(hours=1)) == 23
    travel_to(START + timedelta(days=91, hours=4))
    metrics_maintain()
    assert not SystemCount.objects.filter(span__in=(Span.MINUTE, Span.HOUR)).exists()
    assert received(flow.source_system, Span.DAY, START - timedelta(days=1)) == 23
    assert SystemCount.objects.get(span=Span.TOTAL).received == 23


def test_it_never_expires_rows_that_are_not_rolled_up_yet(flow):
    traffic_over_three_days(flow)
    travel_to(START + timedelta(days=5))
    retention_apply(now=clock.now())  # the roll-up has never run
    assert received(flow.source_system, Span.MINUTE, START - timedelta(hours=1)) == 23


def test_it_keeps_the_latency_percentiles_through_the_roll_ups(flow):
    traffic_over_three_days(flow)
    before = {
        span: {
            k[1]: v["n"] for k, v in collect(LatencyCount, span, START, group=("bucket",), flow=flow).items()
        }
        for span in (Span.MINUTE,)
    }
    travel_to(START + timedelta(hours=6))
    metrics_maintain()
    rolled: dict[int, int] = {}
    for (_, bucket), values in collect(LatencyCount, Span.DAY, START, group=("bucket",), flow=flow).items():
        rolled[bucket] = rolled.get(bucket, 0) + values["n"]
    assert (
        rolled
        == before[Span.MINUTE]
        == {latency_bucket(100): 5, latency_bucket(2000): 7, latency_bucket(40000): 11}
    )
    # 5 of 23 took 100 ms, 7 took 2 s, 11 took 40 s: each read back within its bucket (a factor of √2).
    assert percentile_ms(rolled, 0.2) == pytest.approx(100, rel=0.42)
    assert percentile_ms(rolled, 0.5) == pytest.approx(2000, rel=0.42)
    assert percentile_ms(rolled, 0.95) == pytest.approx(40000, rel=0.42)


def test_it_samples_each_enabled_flows_queue_once_a_run(flow):
    travel_to(START)
    events(flow, 3, "q")
    metrics_maintain()
    metrics_maintain()
    sample = QueueSample.objects.get(flow=flow, span=Span.MINUTE)
    assert (sample.samples, sample.depth_sum, sample.depth_max) == (2, 6, 3)


def test_it_schedules_the_metrics_task_after_every_migrate():
    Schedule.objects.filter(name=METRICS_SCHEDULE).delete()
    call_command("migrate", interactive=False, verbosity=0)
    schedule = Schedule.objects.get(name=METRICS_SCHEDULE)
    assert (schedule.func, schedule.minutes) == ("hub.metrics.tasks.metrics_maintain", 1)


def test_it_rolls_up_nothing_when_nothing_was_recorded():
    assert rollup(Span.HOUR, now=clock.now()) == 0
