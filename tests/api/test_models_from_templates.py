"""The data models a vendor template offers, through the API as on the new-data-model page: listed
per system (admins only, as the page), and created in one step by the same service, audited."""

import pytest

from mappings.models import DataModel
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm():
    return SystemFactory(name="Our CRM", slug="our-crm", vendor_template="hubspot")


def test_it_lists_the_offered_models_and_creates_one(as_, crm):
    offers = as_("admin").get(f"/api/v1/systems/{crm.pk}/template-models/")
    assert offers.status_code == 200, offers.json()
    assert [(m["name"], m["vendor"], m["taken"]) for m in offers.json()] == [
        ("Contact", "HubSpot", False), ("Company", "HubSpot", False), ("Deal", "HubSpot", False),
    ]  # fmt: skip
    response = as_("admin").post(
        "/api/v1/models/from-template/", {"system": "our-crm", "name": "Deal"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert {f["path"]: f["type"] for f in response.json()["fields"]}["properties.amount"] == "number"
    model = DataModel.objects.get(system=crm, name="Deal")
    assert last_audit("create").target_id == str(model.pk)
    taken = as_("admin").get(f"/api/v1/systems/{crm.pk}/template-models/").json()
    assert [m["name"] for m in taken if m["taken"]] == ["Deal"]


def test_a_system_without_a_template_offers_nothing(as_):
    plain = SystemFactory(name="Plain", slug="plain")
    assert as_("admin").get(f"/api/v1/systems/{plain.pk}/template-models/").json() == []
    response = as_("admin").post(
        "/api/v1/models/from-template/", {"system": "plain", "name": "Contact"}, format="json"
    )
    assert response.status_code == 400
    assert (
        response.json()["error"]
        == "Plain was not set up from a vendor template, so it has no models to offer"
    )


@pytest.mark.parametrize(
    "body, words",
    [
        ({"system": "our-crm", "name": "Lead"}, "offers no model called “Lead”"),
        ({"system": "our-crm"}, "some fields are not valid"),
        ({"system": "our-crm", "name": 5}, "some fields are not valid"),
        ({"system": "nowhere", "name": "Deal"}, "some fields are not valid"),
    ],
)
def test_bad_input_is_a_400_in_words(as_, crm, body, words):
    response = as_("admin").post("/api/v1/models/from-template/", body, format="json")
    assert response.status_code == 400, response.json()
    assert words in response.json()["error"]
    assert not DataModel.objects.exists()


def test_a_model_there_already_is_refused(as_, crm):
    body = {"system": "our-crm", "name": "Contact"}
    assert as_("admin").post("/api/v1/models/from-template/", body, format="json").status_code == 201
    again = as_("admin").post("/api/v1/models/from-template/", body, format="json")
    assert again.status_code == 400 and "already has a data model called" in again.json()["error"]


def test_only_admins_see_and_use_the_offers(as_, crm):
    assert statuses(as_, "get", f"/api/v1/systems/{crm.pk}/template-models/") == {
        "anonymous": 401, "admin": 200, "ops": 403, "auditor": 403, "publisher": 403, "outsider": 403,
    }  # fmt: skip
    found = statuses(as_, "post", "/api/v1/models/from-template/", {"system": "our-crm", "name": "Deal"})
    assert found == {
        "anonymous": 401,
        "admin": 201,
        "ops": 403,
        "auditor": 403,
        "publisher": 403,
        "outsider": 403,
    }
    assert as_("admin").get("/api/v1/systems/999999/template-models/").status_code == 404
