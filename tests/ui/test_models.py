"""Data model pages: the list, creating from a sample or an OpenAPI document, inline field edits."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from hub.models import AuditEntry
from mappings.models import DataModel, Field
from tests.factories import SystemFactory, field_rows, flow_with_mapping, model_with_fields, openapi_yaml

pytestmark = pytest.mark.django_db

SAMPLE = {
    "id": "deal_1",
    "amount": 12.5,
    "won": True,
    "closed_on": "2026-11-23",
    "customer": {"email": "ann@example.com"},
    "lines": [{"sku": "DESK", "quantity": 2}],
}

OPENAPI_YAML = openapi_yaml(
    "Shop",
    """
Customer:
  type: object
  required: [email]
  properties:
    email: {type: string, description: Where receipts go}
    name: {type: string}
Order:
  type: object
  required: [id, total]
  properties:
    id: {type: string}
    total: {type: number}
    placed_at: {type: string, format: date-time}
    customer: {$ref: '#/components/schemas/Customer'}
""",
)


def client_for(client, user):
    client.force_login(user)
    return client


def htmx_post(c, view: str, pk: int, data: dict | None = None):
    """What the detail page's inline forms send: an htmx POST to a view of one field or model."""
    return c.post(reverse(view, args=[pk]), data or {}, HTTP_HX_REQUEST="true")


def model_form(system, action: str, rows: list[tuple[str, str, bool]] | None = None, **inputs) -> dict:
    """The POST data of the new data model form: the action, the system, other inputs and the field rows."""
    return {"action": action, "system": system.pk, **inputs, **rows_data(rows or [])}


def rows_data(rows: list[tuple[str, str, bool]]) -> dict:
    """The POST data of the editable field table."""
    data = {
        "fields-TOTAL_FORMS": str(len(rows)),
        "fields-INITIAL_FORMS": "0",
        "fields-MIN_NUM_FORMS": "0",
        "fields-MAX_NUM_FORMS": "1000",
    }
    for index, (path, kind, required) in enumerate(rows):
        data[f"fields-{index}-path"] = path
        data[f"fields-{index}-type"] = kind
        data[f"fields-{index}-description"] = ""
        if required:
            data[f"fields-{index}-required"] = "on"
    return data


@pytest.fixture
def crm():
    return SystemFactory(name="CRM", slug="crm")


@pytest.fixture
def deal(crm):
    return model_with_fields(
        crm,
        "Deal",
        "/deals",
        "id! amount:number customer.email",
        sample={"id": "d1", "amount": 3, "customer": {"email": "a@b.c"}},
    )


# --- who may do what ------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "ops", "auditor"])
def test_it_shows_the_models_list_to_every_role(client, personas, persona, deal):
    response = client_for(client, personas[persona]).get(reverse("mappings-models"))
    assert response.status_code == 200
    assert "Deal" in response.text
    assert ("New data model" in response.text) is (persona == "admin")


def test_it_refuses_the_models_list_to_an_outsider_and_redirects_anonymous(client, personas):
    assert client.get(reverse("mappings-models")).status_code == 302
    assert client_for(client, personas["outsider"]).get(reverse("mappings-models")).status_code == 403


@pytest.mark.parametrize("persona", ["ops", "auditor"])
def test_it_lets_readers_see_a_model_but_not_change_it(client, personas, persona, deal):
    c = client_for(client, personas[persona])
    page = c.get(reverse("mappings-model-detail", args=[deal.pk]))
    assert page.status_code == 200
    assert "customer.email" in page.text
    assert "Remove field" not in page.text
    field = deal.fields.get(path="amount")
    assert c.get(reverse("mappings-model-add")).status_code == 403
    assert c.post(reverse("mappings-model-add"), {"action": "read"}).status_code == 403
    assert c.post(reverse("mappings-field-update", args=[field.pk]), {"type": "string"}).status_code == 403
    assert c.post(reverse("mappings-field-remove", args=[field.pk])).status_code == 403
    assert c.post(reverse("mappings-field-add", args=[deal.pk]), {"new-path": "x"}).status_code == 403
    assert c.post(reverse("mappings-model-edit", args=[deal.pk]), {"name": "X"}).status_code == 403
    assert c.post(reverse("mappings-model-delete", args=[deal.pk])).status_code == 403
    field.refresh_from_db()
    assert field.type == "number"
    assert DataModel.objects.filter(pk=deal.pk).exists()


def test_it_shows_an_empty_state_for_a_system_without_models(client, personas, crm):
    response = client_for(client, personas["admin"]).get(reverse("mappings-models"))
    assert (
        "This system has no data models yet: fetch a record from it, or paste a sample, to create one"
        in response.text
    )
    assert f"{reverse('mappings-model-add')}?system={crm.pk}" in response.text


# --- creating from a sample -----------------------------------------------------------------------


def test_it_reads_fields_from_a_sample_and_creates_the_model_as_edited(client, personas, crm):
    c = client_for(client, personas["admin"])
    page = c.get(reverse("mappings-model-add"), {"system": crm.pk})
    assert page.status_code == 200
    sample = {"source": "sample", "sample": json.dumps(SAMPLE)}
    read = c.post(reverse("mappings-model-add"), model_form(crm, "read", **sample))
    assert read.status_code == 200
    for path in ("customer.email", "lines[].sku", "lines[].quantity", "closed_on"):
        assert f'value="{path}"' in read.text
    assert "Read 9 fields" in read.text
    assert not DataModel.objects.filter(name="Deal").exists()  # nothing saved before the admin says so

    # The admin fixes a type, marks two fields required, drops one and adds one, then saves.
    rows = field_rows(
        "id! amount:number! closed_on:date customer.email lines:array lines[].sku lines[].quantity:number owner"
    )
    form = model_form(
        crm, "save", rows, **sample, name="Deal", resource_path="deals", id_path="id", cursor_field=""
    )
    saved = c.post(reverse("mappings-model-add"), form)
    model = DataModel.objects.get(system=crm, name="Deal")
    assert saved.status_code == 302
    assert saved["Location"] == reverse("mappings-model-detail", args=[model.pk])
    assert model.resource_path == "/deals"
    assert model.sample == SAMPLE
    assert [(f.path, f.type, f.required) for f in model.fields.all()] == rows
    entry = AuditEntry.objects.get(verb="create", target_type="datamodel")
    assert entry.actor == personas["admin"]
    assert entry.diff["fields"][0] == {"path": "id", "type": "string", "required": True}


def test_it_adds_and_removes_rows_of_the_field_table_without_losing_what_was_typed(client, personas, crm):
    c = client_for(client, personas["admin"])
    base = {"system": crm.pk, "source": "sample", "sample": "{}", "name": "Typed name"}
    rows = [("id", "string", True), ("email", "string", False)]
    added = c.post(reverse("mappings-model-add"), {**base, "action": "add_row", **rows_data(rows)})
    assert added.text.count('aria-label="Field path, row') == 3
    assert 'value="Typed name"' in added.text
    removed = c.post(reverse("mappings-model-add"), {**base, "action": "remove:0", **rows_data(rows)})
    assert removed.text.count('aria-label="Field path, row') == 1
    assert 'name="fields-0-path" value="email"' in removed.text


def test_it_creates_a_model_from_fields_typed_by_hand(client, personas, crm):
    rows = field_rows("id:integer! text")
    form = model_form(crm, "save", rows, source="sample", sample="", name="Note", id_path="id")
    response = client_for(client, personas["admin"]).post(reverse("mappings-model-add"), form)
    assert response.status_code == 302
    model = DataModel.objects.get(name="Note")
    assert model.sample is None
    assert list(model.fields.values_list("path", flat=True)) == ["id", "text"]


def test_it_answers_htmx_with_the_form_alone_and_redirects_after_saving(client, personas, crm):
    c = client_for(client, personas["admin"])
    sample = {"source": "sample", "sample": '{"id": 1}'}
    read = c.post(reverse("mappings-model-add"), model_form(crm, "read", **sample), HTTP_HX_REQUEST="true")
    assert read.text.lstrip().startswith('<form id="model-form"')
    form = model_form(crm, "save", field_rows("id:integer!"), **sample, name="Thing", id_path="id")
    saved = c.post(reverse("mappings-model-add"), form, HTTP_HX_REQUEST="true")
    assert saved["HX-Redirect"] == reverse(
        "mappings-model-detail", args=[DataModel.objects.get(name="Thing").pk]
    )


@pytest.mark.parametrize(
    "sample, message",
    [
        (
            '{\n  "id": 1,\n  "name": "x"\n  "email": "y"\n}',
            "line 4 column 3: Expecting &#x27;,&#x27; delimiter",
        ),
        ("[1, 2]", "not a list"),
        ("", "Paste a sample record in JSON"),
        ('"just text"', "a JSON object"),
        ("{}", "This record has no fields"),
    ],
)
def test_it_explains_a_sample_it_cannot_read(client, personas, crm, sample, message):
    response = client_for(client, personas["admin"]).post(
        reverse("mappings-model-add"), model_form(crm, "read", source="sample", sample=sample)
    )
    assert response.status_code == 200
    assert message in response.text
    assert 'class="field-error' in response.text


def test_it_refuses_to_save_without_fields_a_name_or_a_known_id_field(client, personas, crm):
    model_with_fields(crm, "Deal", "/deals", "id!")
    c = client_for(client, personas["admin"])
    base = {"action": "save", "system": crm.pk, "source": "sample", "sample": '{"id": 1}', "id_path": "id"}
    no_fields = c.post(reverse("mappings-model-add"), {**base, "name": "Other", **rows_data([])})
    assert "A data model needs at least one field" in no_fields.text
    clash = c.post(
        reverse("mappings-model-add"), {**base, "name": "deal", **rows_data([("id", "string", True)])}
    )
    assert "CRM already has a data model called" in clash.text
    bad_id = c.post(
        reverse("mappings-model-add"),
        {
            **base,
            "name": "Other",
            "id_path": "uuid",
            **rows_data([("id", "string", True), ("id", "string", False)]),
        },
    )
    assert "is listed twice" in bad_id.text
    bad_path = c.post(
        reverse("mappings-model-add"),
        {**base, "name": "Other", "id_path": "uuid", **rows_data([("id", "string", True)])},
    )
    assert "&quot;uuid&quot; is not one of the fields of this data model." in bad_path.text
    broken = c.post(
        reverse("mappings-model-add"), {**base, "name": "Other", **rows_data([("a..b", "string", True)])}
    )
    assert "is not a valid path" in broken.text
    assert DataModel.objects.count() == 1


# --- creating from an OpenAPI document ------------------------------------------------------------


def test_it_imports_a_schema_from_an_uploaded_openapi_document(client, personas, crm):
    c = client_for(client, personas["admin"])
    upload = SimpleUploadedFile("shop.yaml", OPENAPI_YAML.encode(), content_type="application/yaml")
    first = c.post(
        reverse("mappings-model-add"), model_form(crm, "read", source="openapi", openapi_file=upload)
    )
    assert "Choose what this data model is for" in first.text
    assert '<option value="schema:Order">Order</option>' in first.text  # a document with no operations
    assert 'value="placed_at"' not in first.text  # no schema chosen yet
    assert "components:" in first.text  # the uploaded document stays on the page as text

    document = {"source": "openapi", "openapi_text": OPENAPI_YAML, "schema_name": "Order"}
    read = c.post(reverse("mappings-model-add"), model_form(crm, "read", **document))
    for path in ("placed_at", "customer.email", "customer.name"):
        assert f'value="{path}"' in read.text
    assert 'value="Order"' in read.text  # the schema name is offered as the model's name

    rows = field_rows("id! total:number! placed_at:datetime customer:object customer.email!")
    c.post(
        reverse("mappings-model-add"), model_form(crm, "save", rows, **document, name="Order", id_path="id")
    )
    model = DataModel.objects.get(name="Order")
    assert model.sample is None
    assert [(f.path, f.type, f.required) for f in model.fields.all()] == rows


@pytest.mark.parametrize(
    "document, schema, field, message",
    [
        (
            "openapi: 3.0.0\ncomponents:\n  schemas:\n    A: {type: object\n",
            "A",
            "openapi_text",
            "This is not valid YAML: line 5 column 1",
        ),
        (
            '{"openapi": "3.0.0",\n "components": }',
            "A",
            "openapi_text",
            "This is not valid JSON: line 2 column 16: Expecting value",
        ),
        (
            OPENAPI_YAML,
            "Invoice",
            "operation",
            "The document has no schema &quot;Invoice&quot; (it has: Customer, Order).",
        ),
        ("openapi: 3.0.0\npaths: {}\n", "A", "openapi_text", "No schemas found"),
        # Nothing uploaded or pasted: the hub asks the system itself, which is not running here.
        ("", "", "openapi_path", "The hub could not connect to CRM at http://127.0.0.1:9."),
    ],
)
def test_it_explains_a_document_it_cannot_use(client, personas, crm, document, schema, field, message):
    form = model_form(crm, "read", source="openapi", openapi_text=document, schema_name=schema)
    response = client_for(client, personas["admin"]).post(reverse("mappings-model-add"), form)
    assert response.status_code == 200
    assert message in response.text
    assert f'id="id_{field}_error"' in response.text  # beside the field it is about


def test_it_explains_an_uploaded_file_that_is_not_text(client, personas, crm):
    upload = SimpleUploadedFile("shop.yaml", b"\xff\xfe\x00binary", content_type="application/octet-stream")
    response = client_for(client, personas["admin"]).post(
        reverse("mappings-model-add"), model_form(crm, "read", source="openapi", openapi_file=upload)
    )
    assert "The file is not text" in response.text


# --- the detail page ------------------------------------------------------------------------------


def test_it_shows_fields_sample_and_the_flows_that_use_a_model(client, personas, deal):
    target = model_with_fields(SystemFactory(name="Books"), "Invoice", "/invoices", "total:number!")
    flow = flow_with_mapping(
        source_model=deal,
        target_model=target,
        rules=[{"target": "total", "source": "amount"}],
        name="Deals to invoices",
    )
    page = client_for(client, personas["auditor"]).get(reverse("mappings-model-detail", args=[deal.pk]))
    assert "Deals to invoices" in page.text
    assert "reads Deal records from CRM" in page.text
    assert "&quot;customer&quot;" in page.text  # the sample
    assert reverse("mappings-mapper", args=[flow.mapping.pk]) in page.text


def test_it_updates_a_field_inline_and_audits_it(client, personas, deal):
    field = deal.fields.get(path="amount")
    data = {"type": "integer", "required": "on", "description": "In euros"}
    response = htmx_post(client_for(client, personas["admin"]), "mappings-field-update", field.pk, data)
    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="field-{field.pk}"')
    assert "Saved" in response.text
    field.refresh_from_db()
    assert (field.type, field.required, field.description) == ("integer", True, "In euros")
    entry = AuditEntry.objects.get(verb="update_field")
    assert entry.diff["type"] == ["number", "integer"] and entry.diff["required"] == [False, True]


def test_it_explains_an_unknown_type_beside_the_field(client, personas, deal):
    field = deal.fields.get(path="amount")
    c = client_for(client, personas["admin"])
    response = htmx_post(c, "mappings-field-update", field.pk, {"type": "money"})
    assert response.status_code == 200
    assert "Unknown type &quot;money&quot;" in response.text
    field.refresh_from_db()
    assert field.type == "number"


def test_it_adds_and_removes_fields(client, personas, deal):
    c = client_for(client, personas["admin"])
    added = htmx_post(
        c, "mappings-field-add", deal.pk, {"new-path": "stage", "new-type": "string", "new-required": "on"}
    )
    assert added.text.lstrip().startswith('<section id="fields"')
    assert Field.objects.get(model=deal, path="stage").required
    duplicate = htmx_post(c, "mappings-field-add", deal.pk, {"new-path": "stage", "new-type": "string"})
    assert "The model already has a field &quot;stage&quot;." in duplicate.text
    stage = Field.objects.get(model=deal, path="stage")
    removed = htmx_post(c, "mappings-field-remove", stage.pk)
    assert "Removed the field" in removed.text
    assert not Field.objects.filter(model=deal, path="stage").exists()
    assert list(AuditEntry.objects.filter(target_type="datamodel").values_list("verb", flat=True)) == [
        "remove_field",
        "add_field",
    ]


def test_it_edits_settings_and_replaces_the_sample(client, personas, deal):
    c = client_for(client, personas["admin"])
    bad = htmx_post(
        c, "mappings-model-edit", deal.pk, {"name": "Deal", "id_path": "nope", "resource_path": "/deals"}
    )
    assert "&quot;nope&quot; is not one of the fields of this data model." in bad.text
    renamed = {"name": "Opportunity", "id_path": "id", "resource_path": "/opportunities", "cursor_field": ""}
    good = htmx_post(c, "mappings-model-edit", deal.pk, renamed)
    assert good["HX-Redirect"] == reverse("mappings-model-detail", args=[deal.pk])
    deal.refresh_from_db()
    assert (deal.name, deal.resource_path) == ("Opportunity", "/opportunities")

    broken = htmx_post(c, "mappings-model-sample", deal.pk, {"sample": "{oops"})
    assert "line 1 column 2" in broken.text
    sample = {"sample": '{"id": "d2", "stage": "won", "amount": 1}', "add_new_fields": "on"}
    replaced = htmx_post(c, "mappings-model-sample", deal.pk, sample)
    assert "Added 1 field from the new sample" in replaced.text
    deal.refresh_from_db()
    assert deal.sample["stage"] == "won"
    assert deal.fields.filter(path="stage", type="string").exists()


def test_it_deletes_only_an_unused_model(client, personas, deal):
    c = client_for(client, personas["admin"])
    target = model_with_fields(SystemFactory(), "Invoice", "/invoices", "total:number!")
    flow_with_mapping(source_model=deal, target_model=target, rules=[{"target": "total", "source": "amount"}])
    refused = c.post(reverse("mappings-model-delete", args=[deal.pk]), follow=True)
    assert "cannot be deleted" in refused.text
    assert DataModel.objects.filter(pk=deal.pk).exists()
    spare = model_with_fields(deal.system, "Spare", "/spare", "id!")
    c.post(reverse("mappings-model-delete", args=[spare.pk]))
    assert not DataModel.objects.filter(pk=spare.pk).exists()
    assert AuditEntry.objects.filter(verb="delete", target_id=str(spare.pk)).exists()


def test_it_answers_404_for_a_model_that_does_not_exist(client, personas):
    assert (
        client_for(client, personas["admin"]).get(reverse("mappings-model-detail", args=[999])).status_code
        == 404
    )


# --- speed ----------------------------------------------------------------------------------------


def test_it_lists_many_models_with_a_fixed_number_of_queries(client, personas, django_assert_max_num_queries):
    for number in range(6):
        system = SystemFactory()
        source = model_with_fields(
            system, f"Source {number}", "/a", {"id": ("string", True), "x": ("string", False)}
        )
        target = model_with_fields(system, f"Target {number}", "/b", {"id": ("string", True)})
        flow_with_mapping(source_model=source, target_model=target, rules=[{"target": "id", "source": "id"}])
    c = client_for(client, personas["auditor"])
    with django_assert_max_num_queries(6):
        response = c.get(reverse("mappings-models"))
    assert response.text.count("Open the mapper") == 6


def test_it_shows_a_model_with_a_fixed_number_of_queries(
    client, personas, deal, django_assert_max_num_queries
):
    for number in range(4):
        target = model_with_fields(SystemFactory(), f"T{number}", "/t", {"id": ("string", True)})
        flow_with_mapping(source_model=deal, target_model=target, rules=[{"target": "id", "source": "id"}])
    c = client_for(client, personas["admin"])
    with django_assert_max_num_queries(7):
        response = c.get(reverse("mappings-model-detail", args=[deal.pk]))
    assert response.status_code == 200


@pytest.mark.django_db
def test_it_refuses_a_sample_with_a_nul_character_with_a_form_error():
    from django import forms as django_forms

    from hub.ui.forms.datamodels import parse_json_object

    with pytest.raises(django_forms.ValidationError) as caught:
        parse_json_object('{"name": "a\\u0000b"}')
    assert "NUL character" in str(caught.value)


def test_it_shows_and_edits_a_field_unit_and_guesses_cents_for_whole_number_money(client, personas):
    from hub.services.datamodels import data_model_create
    from mappings.schema import infer_fields

    payments = SystemFactory(name="Payments", slug="payments")
    sample = {"id": "ch_1", "amount": 125050, "currency": "eur", "fee": 1.5}
    charge = data_model_create(system=payments, name="Charge", resource_path="/charges", id_path="id",
                               cursor_field="", fields=infer_fields(sample), sample=sample,
                               actor=personas["admin"])  # fmt: skip
    units = dict(charge.fields.values_list("path", "unit"))
    assert units == {"id": "", "amount": "in cents (minor units)", "currency": "", "fee": ""}

    client.force_login(personas["admin"])
    page = client.get(reverse("mappings-model-detail", args=[charge.pk])).content.decode()
    assert '<code class="path">amount</code> <span class="field-unit">in cents (minor units)</span>' in page
    fee = charge.fields.get(path="fee")
    response = client.post(reverse("mappings-field-update", args=[fee.pk]), {"type": "number", "unit": "in euros"},
                           headers={"HX-Request": "true"})  # fmt: skip
    assert response.status_code == 200 and 'value="in euros"' in response.content.decode()
    fee.refresh_from_db()
    assert fee.unit == "in euros"
