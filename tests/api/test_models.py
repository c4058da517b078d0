"""Data models and their fields through the API: the Data models pages' checks and audit."""

import pytest

from mappings.models import DataModel, Field
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm():
    return SystemFactory(name="CRM", slug="crm")


def test_it_creates_a_model_from_a_field_list_and_reads_it_back(as_, crm):
    body = {
        "system": "crm", "name": "Customer", "resource_path": "/customers",
        "fields": [{"path": "id", "type": "integer", "required": True}, {"path": "email"}],
    }  # fmt: skip
    response = as_("admin").post("/api/v1/models/", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert [(f["path"], f["type"], f["required"]) for f in created["fields"]] == [
        ("id", "integer", True), ("email", "string", False),
    ]  # fmt: skip
    assert as_("auditor").get(f"/api/v1/models/{created['id']}/").json()["name"] == "Customer"
    assert [m["name"] for m in as_("ops").get("/api/v1/models/?system=crm").json()["results"]] == ["Customer"]
    assert last_audit("create").diff["fields"][0] == {"path": "id", "type": "integer", "required": True}


def test_it_reads_the_fields_from_a_sample(as_, crm):
    body = {"system": "crm", "name": "Deal", "sample": {"id": 7, "amount": 12.5, "won": True}}
    response = as_("admin").post("/api/v1/models/", body, format="json")
    assert response.status_code == 201, response.json()
    assert {f["path"]: f["type"] for f in response.json()["fields"]} == {
        "id": "integer", "amount": "number", "won": "boolean",
    }  # fmt: skip
    assert DataModel.objects.get().sample == {"id": 7, "amount": 12.5, "won": True}


@pytest.mark.parametrize(
    "body",
    [
        {"system": "crm", "name": "X"},  # no fields, no sample
        {"system": "nowhere", "name": "X", "fields": [{"path": "id"}]},
        {"system": "crm", "name": "X", "fields": [{"path": "id", "type": "colour"}]},
        {"system": "crm", "name": "X", "fields": [{"path": "a..b"}]},
        {"system": "crm", "name": "X", "fields": [{"path": "id"}, {"path": "id"}]},
        {"system": "crm", "name": "X", "fields": [{"path": "id"}], "lookup_field": "external_id"},
        {"system": "crm", "name": 5, "fields": [{"path": "id"}]},
        {"system": "crm", "name": "X", "fields": [{"path": "id", "required": "yes"}]},
    ],
)
def test_bad_models_are_400s_with_the_reason(as_, crm, body):
    response = as_("admin").post("/api/v1/models/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]
    assert not DataModel.objects.exists()


def test_it_changes_a_model_and_its_fields(as_, crm):
    model = model_with_fields(crm, "Customer", "/customers", "id! email name")
    api = as_("admin")
    response = api.patch(f"/api/v1/models/{model.pk}/", {"resource_path": "/v2/customers"}, format="json")
    assert response.status_code == 200 and response.json()["resource_path"] == "/v2/customers"
    assert last_audit("update").diff == {"resource_path": ["/customers", "/v2/customers"]}

    added = api.post(f"/api/v1/models/{model.pk}/fields/", {"path": "phone", "unit": ""}, format="json")
    assert added.status_code == 201 and added.json()["path"] == "phone"
    assert last_audit("add_field").diff["field"]["path"] == "phone"
    again = api.post(f"/api/v1/models/{model.pk}/fields/", {"path": "phone"}, format="json")
    assert again.status_code == 400 and "already has a field" in again.json()["error"]

    email = Field.objects.get(model=model, path="email")
    changed = api.patch(f"/api/v1/fields/{email.pk}/", {"required": True, "type": "string"}, format="json")
    assert changed.status_code == 200 and changed.json()["required"] is True
    assert last_audit("update_field").diff["required"] == [False, True]

    order = api.post(f"/api/v1/models/{model.pk}/field-order/", {"paths": ["phone", "email"]}, format="json")
    assert [f["path"] for f in order.json()["fields"]] == ["phone", "email", "id", "name"]
    assert last_audit("reorder_fields")
    unknown = api.post(f"/api/v1/models/{model.pk}/field-order/", {"paths": ["nope"]}, format="json")
    assert unknown.status_code == 400

    assert api.delete(f"/api/v1/fields/{email.pk}/").status_code == 204
    assert not Field.objects.filter(pk=email.pk).exists()
    assert last_audit("remove_field").diff["field"]["path"] == "email"


def test_the_lookup_field_cannot_be_removed_and_a_used_model_cannot_be_deleted(as_, crm):
    model = model_with_fields(
        crm, "Customer", "/customers", "id! ext", lookup_field="ext", lookup_param="ext"
    )
    ext = Field.objects.get(model=model, path="ext")
    assert as_("admin").delete(f"/api/v1/fields/{ext.pk}/").status_code == 409
    target = model_with_fields(SystemFactory(), "Contact", "/contacts", "ref!")
    flow_with_mapping(source_model=model, target_model=target, rules=[{"target": "ref", "source": "id"}])
    response = as_("admin").delete(f"/api/v1/models/{model.pk}/")
    assert response.status_code == 409 and "still used" in response.json()["error"]
    assert as_("admin").delete(f"/api/v1/models/{target.pk + 1000}/").status_code == 404


def test_it_replaces_the_sample_and_adds_the_new_fields(as_, crm):
    model = model_with_fields(crm, "Customer", "/customers", "id!")
    body = {"sample": {"id": 1, "vip": True}, "add_new_fields": True}
    response = as_("admin").post(f"/api/v1/models/{model.pk}/sample/", body, format="json")
    assert response.status_code == 200 and response.json()["added_fields"] == ["vip"]
    assert last_audit("update_sample").diff == {"added_fields": ["vip"]}
    both = as_("admin").post(
        f"/api/v1/models/{model.pk}/sample/", {"sample": {}, "fetch": True}, format="json"
    )
    assert both.status_code == 400


def test_roles_match_the_data_models_pages(as_, crm):
    model = model_with_fields(crm, "Customer", "/customers", "id!")
    field = model.fields.get()
    reads = {"anonymous": 401, "admin": 200, "ops": 200, "auditor": 200, "publisher": 403, "outsider": 403}
    writes = {"anonymous": 401, "admin": 200, "ops": 403, "auditor": 403, "publisher": 403, "outsider": 403}
    assert statuses(as_, "get", f"/api/v1/models/{model.pk}/") == reads
    assert statuses(as_, "get", f"/api/v1/fields/{field.pk}/") == reads
    assert statuses(as_, "patch", f"/api/v1/models/{model.pk}/", {"description": "people"}) == writes
    assert statuses(as_, "patch", f"/api/v1/fields/{field.pk}/", {"description": "the id"}) == writes


def test_field_checks_are_set_read_and_refused_like_on_the_model_page(as_, crm):
    api = as_("admin")
    body = {
        "system": "crm", "name": "Contact", "resource_path": "/contacts",
        "fields": [{"path": "email", "format": "email", "max_length": 120}, {"path": "stage"}],
    }  # fmt: skip
    created = api.post("/api/v1/models/", body, format="json").json()
    assert (created["fields"][0]["format"], created["fields"][0]["max_length"]) == ("email", 120)
    added = api.post(
        f"/api/v1/models/{created['id']}/fields/",
        {"path": "tier", "enum": ["gold", "silver", 3], "min_length": 1},
        format="json",
    )
    assert added.status_code == 201, added.json()
    assert Field.objects.get(path="tier").enum == ["gold", "silver", 3]
    stage = Field.objects.get(path="stage")
    changed = api.patch(f"/api/v1/fields/{stage.pk}/", {"enum": ["open", "won"]}, format="json")
    assert changed.status_code == 200 and changed.json()["enum"] == ["open", "won"]
    assert last_audit("update_field").diff["enum"] == [[], ["open", "won"]]
    for bad in ({"format": "phone"}, {"enum": [{"a": 1}]}, {"min_length": 9, "max_length": 2}):
        refused = api.patch(f"/api/v1/fields/{stage.pk}/", bad, format="json")
        assert refused.status_code == 400, (bad, refused.json())
