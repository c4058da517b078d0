"""The overview page: is everything working, at a glance, for every role."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dlq.models import DeadLetter
from hub.models import Attempt, Delivery, DeliveryStatus, Event, FlowState
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


def make_flow(name: str, **extra):
    source = model_with_fields(
        SystemFactory(), f"Src{name}", "/src", {"id": ("string", True), "name": ("string", False)}
    )
    target = model_with_fields(SystemFactory(), f"Dst{name}", "/dst", {"name": ("string", False)})
    return flow_with_mapping(
        source_model=source,
        target_model=target,
        rules=[{"target": "name", "source": "name"}],
        name=name,
        **extra,
    )


def deliver(flow, n: int, status: str, *, when=None, error_class: str = "", message: str = ""):
    when = when or timezone.now()
    for i in range(n):
        event = Event.objects.create(
            system=flow.source_system,
            event_type="x",
            idempotency_key=f"{flow.pk}-{status}-{i}-{when}",
            payload={"id": i},
            received_at=when,
        )
        delivery = Delivery.objects.create(
            event=event,
            flow=flow,
            record_key=str(i),
            status=status,
            attempts=1,
            created_at=when,
            finished_at=when,
        )
        if error_class:
            Attempt.objects.create(
                delivery=delivery,
                number=1,
                started_at=when,
                duration_ms=5,
                outcome="dead",
                error_class=error_class,
                message=message,
            )
            DeadLetter.objects.create(delivery=delivery, flow=flow, error_class=error_class, reason=message)


@pytest.mark.parametrize("who", ["admin", "ops", "auditor"])
def test_it_shows_the_overview_to_every_role(client, personas, who):
    client.force_login(personas[who])
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert b"Flows by health" in response.content


def test_it_refuses_an_outsider_and_sends_the_anonymous_to_sign_in(client, personas):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    client.force_login(personas["outsider"])
    assert client.get(reverse("home")).status_code == 403


def test_it_invites_an_admin_to_register_the_first_system_on_a_fresh_install(client, personas):
    client.force_login(personas["admin"])
    html = client.get(reverse("home")).content.decode()
    assert "No systems yet: register your first" in html
    assert f'href="{reverse("connectors-add")}"' in html


def test_it_tells_an_auditor_who_registers_systems_instead_of_offering_the_button(client, personas):
    client.force_login(personas["auditor"])
    html = client.get(reverse("home")).content.decode()
    assert "No systems yet" in html and "An admin registers systems" in html
    assert f'href="{reverse("connectors-add")}"' not in html


def test_it_counts_flows_by_health_traffic_today_and_open_dead_letters(client, personas):
    good = make_flow("Good flow")
    bad = make_flow("Bad flow")
    make_flow("Paused flow", state=FlowState.PAUSED)
    make_flow("Quiet flow")
    deliver(good, 3, DeliveryStatus.SUCCEEDED)
    deliver(
        bad, 2, DeliveryStatus.DEAD, error_class="auth_failure", message="POST /dst answered 401: invalid key"
    )
    client.force_login(personas["ops"])
    response = client.get(reverse("home"))
    ctx = response.context
    assert {h["state"]: h["count"] for h in ctx["health_counts"]} == {
        "ok": 1,
        "failing": 1,
        "paused": 1,
        "silent": 0,
        "idle": 1,
    }
    assert (ctx["events_today"], ctx["succeeded_today"], ctx["failed_today"], ctx["open_dead_letters"]) == (
        5,
        3,
        2,
        2,
    )
    html = response.content.decode()
    assert "The system refused our credentials (401/403)." in html
    assert "POST /dst answered 401: invalid key" in html
    # problems first
    assert html.index("Bad flow") < html.index("Good flow")


def test_it_draws_the_last_24_hours_as_bars(client, personas):
    flow = make_flow("Charted")
    deliver(flow, 4, DeliveryStatus.SUCCEEDED, when=timezone.now() - timedelta(hours=3))
    deliver(flow, 1, DeliveryStatus.DEAD, when=timezone.now() - timedelta(hours=3), error_class="rejected")
    deliver(
        flow, 7, DeliveryStatus.SUCCEEDED, when=timezone.now() - timedelta(hours=30)
    )  # too old for the chart
    client.force_login(personas["admin"])
    response = client.get(reverse("home"))
    chart = response.context["chart"]
    assert (chart["succeeded"], chart["failed"], len(chart["bars"])) == (4, 1, 24)
    html = response.content.decode()
    assert "<svg" in html and "4 succeeded, 1 failed" in html


def test_it_refreshes_only_the_stats_region_for_htmx(client, personas):
    make_flow("Some flow")
    client.force_login(personas["admin"])
    response = client.get(reverse("home"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="stats"') and "<html" not in html
    assert 'hx-trigger="every 10s"' in html


def test_it_shows_the_overview_in_a_bounded_number_of_queries(
    client, personas, django_assert_max_num_queries
):
    for i in range(12):
        flow = make_flow(f"Flow {i}")
        deliver(flow, 2, DeliveryStatus.SUCCEEDED)
        deliver(flow, 1, DeliveryStatus.DEAD, error_class="server_error", message="boom")
    client.force_login(personas["admin"])
    # 17: the overview, plus one for the events held for review (hub.selectors.drift.held_by_system).
    with django_assert_max_num_queries(17):
        response = client.get(reverse("home"))
    assert response.status_code == 200
    assert len(response.context["errors"]) == 6
