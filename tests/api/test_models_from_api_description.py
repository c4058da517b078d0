"""A data model from an operation (or a schema) of an API description, through the API as on the
new-data-model page: pasted or fetched from the system, a preview listing the operations when
none is chosen, the model made by the data model service and audited; admins only."""

import json
from http.server import BaseHTTPRequestHandler

import pytest

from mappings.models import DataModel
from tests.api.conftest import last_audit, statuses
from tests.crm_vendor import CONTACTS, DOCUMENT
from tests.factories import SystemFactory
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/from-api-description/"
CREATE = f"POST {CONTACTS}"


@pytest.fixture
def crm():
    return SystemFactory(name="CRM", slug="crm", base_url="http://127.0.0.1:9")


def post(as_, persona="admin", **body):
    return as_(persona).post(URL, {"system": "crm", **body}, format="json")


def test_without_an_operation_it_lists_what_the_description_offers(as_, crm):
    response = post(as_, document=json.dumps(DOCUMENT))
    assert response.status_code == 200, response.json()
    offered = response.json()
    keys = [op["key"] for op in offered["operations"]]
    assert keys[0] == CREATE and f"GET {CONTACTS}" in keys  # writes first, as on the page
    assert {"key": CREATE, "summary": "Create a contact"} in offered["operations"]
    assert "Contact" in offered["schemas"]
    assert not DataModel.objects.exists()


def test_it_makes_the_model_of_an_operation_and_audits_it(as_, crm):
    response = post(as_, document=json.dumps(DOCUMENT), operation=CREATE)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["name"], created["resource_path"], created["id_path"]) == ("Contact", CONTACTS, "id")
    assert "properties.email" in {f["path"] for f in created["fields"]}
    model = DataModel.objects.get()
    assert model.api_operation == CREATE and model.api_document == DOCUMENT
    assert last_audit("create").target_id == str(model.pk)


def test_it_makes_the_model_of_a_schema_alone_with_the_names_given(as_, crm):
    response = post(
        as_, document=json.dumps(DOCUMENT), schema="Contact", name="Person", resource_path="/people"
    )
    assert response.status_code == 201, response.json()
    model = DataModel.objects.get()
    assert (model.name, model.resource_path, model.api_operation) == ("Person", "/people", "")


def test_it_fetches_the_description_from_the_system(as_):
    class Publisher(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(DOCUMENT).encode()
            self.send_response(200 if self.path == "/openapi.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with LoopbackServer(Publisher) as server:
        SystemFactory(name="CRM", slug="crm", base_url=server.url)
        preview = post(as_, document_path="/openapi.json")
        assert preview.status_code == 200, preview.json()
        assert preview.json()["document_path"] == "/openapi.json"
        response = post(as_, document_path="/openapi.json", operation=CREATE)
    assert response.status_code == 201, response.json()
    assert DataModel.objects.get().api_operation == CREATE


@pytest.mark.parametrize(
    "body, field",
    [
        ({"document": json.dumps(DOCUMENT), "operation": "POST /deals"}, "operation"),
        ({"document": json.dumps(DOCUMENT), "schema": "Deal"}, "schema"),
        ({"document": json.dumps(DOCUMENT), "operation": CREATE, "schema": "Contact"}, "schema"),
        ({"document": "{not json"}, "document"),
        ({"document": "[1, 2]"}, "document"),
        ({"document": 5}, "document"),
        ({"document": ""}, "document_path"),  # nothing given, and the system cannot be reached
        ({"system": "nowhere", "document": json.dumps(DOCUMENT)}, "system"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(as_, crm, body, field):
    response = post(as_, **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert not DataModel.objects.exists()


def test_a_name_taken_is_a_400_in_words(as_, crm):
    assert post(as_, document=json.dumps(DOCUMENT), operation=CREATE).status_code == 201
    again = post(as_, document=json.dumps(DOCUMENT), operation=CREATE)
    assert again.status_code == 400
    assert again.json()["error"] == 'CRM already has a data model called "Contact"'


def test_only_admins_make_models(as_, crm):
    found = statuses(as_, "post", URL, {"system": "crm", "document": json.dumps(DOCUMENT)})
    assert found == {
        "anonymous": 401,
        "admin": 200,
        "ops": 403,
        "auditor": 403,
        "publisher": 403,
        "outsider": 403,
    }
