"""The pages around a target's contract: a model imported from an operation of an OpenAPI
document, its fields' checks edited inline, updating it from the vendor's new document, and the
mapper's preview giving the verdict a delivery would get."""

import copy
import json

import pytest
from django.urls import reverse

from hub.models import AuditEntry
from hub.pipeline.attempt import contract_verdict
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel, Mapping
from mappings.schema import fields_from_openapi_operation
from tests.crm_vendor import CONTACTS, DOCUMENT
from tests.factories import SystemFactory, model_with_fields

pytestmark = pytest.mark.django_db

CREATE = f"POST {CONTACTS}"


@pytest.fixture
def admin(client, personas):
    client.force_login(personas["admin"])
    return client


@pytest.fixture
def crm():
    return SystemFactory(name="CRM", slug="crm", base_url="http://127.0.0.1:9")


@pytest.fixture
def contact(crm):
    """The Contact model as importing the create operation leaves it."""
    model = DataModel.objects.create(
        system=crm, name="Contact", resource_path=CONTACTS, api_document=DOCUMENT, api_operation=CREATE
    )
    for position, spec in enumerate(fields_from_openapi_operation(DOCUMENT, CREATE).fields):
        model.fields.create(
            path=spec.path, type=spec.type, required=spec.required, format=spec.format,
            enum=list(spec.enum), max_length=spec.max_length, position=position,
        )  # fmt: skip
    return model


def read(admin, crm, document, **inputs):
    data = {"action": "read", "system": crm.pk, "source": "openapi", "openapi_text": json.dumps(document)}
    return admin.post(reverse("mappings-model-add"), data | inputs)


def test_it_offers_the_operations_writes_first_and_the_schemas_after_them(admin, crm):
    page = read(admin, crm, DOCUMENT)
    assert "Choose what this data model is for" in page.text
    text = page.text
    assert text.index(f"{CREATE} — Create a contact") < text.index(f"GET {CONTACTS} — List contacts")
    assert f'<option value="PATCH {CONTACTS}/{{contactId}}">' in text
    assert '<option value="schema:Contact">Contact</option>' in text  # the older way, still there


def test_an_operation_below_the_documents_server_path_keeps_it_in_the_resource_path(admin, crm):
    document = copy.deepcopy(DOCUMENT)
    document["servers"] = [{"url": "https://api.crm.example/v3"}]
    page = read(admin, crm, document, operation=f"PATCH {CONTACTS}/{{contactId}}")
    assert f'value="/v3{CONTACTS}"' in page.text  # without the {contactId}, after the server's /v3
    assert "from <strong>PATCH" in page.text


def test_it_explains_an_operation_the_document_does_not_have(admin, crm):
    page = read(admin, crm, DOCUMENT, operation="POST /deals")
    assert "The document has no operation &quot;POST /deals&quot;; choose one from the list." in page.text
    assert 'id="id_operation_error"' in page.text


def test_it_edits_a_fields_checks_inline_and_audits_them(admin, contact):
    field = contact.fields.get(path="properties.firstname")
    url = reverse("mappings-field-update", args=[field.pk])
    answer = admin.post(
        url, {"format": "uri", "enum": "a, b ,", "min_length": "1", "max_length": "9"}, HTTP_HX_REQUEST="true"
    )
    assert (
        "Saved" in answer.text
        and "Must be a web address (URI) · one of: a, b · 1–9 characters" in answer.text
    )
    field.refresh_from_db()
    assert (field.format, field.enum, field.min_length, field.max_length) == ("uri", ["a", "b"], 1, 9)
    entry = AuditEntry.objects.filter(verb="update_field").latest("pk")
    assert entry.diff["max_length"] == [100, 9]
    cleared = admin.post(
        url, {"format": "", "enum": "", "min_length": "", "max_length": ""}, HTTP_HX_REQUEST="true"
    )
    assert "Must be" not in cleared.text
    field.refresh_from_db()
    assert (field.format, field.enum, field.min_length, field.max_length) == ("", [], None, None)


@pytest.mark.parametrize(
    "posted, message",
    [
        ({"max_length": "ten"}, "a length is a whole number of characters, 0 or more, not &#x27;ten&#x27;"),
        ({"min_length": "9", "max_length": "2"}, "the shortest length (9) is more than the longest (2)"),
        ({"format": "phone"}, "unknown format &quot;phone&quot;"),
    ],
)
def test_it_explains_a_check_it_cannot_keep(admin, contact, posted, message):
    field = contact.fields.get(path="properties.firstname")
    answer = admin.post(reverse("mappings-field-update", args=[field.pk]), posted, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and message in answer.text.lower()
    field.refresh_from_db()
    assert field.max_length == 100


def test_it_updates_a_model_from_a_pasted_new_document_and_says_what_changed(admin, contact):
    document = copy.deepcopy(DOCUMENT)
    properties = document["components"]["schemas"]["ContactProperties"]
    properties["required"] = ["email", "company"]
    properties["properties"]["company"] = {"type": "string"}
    del properties["properties"]["lastname"]
    answer = admin.post(
        reverse("mappings-model-refresh", args=[contact.pk]),
        {"openapi_text": json.dumps(document)},
        HTTP_HX_REQUEST="true",
    )
    assert "Added <code>properties.company</code>" in answer.text
    assert "Removed <code>properties.lastname</code>" in answer.text
    assert contact.fields.get(path="properties.company").required
    contact.refresh_from_db()
    assert contact.api_document["components"]["schemas"]["ContactProperties"]["required"] == [
        "email",
        "company",
    ]
    assert AuditEntry.objects.filter(verb="refresh_from_api_document").count() == 1


def test_it_explains_why_a_model_cannot_be_updated_from_a_document(admin, crm, contact):
    sample_model = model_with_fields(crm, "Deal", "/deals", "id!")
    refused = admin.post(
        reverse("mappings-model-refresh", args=[sample_model.pk]),
        {"openapi_text": "{}"},
        HTTP_HX_REQUEST="true",
    )
    assert "Deal was not imported from an API document." in refused.text
    unreadable = admin.post(
        reverse("mappings-model-refresh", args=[contact.pk]),
        {"openapi_text": '{"openapi": '},
        HTTP_HX_REQUEST="true",
    )
    assert "This is not valid JSON" in unreadable.text
    gone = copy.deepcopy(DOCUMENT)
    del gone["paths"][CONTACTS]["post"]
    missing = admin.post(
        reverse("mappings-model-refresh", args=[contact.pk]),
        {"openapi_text": json.dumps(gone)},
        HTTP_HX_REQUEST="true",
    )
    assert (
        f"The new document cannot be used: the document has no operation &quot;{CREATE}&quot;" in missing.text
    )
    assert contact.fields.count() == 9  # nothing changed


def test_the_mapper_preview_gives_the_verdict_a_delivery_would_get(admin, crm, contact, personas):
    person = model_with_fields(
        SystemFactory(name="Shop"), "Person", "/people", "id! mail", sample={"id": "p1", "mail": "bob at x"}
    )
    mapping = Mapping.objects.create(name="People", source_model=person, target_model=contact)
    rules = [
        {"target": "properties.email", "source": "mail"},
        {"target": "properties.lifecyclestage", "constant": "gold"},
    ]
    mapping_version_save(mapping=mapping, rules=rules, actor=None)
    answer = admin.post(
        reverse("mappings-preview", args=[mapping.pk]),
        json.dumps({"rules": rules}),
        content_type="application/json",
    ).json()
    verdict = answer["contract"]
    assert verdict["against"] == "CRM"
    assert [(v["index"], v["problem"]) for v in verdict["violations"]] == [
        (0, 'produced the text "bob at x", which is not an email address'),
        (1, 'produced the text "gold", which is not one of the allowed values (subscriber, lead, customer)'),
    ]
    delivered = contract_verdict(model=contact, mapped=answer["output"], rules=rules)
    assert [v["message"] for v in verdict["violations"]] == [v.message for v in delivered]
    fixed = [{"target": "properties.email", "constant": "ann@example.com"}]
    clean = admin.post(
        reverse("mappings-preview", args=[mapping.pk]),
        json.dumps({"rules": fixed}),
        content_type="application/json",
    ).json()
    assert clean["contract"]["violations"] == []


def test_editing_another_part_of_a_row_keeps_allowed_values_that_are_not_text(admin, contact):
    field = contact.fields.get(path="properties.lifecyclestage")
    field.enum = ["lead", None, 3]
    field.save()
    row = {
        "description": "Where they are",
        "enum": "lead, None, 3",
        "format": "",
        "min_length": "",
        "max_length": "",
    }
    admin.post(reverse("mappings-field-update", args=[field.pk]), row, HTTP_HX_REQUEST="true")
    field.refresh_from_db()
    assert (field.description, field.enum) == ("Where they are", ["lead", None, 3])
