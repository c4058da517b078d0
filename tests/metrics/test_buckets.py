"""The latency histogram's log buckets and the percentiles read back from them."""

import random
from datetime import UTC, datetime

import pytest

from hub.metrics.buckets import (
    Span,
    bucket_start,
    bucket_starts,
    bucket_upper_ms,
    latency_bucket,
    percentile_ms,
)


@pytest.mark.parametrize("ms", [0.2, 1, 1.5, 7, 99, 100, 101, 2500, 60_000, 3_600_000])
def test_it_puts_each_latency_in_the_bucket_whose_bounds_hold_it(ms):
    bucket = latency_bucket(ms)
    assert ms <= bucket_upper_ms(bucket)
    assert bucket == 0 or ms > bucket_upper_ms(bucket - 1)


def test_it_keeps_latencies_beyond_the_last_bound_in_the_last_bucket():
    assert latency_bucket(10**12) == latency_bucket(10**10)


def test_it_reads_percentiles_back_within_a_buckets_width():
    rng = random.Random(7)
    latencies = sorted(rng.lognormvariate(5, 1.5) for _ in range(20_000))
    counts: dict[int, int] = {}
    for ms in latencies:
        counts[latency_bucket(ms)] = counts.get(latency_bucket(ms), 0) + 1
    for fraction in (0.5, 0.95, 0.99):
        exact = latencies[int(fraction * len(latencies)) - 1]
        assert percentile_ms(counts, fraction) == pytest.approx(exact, rel=0.2)


def test_it_has_no_percentile_without_deliveries():
    assert percentile_ms({}, 0.5) is None


def test_it_buckets_time_in_utc_minutes_hours_and_days():
    moment = datetime(2031, 3, 4, 22, 37, 41, 500, tzinfo=UTC)
    assert bucket_start(moment, Span.MINUTE) == datetime(2031, 3, 4, 22, 37, tzinfo=UTC)
    assert bucket_start(moment, Span.HOUR) == datetime(2031, 3, 4, 22, tzinfo=UTC)
    assert bucket_start(moment, Span.DAY) == datetime(2031, 3, 4, tzinfo=UTC)
    assert len(bucket_starts(datetime(2031, 3, 4, 20, 59, tzinfo=UTC), moment, Span.HOUR)) == 3
