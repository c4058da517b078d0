"""The Demo systems page and a flow's "Send a test event" button: who may see and do what, and
what each says, with the sandbox running, away, or not part of this install at all."""

import pytest
from django.urls import reverse

from connectors.models import System
from connectors.sandbox import DEMO_CREDENTIALS
from hub.models import AuditEntry, Delivery, Event, Flow
from tests.sandbox_helpers import demo_on_sandbox, drain_all

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HX-Request": "true"}
PAGE = "/demo/"


def signed_in(client, personas, role: str):
    client.force_login(personas[role])
    return client


@pytest.fixture
def demo(fresh_sandbox, live_server):
    demo_on_sandbox(fresh_sandbox, live_server.url)
    return fresh_sandbox


def test_the_page_is_in_the_navigation_for_admins_and_ops_only(client, personas, demo):
    for role, shown in (("admin", True), ("ops", True), ("auditor", False)):
        home = signed_in(client, personas, role).get(reverse("home")).content.decode()
        assert (f'href="{PAGE}"' in home) is shown, role


def test_an_auditor_may_not_open_it_and_is_told_which_role_is_needed(client, personas, demo):
    refused = signed_in(client, personas, "auditor").get(PAGE)
    assert refused.status_code == 403
    assert "needs the Admin or Ops role" in refused.content.decode()


def test_admins_see_each_system_up_with_its_actions_and_credentials_on_a_click(client, personas, demo):
    page = signed_in(client, personas, "admin").get(PAGE).content.decode()
    for name in ("CRM", "Accounting", "Inventory", "HR", "Payments"):
        assert f">{name}</a></h2>" in page
    assert page.count(">Up</span>") == 5
    assert demo.url("crm") in page and "Sales (CRM)" in page
    for label in ("Win a deal", "Charge a card", "Hire a person", "Break it for a minute"):
        assert label in page
    assert page.count("Show credentials") == 5
    assert DEMO_CREDENTIALS["crm"]["api_key"] not in page  # only on a click
    shown = client.get(reverse("hub-demo-credentials", args=["crm"]), headers=HTMX).content.decode()
    assert DEMO_CREDENTIALS["crm"]["api_key"] in shown and "API key (X-Api-Key header)" in shown


def test_ops_see_the_systems_but_neither_credentials_nor_actions(client, personas, demo):
    client = signed_in(client, personas, "ops")
    page = client.get(PAGE).content.decode()
    assert page.count(">Up</span>") == 5
    assert "Show credentials" not in page and "Win a deal" not in page
    assert "An admin can make something happen here." in page
    assert client.get(reverse("hub-demo-credentials", args=["crm"])).status_code == 403
    refused = client.post(reverse("hub-demo-act", args=["crm"]), {"action": "win-deal"})
    assert refused.status_code == 403
    assert not Event.objects.exists()


def test_an_action_shows_what_happened_and_links_to_the_event(client, personas, demo):
    client = signed_in(client, personas, "admin")
    result = client.post(reverse("hub-demo-act", args=["payments"]), {"action": "charge-card"}, headers=HTMX)
    assert result.status_code == 200
    event = Event.objects.get(system__slug="payments", event_type="payment.succeeded")
    text = result.content.decode()
    assert f"Card charge {event.record_id} succeeded" in text
    assert reverse("hub-history-event", args=[event.pk]) in text
    assert "Payments recorded in accounting" in text  # the flow it went to
    assert "<html" not in text  # a partial, swapped in place

    broken = client.post(reverse("hub-demo-act", args=["inventory"]), {"action": "break"}, headers=HTMX)
    assert "Broken until" in broken.content.decode() and "Won deals reduce stock" in broken.content.decode()
    assert "Broken until" in client.get(PAGE).content.decode()  # the card says so too


def test_bad_or_impossible_actions_are_answered_in_words_never_a_500(client, personas, demo):
    client = signed_in(client, personas, "admin")
    missing = client.post(reverse("hub-demo-act", args=["crm"]), {}, headers=HTMX)
    assert missing.status_code == 400
    assert "Choose what should happen in CRM: one of win-deal" in missing.content.decode()
    wrong = client.post(reverse("hub-demo-act", args=["hr"]), {"action": "win-deal"}, headers=HTMX)
    assert "“Win a deal” happens in the crm sandbox, not in HR" in wrong.content.decode()
    assert client.post(reverse("hub-demo-act", args=["nowhere"]), {"action": "break"}).status_code == 404
    # Without htmx the whole page comes back, with the answer in the system's card.
    plain = client.post(reverse("hub-demo-act", args=["hr"]), {"action": "win-deal"}).content.decode()
    assert "<html" in plain and "not in HR" in plain


def test_when_the_sandbox_is_not_running_it_says_so_and_how_to_start_it(client, personas, fresh_sandbox):
    demo_on_sandbox(fresh_sandbox)
    System.objects.update(base_url="http://127.0.0.1:9")  # nothing listens there
    client = signed_in(client, personas, "admin")
    page = client.get(PAGE).content.decode()
    assert "The demo systems are not running." in page
    assert "python -m connectors.sandbox --hub-url" in page and "manage.py up" in page
    assert page.count(">Not running</span>") == 5 and "Win a deal" not in page
    failed = client.post(reverse("hub-demo-act", args=["crm"]), {"action": "win-deal"}, headers=HTMX)
    assert "Win a deal did not work: CRM is not running" in failed.content.decode()


def test_a_real_install_without_demo_systems_says_so_plainly(client, personas):
    page = signed_in(client, personas, "admin").get(PAGE).content.decode()
    assert "No demo systems here" in page and "make run" in page


def test_send_a_test_event_is_for_admins_and_answers_in_place(client, personas, fresh_sandbox):
    demo_on_sandbox(fresh_sandbox)
    flow = Flow.objects.get(name="Payments recorded in accounting")
    url = reverse("flows-test-event", args=[flow.pk])
    for role in ("auditor", "ops"):
        assert signed_in(client, personas, role).post(url, headers=HTMX).status_code == 403
        assert "Send a test event" not in client.get(reverse("flows-detail", args=[flow.pk])).content.decode()
    client = signed_in(client, personas, "admin")
    assert "Send a test event" in client.get(reverse("flows-detail", args=[flow.pk])).content.decode()
    answer = client.post(url, headers=HTMX).content.decode()
    event = Event.objects.get(origin=Event.Origin.TEST)
    assert Delivery.objects.get(event=event).flow == flow
    assert "Test event sent." in answer and "on its way to Accounting" in answer
    assert reverse("hub-history-event", args=[event.pk]) in answer
    # The answer asks again, once a second, until the delivery has ended.
    assert f"?event={event.pk}&amp;looks=1" in answer
    drain_all()
    delivered = client.get(url, {"event": event.pk, "looks": 1}, headers=HTMX).content.decode()
    assert (
        "Test event delivered." in delivered
        and 'Accounting has it as record <span class="mono">pay_' in delivered
    )
    assert "hx-get" not in delivered
    assert client.get(url, {"event": "not-an-id"}).status_code == 400
    assert (
        client.get(url, {"event": Event.objects.exclude(pk=event.pk).first() or "0" * 32}).status_code == 404
    )
    assert AuditEntry.objects.filter(verb="send_test_event", actor=personas["admin"]).count() == 1
    history = client.get(reverse("hub-history-event", args=[event.pk])).content.decode()
    assert "Test event (sent from the flow&#x27;s page)" in history
    listed = client.get(reverse("hub-history")).content.decode()
    assert listed.count(">test event</span>") == 1


def test_a_test_event_on_a_draft_says_it_waits_for_the_flow_to_be_enabled(client, personas, fresh_sandbox):
    demo_on_sandbox(fresh_sandbox)
    flow = Flow.objects.get(name="Payments recorded in accounting")
    Flow.objects.filter(pk=flow.pk).update(state="draft")
    answer = signed_in(client, personas, "admin").post(
        reverse("flows-test-event", args=[flow.pk]), headers=HTMX
    )
    text = answer.content.decode()
    assert "Test event stored, not sent yet: the flow is a draft." in text
    assert "delivered when you enable the flow" in text
