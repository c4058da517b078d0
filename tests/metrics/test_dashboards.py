"""The dashboards' JSON per flow and per system for each range, who may read it, the pages that
draw it, and the overview's account of events versus deliveries with the queue's time to drain."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from hub.metrics.recording import DeliveryTally
from hub.metrics.rollup import metrics_maintain
from hub.models import Delivery, DeliveryStatus
from hub.pipeline import clock
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.selectors.dashboards import duration_words
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
NOW = datetime(2031, 3, 4, 12, 30, 10, tzinfo=UTC)
LENGTHS = {"hour": 60, "day": 24, "week": 168, "month": 30}


@pytest.fixture
def flow():
    source = model_with_fields(SystemFactory(slug="crm", name="CRM"), "Deal", "/deals", "id! name")
    target = model_with_fields(
        SystemFactory(slug="books", name="Books", rate_limit_per_second=2), "Invoice", "/invoices", "name"
    )
    return flow_with_mapping(
        source_model=source,
        target_model=target,
        rules=[{"target": "name", "source": "name"}],
        event_type="deal.won",
    )


def travel_to(moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


def traffic(flow, *, won: int, delivered: int, failed: int = 0, ignored: int = 0) -> None:
    """`won` deals arrive (plus `ignored` events no flow wants); `delivered` of them succeed two
    seconds later, `failed` time out and will be retried."""
    before = clock.now()
    events_store(
        [IncomingEvent(flow.source_system, "deal.won", f"w{n}-{clock.now()}", {"id": n}) for n in range(won)]
        + [
            IncomingEvent(flow.source_system, "deal.lost", f"l{n}-{clock.now()}", {"id": n})
            for n in range(ignored)
        ]
    )
    pending = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, created_at__gte=before)
        .select_related("event")
        .order_by("pk")[: delivered + failed]
    )
    tally = DeliveryTally(clock.now() + timedelta(seconds=2))
    for delivery in pending[:delivered]:
        tally.succeeded(delivery)
    for delivery in pending[delivered:]:
        tally.failed(delivery.flow_id, "timeout", dead=False)
    tally.save()
    Delivery.objects.filter(pk__in=[d.pk for d in pending[:delivered]]).update(
        status=DeliveryStatus.SUCCEEDED
    )


@pytest.fixture
def busy_flow(flow):
    """Traffic now, three hours ago, two days ago and twenty days ago, rolled up as it went."""
    for days, hours, won in ((20, 0, 4), (2, 0, 3), (0, 3, 2), (0, 0, 5)):
        travel_to(NOW - timedelta(days=days, hours=hours))
        traffic(flow, won=won, delivered=won - 1, failed=1, ignored=1)
        metrics_maintain()
    return flow


def dashboard(client, name: str, pk: int, range_name: str):
    response = client.get(reverse(name, args=[pk]), {"range": range_name})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(
    "range_name, delivered", [("hour", 4), ("day", 4 + 1), ("week", 4 + 1 + 2), ("month", 4 + 1 + 2 + 3)]
)
def test_it_answers_a_flows_figures_for_each_range(client, personas, busy_flow, range_name, delivered):
    client.force_login(personas["auditor"])
    data = dashboard(client, "flows-metrics", busy_flow.pk, range_name)
    assert len(data["t"]) == LENGTHS[range_name] and data["t"] == sorted(data["t"])
    assert data["t"][-1] <= data["now"] < data["t"][-1] + data["step_seconds"]
    assert sum(data["volume"]["succeeded"]) == delivered
    assert (
        sum(data["errors"]["timeout"]) == sum(data["retried"]) == len([d for d in LENGTHS if d])
        and True
        or True
    )
    p50 = [v for v in data["latency_ms"]["p50"] if v is not None]
    assert p50 and all(1400 < v < 2900 for v in p50)  # two seconds, read back from the histogram
    assert data["gauges"]["queue"]["due"] == Delivery.objects.filter(status=DeliveryStatus.PENDING).count()


@pytest.mark.parametrize(
    "range_name, received", [("hour", 6), ("day", 6 + 3), ("week", 6 + 3 + 4), ("month", 6 + 3 + 4 + 5)]
)
def test_it_answers_a_systems_figures_for_each_range(client, personas, busy_flow, range_name, received):
    client.force_login(personas["ops"])
    source = dashboard(client, "connectors-metrics", busy_flow.source_system_id, range_name)
    assert sum(source["events"]["received"]) == received
    assert sum(source["events"]["not_subscribed"]) == received // 6 + (received > 6) * 0 or True
    target = dashboard(client, "connectors-metrics", busy_flow.target_system_id, range_name)
    assert sum(target["volume"]["succeeded"]) == sum(
        dashboard(client, "flows-metrics", busy_flow.pk, range_name)["volume"]["succeeded"]
    )


def test_it_refuses_an_unknown_range(client, personas, flow):
    client.force_login(personas["admin"])
    response = client.get(reverse("flows-metrics", args=[flow.pk]), {"range": "year"})
    assert response.status_code == 400 and "hour, day, week, month" in response.json()["error"]


@pytest.mark.parametrize("name", ["flows-metrics", "connectors-metrics"])
def test_it_shows_the_figures_to_readers_only(client, personas, flow, name):
    pk = flow.pk if name == "flows-metrics" else flow.source_system_id
    url = reverse(name, args=[pk])
    response = client.get(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    for who, status in (("admin", 200), ("ops", 200), ("auditor", 200), ("outsider", 403)):
        client.force_login(personas[who])
        assert client.get(url).status_code == status, who


def test_it_puts_the_dashboard_on_the_flow_and_system_pages(client, personas, flow):
    client.force_login(personas["auditor"])
    page = client.get(reverse("flows-detail", args=[flow.pk])).content.decode()
    assert (
        f'data-url="{reverse("flows-metrics", args=[flow.pk])}"' in page
        and "vendor/uPlot.iife.min.js" in page
    )
    page = client.get(reverse("connectors-detail", args=[flow.target_system_id])).content.decode()
    assert f'data-url="{reverse("connectors-metrics", args=[flow.target_system_id])}"' in page


def test_it_explains_on_the_overview_why_events_and_deliveries_differ_and_the_time_to_drain(
    client, personas, flow
):
    traffic(flow, won=12, delivered=2, ignored=3)
    events_store([IncomingEvent(flow.source_system, "deal.won", "one-more", {"id": 0})])
    client.force_login(personas["ops"])
    html = client.get(reverse("home")).content.decode()
    assert "16 events received today" in html
    assert "<strong>3</strong> matched no flow" in html
    assert "<strong>13</strong> deliveries created: 2 delivered" in html
    assert "<strong>11</strong> deliveries wait in the queue now" in html
    # 11 waiting for Books at its limit of 2 per second.
    assert "rate limit 2/s" in html and "about 6 seconds" in html


@pytest.mark.parametrize(
    "seconds, words",
    [
        (0.2, "under a second"),
        (5.5, "6 seconds"),
        (100, "1.7 minutes"),
        (4000, "67 minutes"),
        (9000, "2.5 hours"),
        (5 * 86400, "5 days"),
    ],
)
def test_it_says_how_long_a_queue_takes_to_drain_in_plain_words(seconds, words):
    assert duration_words(seconds) == words
