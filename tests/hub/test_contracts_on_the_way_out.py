"""Contracts on the way out, proved against a vendor that enforces its own OpenAPI document (a
CRM contacts API like HubSpot's): a model imported from the document's create operation, a
mapping, a delivery; a value that breaks the contract is dead-lettered naming the rule, with no
call reaching the vendor; the vendor's next document adds a required field: re-imported, the hub
refuses before sending and names the field, nothing is lost, and once the mapping fills it a
replay delivers exactly once."""

import json

import pytest
import requests
from django.urls import reverse

from connectors.models import System
from dlq.models import DeadLetter
from dlq.services import dead_letter_replay
from hub.models import Delivery, DeliveryStatus, RecordLink
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel
from tests.crm_vendor import CONTACTS, CrmVendor
from tests.factories import flow_with_mapping, model_with_fields
from tests.sandbox_helpers import drain_all, drain_on_an_event_loop

pytestmark = pytest.mark.django_db(transaction=True)

CREATE = f"POST {CONTACTS}"
RULES = [
    {"target": "properties.email", "source": "mail"},
    {"target": "properties.firstname", "source": "first"},
    {"target": "properties.lifecyclestage", "constant": "lead"},
]


@pytest.fixture
def vendor():
    with CrmVendor() as server:
        yield server


@pytest.fixture
def crm(vendor):
    return System.objects.create(name="CRM", slug="crm", base_url=vendor.url, read_timeout=2.0)


def signed_up(shop, n: int, **person) -> None:
    record = {"id": f"p{n}", "mail": f"p{n}@example.com", "first": f"Ann{n}", "org": "Acme", **person}
    events_store([IncomingEvent(shop, "person.created", f"evt-{n}", record)])


def imported_by_operation(client, admin, crm, vendor) -> DataModel:
    """The admin's way: the new-model page fetches the document from the CRM, lists its
    operations, and the create operation sets the fields, the path and where the id comes back."""
    client.force_login(admin)
    page = reverse("mappings-model-add")
    read = client.post(
        page, {"action": "read", "system": crm.pk, "source": "openapi", "openapi_path": "/openapi.json"}
    )
    assert f"{CREATE} — Create a contact" in read.text  # the operations are listed by what they do
    chosen = client.post(
        page,
        {
            "action": "read",
            "system": crm.pk,
            "source": "openapi",
            "openapi_text": json.dumps(vendor.document),
            "operation": CREATE,
        },
    )
    assert "fills in <code>id</code>, <code>createdAt</code>" in chosen.text
    rows = [
        ("properties", "object", True),
        ("properties.email", "string", True),
        ("properties.firstname", "string", False),
        ("properties.lastname", "string", False),
        ("properties.lifecyclestage", "string", False),
    ]  # the answer-only fields (id, createdAt…) removed: saving does not insist on an id field
    for path, _, _ in rows:
        assert f'value="{path}"' in chosen.text
    assert 'value="/crm/v3/objects/contacts"' in chosen.text  # the resource path
    form = {
        "action": "save",
        "system": crm.pk,
        "source": "openapi",
        "openapi_text": json.dumps(vendor.document),
        "operation": CREATE,
        "name": "Contact",
        "resource_path": CONTACTS,
        "id_path": "id",
        "cursor_field": "",
        "fields-TOTAL_FORMS": str(len(rows)),
        "fields-INITIAL_FORMS": "0",
    }
    for index, (path, kind, required) in enumerate(rows):
        form |= {f"fields-{index}-path": path, f"fields-{index}-type": kind}
        form |= {f"fields-{index}-required": "on"} if required else {}
    saved = client.post(page, form)
    assert saved.status_code == 302, saved.text
    return DataModel.objects.get(name="Contact")


def test_a_vendor_contract_is_kept_before_anything_is_sent(client, personas, vendor, crm):
    contact = imported_by_operation(client, personas["admin"], crm, vendor)
    assert contact.api_operation == CREATE and contact.id_path == "id"
    email = contact.fields.get(path="properties.email")
    assert (email.required, email.format) == (True, "email")
    assert contact.fields.get(path="properties.lifecyclestage").enum == ["subscriber", "lead", "customer"]

    shop = System.objects.create(name="Shop", slug="shop", base_url="")
    person = model_with_fields(shop, "Person", "/people", "id! mail first org")
    flow = flow_with_mapping(
        source_model=person, target_model=contact, rules=RULES, operation="create", name="Sign-ups"
    )

    # Mapped and delivered: the vendor, which enforces its document, creates the contact.
    signed_up(shop, 1)
    drain_all()
    assert vendor.writes() == [("POST", CONTACTS)]
    assert RecordLink.objects.get(flow=flow, source_id="p1").target_id == "501"

    # A value that breaks the contract never reaches the vendor; the letter names the rule.
    signed_up(shop, 2, mail="bob at x")
    drain_all()
    letter = DeadLetter.objects.get(record_key="p2")
    assert letter.error_class == "contract_violation"
    assert 'rule 1, properties.email ← mail, produced the text "bob at x", which is not an email address' in (
        letter.reason
    )
    assert vendor.writes() == [("POST", CONTACTS)]  # still the one call

    # The vendor's next document requires a company. Re-imported from the model's page, the hub
    # refuses before sending, names the field, and keeps the record.
    vendor.require_company()
    refreshed = client.post(
        reverse("mappings-model-refresh", args=[contact.pk]),
        {"openapi_path": "/openapi.json"},
        HTTP_HX_REQUEST="true",
    )
    assert "Added <code>properties.company</code>" in refreshed.text
    signed_up(shop, 3)
    drain_all()
    refused = DeadLetter.objects.get(record_key="p3")
    assert refused.error_class == "contract_violation"
    assert '"properties.company" is required, but no mapping rule fills it' in refused.reason
    assert vendor.writes() == [("POST", CONTACTS)]
    assert Delivery.objects.get(record_key="p3").status == DeliveryStatus.DEAD  # kept, not lost

    # The mapping fills the company; the replay delivers exactly once, and the vendor accepts it.
    mapping_version_save(
        mapping=flow.mapping, rules=[*RULES, {"target": "properties.company", "source": "org"}], actor=None
    )
    dead_letter_replay(letter=refused, actor=personas["ops"])
    drain_all()
    assert vendor.writes() == [("POST", CONTACTS)] * 2
    assert vendor.created[-1]["properties"] == {
        "email": "p3@example.com",
        "firstname": "Ann3",
        "lifecyclestage": "lead",
        "company": "Acme",
    }
    assert Delivery.objects.get(record_key="p3").status == DeliveryStatus.SUCCEEDED
    drain_all()
    assert len(vendor.writes()) == 2  # exactly once


def test_the_vendor_refuses_what_the_hub_holds_back(vendor):
    """The mock enforces its document: the bodies the hub kept back are a 422 there."""
    url = vendor.url + CONTACTS
    assert requests.post(url, json={"properties": {"email": "bob at x"}}, timeout=5).status_code == 422
    assert requests.post(url, json={"properties": {"email": "a@b.co"}}, timeout=5).status_code == 201
    vendor.require_company()
    refused = requests.post(url, json={"properties": {"email": "a@b.co"}}, timeout=5)
    assert refused.status_code == 422 and "'company' is a required property" in refused.json()["message"]


def test_the_engines_event_loop_keeps_the_contract_too(vendor, crm):
    """The engine's calls on its event loop run the same checks before sending."""
    contact = DataModel.objects.create(
        system=crm, name="Contact", resource_path=CONTACTS, api_document=vendor.document, api_operation=CREATE
    )
    contact.fields.create(path="properties.email", type="string", required=True, format="email")
    shop = System.objects.create(name="Shop", slug="shop", base_url="")
    person = model_with_fields(shop, "Person", "/people", "id! mail first org")
    flow_with_mapping(source_model=person, target_model=contact, rules=RULES, operation="create")
    signed_up(shop, 1)
    signed_up(shop, 2, mail="bob at x")
    signed_up(shop, 3, first="A" * 101)  # only the API document limits the first name's length
    drain_on_an_event_loop(3)
    assert vendor.writes() == [("POST", CONTACTS)]
    letters = {letter.record_key: letter for letter in DeadLetter.objects.all()}
    assert set(letters) == {"p2", "p3"} and {letter.error_class for letter in letters.values()} == {
        "contract_violation"
    }
    assert "which is not an email address" in letters["p2"].reason
    assert (
        "CRM's API document, rule 2, properties.firstname ← first, produced the text" in letters["p3"].reason
    )
    assert "which is longer than the 100 characters allowed" in letters["p3"].reason
