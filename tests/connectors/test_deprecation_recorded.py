"""A target that announces its own end is heard: deliveries to it, on call threads (requests) and
on the engine's event loop (aiohttp), keep the latest notice per system and operation, and write
it at most once a minute while it does not change."""

from datetime import UTC, datetime, timedelta

import pytest

from connectors.auth import AuthScheme
from connectors.models import ApiDeprecation
from hub.pipeline import clock
from tests.deprecating_target import DeprecatingTarget, contacts_flow, people_signed_up
from tests.sandbox_helpers import drain_all, drain_on_an_event_loop

pytestmark = pytest.mark.django_db

SUNSET = "Mon, 01 Mar 2027 00:00:00 GMT"
ANNOUNCING = {
    "Deprecation": "@1764547200",  # 2025-12-01
    "Sunset": SUNSET,
    "Link": '<https://developer.example.com/v2-migration>; rel="deprecation"',
    "Warning": '299 - "/v1/contacts is deprecated, use /v2/contacts"',
}


def test_a_delivery_records_what_the_target_says_about_its_end():
    with DeprecatingTarget(ANNOUNCING) as target:
        flow = contacts_flow(target.url)
        people_signed_up(flow, 1, 2, 3)
        drain_all()
    notice = ApiDeprecation.objects.get()
    assert (notice.system, notice.method, notice.path) == (flow.target_system, "POST", "/v1/contacts")
    assert notice.deprecated and notice.deprecated_since == datetime(2025, 12, 1, tzinfo=UTC)
    assert notice.sunset_at == datetime(2027, 3, 1, tzinfo=UTC)
    assert notice.link == "https://developer.example.com/v2-migration"
    assert notice.warning == "/v1/contacts is deprecated, use /v2/contacts"
    assert notice.first_seen_at <= notice.last_seen_at
    assert notice.times_seen >= 1  # the rest are counted in memory until the minute is up


def test_it_writes_at_most_once_a_minute_unless_the_notice_changes():
    with DeprecatingTarget(ANNOUNCING) as target:
        flow = contacts_flow(target.url)
        people_signed_up(flow, 1)
        drain_all()
        first = ApiDeprecation.objects.get()
        people_signed_up(flow, 2, 3)
        drain_all()
        assert ApiDeprecation.objects.get().last_seen_at == first.last_seen_at  # counted, not written
        clock.advance(61)
        people_signed_up(flow, 4)
        drain_all()
        later = ApiDeprecation.objects.get()
        assert later.times_seen == 4 and later.last_seen_at > first.last_seen_at
        assert later.first_seen_at == first.first_seen_at
        target.headers = {**ANNOUNCING, "Sunset": "Tue, 01 Jun 2027 00:00:00 GMT"}  # postponed
        people_signed_up(flow, 5)
        drain_all()
    assert ApiDeprecation.objects.get().sunset_at == datetime(2027, 6, 1, tzinfo=UTC)


def test_a_credential_the_target_echoes_in_its_notice_is_not_kept():
    key = "apikey-Ur5-secret-Wq8"
    echoing = {
        "Sunset": SUNSET,
        "Warning": f'299 - "your key {key} uses the old API"',
        "Link": f'<https://developer.example.com/keys?k={key}>; rel="sunset"',
    }
    with DeprecatingTarget(echoing) as target:
        flow = contacts_flow(target.url, auth_scheme=AuthScheme.API_KEY, credentials={"api_key": key})
        people_signed_up(flow, 1)
        drain_all()
    notice = ApiDeprecation.objects.get()
    assert notice.sunset_at == datetime(2027, 3, 1, tzinfo=UTC)
    assert key not in notice.warning and key not in notice.sunset_link
    assert notice.warning.startswith("your key ") and notice.warning.endswith(" uses the old API")


def test_a_quiet_target_leaves_nothing():
    with DeprecatingTarget({}) as target:
        flow = contacts_flow(target.url)
        people_signed_up(flow, 1)
        drain_all()
    assert target.calls == [("POST", "/v1/contacts")]
    assert not ApiDeprecation.objects.exists()


@pytest.mark.django_db(transaction=True)  # inside a transaction the run makes its calls inline
def test_a_delivery_on_the_event_loop_records_it_too():
    with DeprecatingTarget(ANNOUNCING) as target:
        flow = contacts_flow(target.url)
        people_signed_up(flow, 1, 2)
        drain_on_an_event_loop(2)
    assert len(target.calls) == 2
    notice = ApiDeprecation.objects.get()
    assert notice.sunset_at == datetime(2027, 3, 1, tzinfo=UTC) and notice.deprecated
    assert notice.last_seen_at > clock.now() - timedelta(minutes=1)
