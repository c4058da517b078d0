"""The Demo systems page's actions, against the real sandbox on loopback: each makes something
happen through the sandbox's own API, and the hub receives the real webhook that follows."""

import random
import socket
import time

import pytest
import requests

from connectors.models import System
from hub.demo_actions import (
    DemoActionError,
    demo_action_run,
    demo_systems,
    sandbox_start_command,
    sandbox_status,
)
from hub.models import Delivery, Event
from tests.sandbox_helpers import demo_on_sandbox, drain_all, fault, records

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(fresh_sandbox, live_server):
    demo_on_sandbox(fresh_sandbox, live_server.url)
    return fresh_sandbox


def system(slug: str) -> System:
    return System.objects.get(slug=slug)


def test_it_lists_the_demo_systems_in_order_and_sees_them_up(demo, live_server):
    assert [s.slug for s in demo_systems()] == ["crm", "accounting", "inventory", "hr", "payments"]
    status = sandbox_status(system("crm"))
    assert (status.running, status.broken_until, status.problem) == (True, None, "")
    assert status.webhooks_to == f"{live_server.url}/hooks/crm/"
    assert [a.name for a in status.actions] == ["win-deal", "break"]
    assert "deals" in status.plays


def test_a_system_whose_sandbox_is_away_or_elsewhere_is_not_running(fresh_sandbox):
    demo_on_sandbox(fresh_sandbox)
    port = closed_port()
    System.objects.filter(slug="crm").update(base_url=f"http://127.0.0.1:{port}")
    away = sandbox_status(system("crm"))
    assert not away.running and away.on_loopback
    assert away.problem == f"nothing answers as the crm sandbox at http://127.0.0.1:{port}"
    # The HR sandbox answers at the CRM's address: it is not taken for the CRM.
    System.objects.filter(slug="crm").update(base_url=fresh_sandbox.url("hr"))
    assert not sandbox_status(system("crm")).running
    # A real vendor's address gets no demo traffic from the hub, not even a look.
    System.objects.filter(slug="crm").update(base_url="https://crm.example.com")
    elsewhere = sandbox_status(system("crm"))
    assert (elsewhere.running, elsewhere.on_loopback) == (False, False)
    with pytest.raises(DemoActionError, match="is not running: https://crm.example.com is not a sandbox"):
        demo_action_run(system=system("crm"), action_name="win-deal")


def test_winning_a_deal_sends_the_crms_webhook_to_the_hub_and_on_to_its_flows(demo):
    outcome = demo_action_run(system=system("crm"), action_name="win-deal", rng=random.Random(3))
    deal = next(d for d in records(demo, "crm", "deals") if d["id"] == outcome.record_id)
    assert deal["stage"] == "won"
    assert outcome.headline.startswith(f"Deal {deal['id']} “{deal['title']}” was won in the CRM")
    assert outcome.event is not None, "the hub did not receive deal.won within the wait"
    assert (outcome.event.event_type, outcome.event.record_id) == ("deal.won", deal["id"])
    flows = set(Delivery.objects.filter(event=outcome.event).values_list("flow__name", flat=True))
    assert flows == {"Won deals reduce stock", "Won deals checked against stock"}
    drain_all()
    adjustments = [a for a in records(demo, "inventory", "adjustments") if a["reference"] == deal["id"]]
    assert len(adjustments) == 1


@pytest.mark.parametrize(
    ("slug", "action", "event_type", "resource"),
    [
        ("payments", "charge-card", "payment.succeeded", "charges"),
        ("hr", "hire-person", "employee.hired", "employees"),
    ],
)
def test_charging_a_card_and_hiring_a_person_reach_the_hub(demo, slug, action, event_type, resource):
    outcome = demo_action_run(system=system(slug), action_name=action)
    assert outcome.record_id in {r["id"] for r in records(demo, slug, resource)}
    assert outcome.event is not None and outcome.event.event_type == event_type
    assert Event.objects.filter(system__slug=slug, record_id=outcome.record_id).count() == 1


def test_breaking_a_system_makes_it_answer_503_for_a_minute(demo):
    outcome = demo_action_run(system=system("inventory"), action_name="break")
    assert outcome.headline.startswith("Broken until ")
    assert (outcome.event_type, outcome.event) == ("", None)
    answer = requests.get(
        f"{demo.url('inventory')}/products", headers={"X-Api-Key": "inv-demo-key"}, timeout=5
    )
    assert answer.status_code == 503
    status = sandbox_status(system("inventory"))
    assert status.running and status.broken_until == pytest.approx(time.time() + 60, abs=5)
    requests.delete(f"{demo.url('inventory')}/_control/faults", timeout=5)  # heal at once, for the next test
    assert sandbox_status(system("inventory")).broken_until is None


def test_an_action_that_does_not_belong_to_the_system_is_refused_in_words(demo):
    with pytest.raises(DemoActionError, match="“Win a deal” happens in the crm sandbox, not in HR"):
        demo_action_run(system=system("hr"), action_name="win-deal")
    with pytest.raises(DemoActionError, match="there is no demo action “fly”"):
        demo_action_run(system=system("hr"), action_name="fly")
    assert not Event.objects.exists()


def test_the_start_command_points_the_sandbox_at_the_ports_the_systems_expect(fresh_sandbox):
    demo_on_sandbox(fresh_sandbox)
    for position, slug in enumerate(["crm", "accounting", "inventory", "hr", "payments"], start=1):
        System.objects.filter(slug=slug).update(base_url=f"http://127.0.0.1:{8600 + position}")
    hub = "http://127.0.0.1:8001"
    assert (
        sandbox_start_command(demo_systems(), hub)
        == f"python -m connectors.sandbox --hub-url {hub} --port-base 8600"
    )
    for position, slug in enumerate(["crm", "accounting", "inventory", "hr", "payments"], start=1):
        System.objects.filter(slug=slug).update(base_url=f"http://127.0.0.1:{8100 + position}")
    assert sandbox_start_command(demo_systems(), hub) == f"python -m connectors.sandbox --hub-url {hub}"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refusal_from_the_sandbox_is_said_with_its_answer(demo):
    fault(demo, "crm", mode="401", count=1)
    with pytest.raises(
        DemoActionError, match=r"POST http://.+/deals was answered 401: .*invalid credentials"
    ):
        demo_action_run(system=system("crm"), action_name="win-deal")
    assert records(demo, "crm", "deals") == []
