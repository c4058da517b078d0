"""The metrics task, once a minute: sample every flow's queue, add finished minutes into hours and
finished hours into days, and drop rows past their retention. Safe to run on several machines at
once: a roll-up holds its watermark row locked, and rows are only added, never rewritten."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from hub.metrics.buckets import FINER, TOTAL_START, Span, bucket_start
from hub.metrics.gauges import queues
from hub.metrics.models import BUCKETED, CircuitState, Heartbeat, QueueSample, Rollup
from hub.metrics.upsert import upsert_add
from hub.models import Flow, FlowState
from hub.pipeline import clock

# A minute's rows may still be written for a moment after it ends (a batch that began in it
# commits late), so minutes are rolled up only this long after they end.
GRACE = timedelta(minutes=2)
CHUNK = 1000
STALE = timedelta(days=1)


def metrics_maintain(*, now: datetime | None = None) -> dict[str, int]:
    now = now or clock.now()
    return {
        "sampled": queue_sample(now=now),
        "hours": rollup(Span.HOUR, now=now),
        "days": rollup(Span.DAY, now=now),
        "dropped": retention_apply(now=now),
    }


def queue_sample(*, now: datetime) -> int:
    """One sample of every enabled flow's queue depth into this minute's bucket."""
    depth = queues(now=now)
    start = bucket_start(now, Span.MINUTE)
    flows = Flow.objects.exclude(state=FlowState.DRAFT).values_list("pk", flat=True)
    rows = []
    for flow_id in flows:
        queue = depth.get(flow_id)
        n = queue.depth if queue else 0
        rows.append(
            {
                "flow_id": flow_id,
                "span": Span.MINUTE,
                "start": start,
                "samples": 1,
                "depth_sum": n,
                "depth_max": n,
            }
        )
    return upsert_add(QueueSample, rows)


def watermark(span: str) -> datetime:
    """Rows of the span finer than `span` that start before this are added into `span`'s rows."""
    done = Rollup.objects.filter(span=span).values_list("done_until", flat=True).first()
    return done or TOTAL_START


def rollup(span: str, *, now: datetime) -> int:
    """Add the finer span's rows from the watermark up to the cutoff into `span`'s buckets; returns
    the rows read. Minutes are taken once they are GRACE old; an hour once all its minutes are in
    (so a day never misses a later addition to an hour it already took)."""
    finer = FINER[span]
    Rollup.objects.get_or_create(span=span, defaults={"done_until": TOTAL_START})
    with transaction.atomic():
        mark = Rollup.objects.select_for_update().get(span=span)
        if finer == Span.MINUTE:
            cutoff = bucket_start(now - GRACE, Span.MINUTE)
        else:
            cutoff = bucket_start(watermark(Span.HOUR), finer)
        if cutoff <= mark.done_until:
            return 0
        read = sum(_add_into(model, finer, span, mark.done_until, cutoff) for model in BUCKETED)
        mark.done_until = cutoff
        mark.save(update_fields=["done_until"])
    return read


def _add_into(model, finer: str, span: str, since: datetime, until: datetime) -> int:
    names = [name for name in model.KEY if name not in ("span", "start")]
    rows = model.objects.filter(span=finer, start__gte=since, start__lt=until).values(
        *names, "start", *model.ADDED, *model.HIGHEST
    )
    chunk, read = [], 0
    for row in rows.iterator(chunk_size=CHUNK):
        chunk.append({**row, "span": span, "start": bucket_start(row["start"], span)})
        read += 1
        if len(chunk) >= CHUNK:
            upsert_add(model, chunk)
            chunk = []
    upsert_add(model, chunk)
    return read


def retention_apply(*, now: datetime) -> int:
    """Delete rows past their retention, never rows not yet rolled up."""
    keep = {
        Span.MINUTE: (timedelta(hours=settings.HUB_METRICS_KEEP_MINUTES_HOURS), watermark(Span.HOUR)),
        Span.HOUR: (timedelta(days=settings.HUB_METRICS_KEEP_HOURS_DAYS), watermark(Span.DAY)),
    }
    if settings.HUB_METRICS_KEEP_DAYS_DAYS:
        keep[Span.DAY] = (timedelta(days=settings.HUB_METRICS_KEEP_DAYS_DAYS), now)
    dropped = 0
    for span, (kept_for, rolled_until) in keep.items():
        before = min(now - kept_for, rolled_until)
        for model in BUCKETED:
            dropped += model.objects.filter(span=span, start__lt=before).delete()[0]
    dropped += Heartbeat.objects.filter(seen_at__lt=now - STALE).delete()[0]
    dropped += CircuitState.objects.filter(open_until__lt=now - STALE).delete()[0]
    return dropped
