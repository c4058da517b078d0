"""The retry policy is plain arithmetic: how long before retry n, and when to give up."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors.http import parse_retry_after
from hub.pipeline.retry import RetryPolicy

POLICY = RetryPolicy(base_seconds=2.0, max_seconds=60.0, max_attempts=5, max_age_seconds=3600)


@pytest.mark.parametrize(("attempt", "backoff"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0)])
def test_it_doubles_the_wait_with_each_retry(attempt, backoff):
    assert POLICY.backoff(attempt) == backoff
    assert POLICY.delay(attempt, jitter=1.0) == backoff


def test_it_spreads_retries_over_the_whole_backoff_with_full_jitter():
    assert POLICY.delay(3, jitter=0.0) == 0.0  # the lowest draw retries at once
    assert POLICY.delay(3, jitter=0.5) == 4.0
    assert POLICY.delay(3, jitter=1.0) == 8.0  # the highest waits it all


def test_it_retries_only_the_classes_it_names():
    assert POLICY.retries("timeout") and POLICY.retries("outcome_unknown")
    assert not POLICY.retries("rejected") and not POLICY.retries("auth_failure")
    narrow = RetryPolicy(retry_on=frozenset({"rate_limited"}))
    assert narrow.retries("rate_limited") and not narrow.retries("server_error")


@pytest.mark.parametrize("jitter", [-0.01, 1.01])
def test_it_refuses_a_jitter_outside_zero_to_one(jitter):
    with pytest.raises(ValueError, match="between 0 and 1"):
        POLICY.delay(1, jitter=jitter)


def test_it_caps_the_wait():
    assert POLICY.backoff(6) == 60.0
    assert POLICY.delay(50, jitter=1.0) == 60.0
    assert POLICY.delay(10**6, jitter=1.0) == 60.0  # no overflow however many retries


def test_it_counts_a_first_attempt_of_zero_or_less_as_the_first_retry():
    assert POLICY.backoff(0) == POLICY.backoff(-3) == POLICY.backoff(1) == 2.0


def test_it_waits_at_least_as_long_as_the_target_asks():
    assert POLICY.delay(1, jitter=0.0, retry_after=30) == 30.0
    assert POLICY.delay(1, jitter=0.0, retry_after=120) == 120.0  # Retry-After wins over the cap


def test_it_never_shortens_the_backoff_for_a_sooner_retry_after():
    assert POLICY.delay(4, jitter=1.0, retry_after=1) == 16.0
    assert POLICY.delay(4, jitter=1.0, retry_after=0) == 16.0


def test_it_gives_up_after_the_last_allowed_attempt():
    assert POLICY.give_up_reason(attempts=4, age_seconds=10) == ""
    assert POLICY.give_up_reason(attempts=5, age_seconds=10) == "gave up after 5 attempts"
    assert POLICY.give_up_reason(attempts=9, age_seconds=10) == "gave up after 9 attempts"


def test_it_gives_up_on_an_event_too_old_to_matter():
    assert POLICY.give_up_reason(attempts=1, age_seconds=3599) == ""
    assert POLICY.give_up_reason(attempts=1, age_seconds=5400) == "gave up: the event is 1.5 h old"


def test_it_names_the_attempt_limit_first_when_both_are_reached():
    assert POLICY.give_up_reason(attempts=5, age_seconds=7200) == "gave up after 5 attempts"


def test_a_flow_builds_its_policy_from_its_settings():
    from hub.models import Flow

    flow = Flow(max_attempts=3, retry_base_seconds=0.5, retry_max_seconds=4)
    policy = flow.retry_policy()
    assert (policy.max_attempts, policy.base_seconds, policy.max_seconds) == (3, 0.5, 4)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), ("0", 0.0), ("-5", 0.0), ("soon", None), ("", None)],
)
def test_it_reads_retry_after_in_seconds(header, seconds):
    assert parse_retry_after(header) == seconds


def test_it_reads_retry_after_as_an_http_date():
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= parse_retry_after(in_a_minute) <= 60
    a_date_gone_by = format_datetime(datetime.now(UTC) - timedelta(seconds=60), usegmt=True)
    assert parse_retry_after(a_date_gone_by) == 0.0
