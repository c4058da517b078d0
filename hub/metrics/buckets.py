"""The fixed shapes metrics are stored in: time buckets (minute, hour, day and the running total)
and the latency histogram's log buckets, with the percentile arithmetic. Pure functions."""

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from django.db import models


class Span(models.TextChoices):
    MINUTE = "m", "minute"
    HOUR = "h", "hour"
    DAY = "d", "day"
    # One row per subject since the beginning: the counters /metrics exposes as totals.
    TOTAL = "t", "total"


SPAN_SECONDS = {Span.MINUTE: 60, Span.HOUR: 3600, Span.DAY: 86400}
# The span each span's rows are rolled up from.
FINER = {Span.HOUR: Span.MINUTE, Span.DAY: Span.HOUR}
TOTAL_START = datetime(2000, 1, 1, tzinfo=UTC)


def bucket_start(moment: datetime, span: str) -> datetime:
    """The start of the `span` bucket holding `moment`, in UTC (days are UTC days)."""
    if span == Span.TOTAL:
        return TOTAL_START
    seconds = SPAN_SECONDS[span]
    stamp = math.floor(moment.timestamp() / seconds) * seconds
    return datetime.fromtimestamp(stamp, UTC)


def bucket_starts(since: datetime, until: datetime, span: str) -> list[datetime]:
    """Every `span` bucket from the one holding `since` up to the one holding `until`."""
    step = timedelta(seconds=SPAN_SECONDS[span])
    moment, last = bucket_start(since, span), bucket_start(until, span)
    starts = []
    while moment <= last:
        starts.append(moment)
        moment += step
    return starts


# --- The latency histogram ------------------------------------------------------------------
# Bucket i holds latencies up to 2^(i/2) ms (bucket 0: up to 1 ms); each bound is √2 times the
# last, so an estimate read back is within a factor of √2 of the truth (with many deliveries spread
# over a bucket, far closer: it is interpolated by rank inside the bucket). The last
# bucket (2^28 ms, about 75 hours) also holds anything longer. Counts per bucket add up, so
# percentiles survive the roll-ups exactly as they were recorded.
LATENCY_BUCKETS = 57


def latency_bucket(ms: float) -> int:
    if ms <= 1.0:
        return 0
    return min(LATENCY_BUCKETS - 1, math.ceil(2 * math.log2(ms) - 1e-9))


def bucket_upper_ms(index: int) -> float:
    return 2 ** (index / 2)


def percentile_ms(counts: Mapping[int, int], fraction: float) -> float | None:
    """The latency below which `fraction` of the counted deliveries fall, interpolated
    geometrically inside its bucket (None when nothing was counted)."""
    total = sum(counts.values())
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index in sorted(counts):
        n = counts[index]
        if n and seen + n >= rank:
            upper = bucket_upper_ms(index)
            lower = bucket_upper_ms(index - 1) if index else upper / 2**0.5
            share = (rank - seen) / n
            return lower * (upper / lower) ** share
        seen += n
    return bucket_upper_ms(max(counts))
