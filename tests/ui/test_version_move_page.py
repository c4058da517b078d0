"""The "Move to a new API version" page: an admin goes through the steps in the browser's order
(copies, dry run, switch over, switch back), sees where the move stands, and gets a plain answer
for bad input; other roles cannot reach it."""

import pytest
from django.urls import reverse

from hub.models import AuditEntry, Delivery, DeliveryStatus, Event, VersionMove, VersionMoveState
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel, Mapping
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow():
    hr = SystemFactory(name="HR", slug="hr")
    crm = SystemFactory(name="CRM", slug="crm", api_version="v1")
    person = model_with_fields(hr, "Person", "/people", "id! email! name")
    contact = model_with_fields(crm, "Contact", "/contacts", "email! name")
    rules = [{"target": "email", "source": "email"}, {"target": "name", "source": "name"}]
    flow = flow_with_mapping(source_model=person, target_model=contact, rules=rules, operation="create")
    event = Event.objects.create(
        system=hr,
        event_type="person.added",
        idempotency_key="evt-1",
        record_id="p1",
        payload={"data": {"id": "p1", "email": "ann@example.com", "name": "Ann"}},
    )
    Delivery.objects.create(event=event, flow=flow, record_key="p1", status=DeliveryStatus.SUCCEEDED)
    return flow


def page_url(flow) -> str:
    return reverse("connectors-version", args=[flow.target_system.pk])


def test_it_guides_an_admin_from_the_copies_to_switching_back(client, personas, flow):
    client.force_login(personas["admin"])
    url = page_url(flow)
    page = client.get(url).content.decode()
    assert 'aria-current="step">Choose the new version' in page and "<strong>Contact</strong>" in page

    answer = client.post(
        url, {"to_version": "v2", "to_in": "header", "to_name": "X-Api-Version", "source": "copy"}
    )
    assert answer.status_code == 302
    move = VersionMove.objects.get()
    page = client.get(url).content.decode()
    assert 'aria-current="step">Try it on real events' in page and "Contact (v2)" in page
    system_page = client.get(reverse("connectors-detail", args=[flow.target_system.pk])).content.decode()
    assert "A move to API version v2 is prepared" in system_page
    assert "Run the dry run first" in page

    copy = DataModel.objects.get(name="Contact (v2)")
    copy.fields.filter(path="email").update(path="email_address")
    mapping = Mapping.objects.get(target_model=copy)
    rules = [{"target": "email_address", "source": "email"}, {"target": "name", "source": "name"}]
    mapping_version_save(mapping=mapping, rules=rules, actor=personas["admin"])

    dry = client.post(
        reverse("connectors-version-dry-run", args=[flow.target_system.pk, move.pk]), HTTP_HX_REQUEST="true"
    )
    html = dry.content.decode()
    assert dry.status_code == 200 and html.lstrip().startswith('<div id="version-move"')
    assert (
        '<tr class="removed"><td><code>email</code>' in html
        and '<tr class="added"><td><code>email_address</code>' in html
    )
    assert "<strong>1</strong> would be sent differently" in html and "with X-Api-Version: v2" in html

    client.post(reverse("connectors-version-switch", args=[flow.target_system.pk, move.pk]))
    flow.refresh_from_db()
    assert flow.target_model == copy
    page = client.get(url).content.decode()
    assert 'aria-current="step">Switch back if needed' in page and "Switch back to version v1" in page
    system_page = client.get(reverse("connectors-detail", args=[flow.target_system.pk])).content.decode()
    assert (
        "Switched from API version v1 to v2" in system_page and "Switch back, or remove them" in system_page
    )

    client.post(reverse("connectors-version-switch-back", args=[flow.target_system.pk, move.pk]))
    flow.refresh_from_db()
    move.refresh_from_db()
    assert flow.target_model.name == "Contact" and move.state == VersionMoveState.SWITCHED_BACK
    assert AuditEntry.objects.filter(verb="version_switch_back", actor=personas["admin"]).exists()


def test_it_answers_bad_input_in_plain_words(client, personas, flow):
    client.force_login(personas["admin"])
    url = page_url(flow)
    same = client.post(
        url, {"to_version": "v1", "to_in": "header", "to_name": "X-Api-Version", "source": "copy"}
    )
    assert same.status_code == 400 and "already uses version v1" in same.content.decode()
    nameless = client.post(url, {"to_version": "v2", "to_in": "query", "to_name": "", "source": "copy"})
    assert (
        nameless.status_code == 400
        and "query parameter that carries the version" in nameless.content.decode()
    )
    missing = client.post(url, {"to_version": "v2", "to_in": "header", "to_name": "X", "source": "document"})
    assert missing.status_code == 400 and "paste it below" in missing.content.decode()
    assert not VersionMove.objects.exists()


def test_switching_before_the_dry_run_is_refused_with_a_reason(client, personas, flow):
    client.force_login(personas["admin"])
    client.post(
        page_url(flow), {"to_version": "v2", "to_in": "header", "to_name": "X-Api-Version", "source": "copy"}
    )
    move = VersionMove.objects.get()
    answer = client.post(
        reverse("connectors-version-switch", args=[flow.target_system.pk, move.pk]), follow=True
    )
    assert "Not switched: try the dry run first" in answer.content.decode()
    flow.refresh_from_db()
    assert flow.target_model.name == "Contact"


@pytest.mark.parametrize("who", ["ops", "auditor", "outsider"])
def test_only_admins_reach_it(client, personas, flow, who):
    client.force_login(personas[who])
    assert client.get(page_url(flow)).status_code in (403, 302)
