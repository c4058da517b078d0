"""Starting a data model from the system itself: one record listed with the stored credentials,
its fields read as from a pasted sample, and each way the system can fail named on the form."""

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest
from django.urls import reverse

from connectors.models import System
from hub.models import AuditEntry
from mappings.models import DataModel
from tests.factories import SystemFactory, model_with_fields
from tests.loopback import LoopbackServer
from tests.sandbox_helpers import sandbox_system

pytestmark = pytest.mark.django_db


class _Answers(BaseHTTPRequestHandler):
    """A system whose every path answers one way: /denied 401, /gone 404, /empty an empty list,
    /html a web page, /slow too late, /contacts one record."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/slow":
            time.sleep(1.0)
        status, kind, body = {
            "/denied": (401, "application/json", {"error": "invalid api key"}),
            "/gone": (404, "application/json", {"error": "no such resource"}),
            "/empty": (200, "application/json", {"data": []}),
            "/contacts": (
                200,
                "application/json",
                {"data": [{"id": "c_1", "name": "Ann", "email": "a@x.io"}]},
            ),
        }.get(path, (200, "text/html", "<html><body>Welcome</body></html>"))
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def answers():
    with LoopbackServer(_Answers) as server:
        yield server


@pytest.fixture
def admin(client, personas):
    client.force_login(personas["admin"])
    return client


def read(client, system: System, resource: str, **extra):
    data = {"action": "read", "system": system.pk, "source": "fetch", "resource": resource, **extra}
    data.update({"fields-TOTAL_FORMS": "0", "fields-INITIAL_FORMS": "0"})
    return client.post(reverse("mappings-model-add"), data)


def test_it_fetches_a_record_from_a_sandbox_system_and_reads_its_fields(admin, fresh_sandbox):
    inventory = sandbox_system(fresh_sandbox, "inventory")  # its products are seeded
    page = read(admin, inventory, "products")
    assert page.status_code == 200
    assert "Read " in page.text and "field-error" not in page.text
    for path in ("sku", "name", "stock", "created_at"):
        assert f'value="{path}"' in page.text
    # The form suggests the details the fetch made obvious, and keeps the record as the sample.
    assert 'value="/products"' in page.text
    assert 'value="Product"' in page.text
    assert "See the record the hub read" in page.text and "SKU-" in page.text
    # Required: the fields a create needs, not the ones the system fills in itself.
    assert 'aria-label="sku is required" checked' in page.text
    assert 'aria-label="id is required" checked' not in page.text
    assert 'aria-label="created_at is required" checked' not in page.text


def test_a_fetched_record_is_saved_as_the_sample_without_asking_the_system_again(admin, answers):
    system = SystemFactory(base_url=answers.url)
    page = read(admin, system, "/contacts")
    sample_text = json.dumps({"id": "c_1", "name": "Ann", "email": "a@x.io"}, indent=2)
    assert "&quot;email&quot;: &quot;a@x.io&quot;" in page.text
    answers.shutdown()  # the save must not need it
    answers.server_close()
    rows = {"fields-TOTAL_FORMS": "3", "fields-INITIAL_FORMS": "0"}
    for index, (path, required) in enumerate([("id", False), ("name", True), ("email", True)]):
        rows |= {f"fields-{index}-path": path, f"fields-{index}-type": "string"}
        if required:
            rows[f"fields-{index}-required"] = "on"
    saved = admin.post(
        reverse("mappings-model-add"),
        {"action": "save", "system": system.pk, "source": "fetch", "resource": "/contacts",
         "sample": sample_text, "name": "Contact", "resource_path": "/contacts", "id_path": "id", **rows},
    )  # fmt: skip
    model = DataModel.objects.get(system=system, name="Contact")
    assert saved.status_code == 302
    assert model.sample == {"id": "c_1", "name": "Ann", "email": "a@x.io"}
    assert [(f.path, f.required) for f in model.fields.all()] == [
        ("id", False),
        ("name", True),
        ("email", True),
    ]


@pytest.mark.parametrize(
    ("resource", "words"),
    [
        (
            "/denied",
            "refused the hub&#x27;s credentials (it answered 401) when asked for /denied. Check the credentials",
        ),
        ("/gone", "has nothing at /gone (it answered 404). Check the path"),
        ("/empty", "has no records at /empty yet, so there is nothing to read the fields from"),
        ("/html", "answer for /html is not a list of records in JSON"),
        ("/slow", "did not answer within 0.3 seconds. Check that it is running at"),
        (
            "http://elsewhere.example/x",
            "Enter a path on the system&#x27;s base URL, such as /deals, not a full address",
        ),
        ("", "Write where the records live in the system&#x27;s API, e.g. /contacts."),
    ],
)
def test_it_names_what_went_wrong_on_the_form_never_a_500(admin, answers, resource, words):
    system = SystemFactory(base_url=answers.url, read_timeout=0.3)
    page = read(admin, system, resource)
    assert page.status_code == 200
    assert words in page.text
    assert 'class="field-error"' in page.text
    assert not DataModel.objects.exists()


def test_it_names_a_system_that_cannot_be_reached(admin):
    system = SystemFactory(name="Shop", base_url="http://127.0.0.1:9", connect_timeout=0.5)
    page = read(admin, system, "/orders")
    assert "The hub could not connect to Shop at http://127.0.0.1:9. Check the address" in page.text


def test_it_asks_for_the_system_before_fetching(admin):
    SystemFactory()
    data = {"action": "read", "source": "fetch", "resource": "/contacts"}
    page = admin.post(
        reverse("mappings-model-add"), data | {"fields-TOTAL_FORMS": "0", "fields-INITIAL_FORMS": "0"}
    )
    assert "Choose the system above first" in page.text


def test_the_model_page_replaces_its_sample_with_a_fetched_record(admin, answers):
    system = SystemFactory(base_url=answers.url)
    model = model_with_fields(system, "Contact", "/contacts", "id name")
    url = reverse("mappings-model-sample", args=[model.pk])
    page = admin.post(url, {"action": "fetch", "add_new_fields": "on"}, HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    model.refresh_from_db()
    assert model.sample == {"id": "c_1", "name": "Ann", "email": "a@x.io"}
    assert list(model.fields.values_list("path", flat=True)) == ["id", "name", "email"]
    assert AuditEntry.objects.filter(verb="update_sample").count() == 1

    model.resource_path = "/denied"
    model.save()
    refused = admin.post(url, {"action": "fetch"}, HTTP_HX_REQUEST="true")
    assert "refused the hub&#x27;s credentials (it answered 401)" in refused.text
    assert "Paste a sample record in JSON" not in refused.text
    model.refresh_from_db()
    assert model.sample == {"id": "c_1", "name": "Ann", "email": "a@x.io"}


@pytest.mark.parametrize("persona", ["ops", "auditor", "outsider"])
def test_only_admins_fetch_records(client, personas, answers, persona):
    system = SystemFactory(base_url=answers.url)
    model = model_with_fields(system, "Contact", "/contacts", "id name")
    client.force_login(personas[persona])
    assert read(client, system, "/contacts").status_code == 403
    assert (
        client.post(reverse("mappings-model-sample", args=[model.pk]), {"action": "fetch"}).status_code == 403
    )
    model.refresh_from_db()
    assert model.sample is None


# --- from the system's API description ----------------------------------------------------------------

SWAGGER = {
    "swagger": "2.0",
    "definitions": {
        "Contact": {
            "type": "object",
            "required": ["id", "email"],
            "properties": {"id": {"type": "string", "readOnly": True}, "email": {"type": "string"}},
        }
    },
}


class _Describes(_Answers):
    """A system that publishes its Swagger document at /swagger.json, and a YAML one at /docs/api."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/swagger.json":
            return self._send(200, json.dumps(SWAGGER))
        if path == "/docs/api":
            return self._send(
                200,
                "openapi: 3.0.0\ncomponents:\n  schemas:\n    Deal:\n      properties:\n        title: {type: string}\n",
            )
        if path == "/readme":
            return self._send(200, "# Our API\nSee the docs.")
        return self._send(404, '{"error": "not found"}')

    def _send(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def describes():
    with LoopbackServer(_Describes) as server:
        yield server


def read_description(client, system: System, path: str = ""):
    data = {"action": "read", "system": system.pk, "source": "openapi", "openapi_path": path}
    return client.post(
        reverse("mappings-model-add"), data | {"fields-TOTAL_FORMS": "0", "fields-INITIAL_FORMS": "0"}
    )


def test_it_finds_the_api_description_the_system_publishes_at_a_usual_place(admin, describes):
    system = SystemFactory(base_url=describes.url)
    page = read_description(admin, system)
    assert "field-error" not in page.text
    assert 'value="email"' in page.text and 'aria-label="email is required" checked' in page.text
    assert 'aria-label="id is required" checked' not in page.text  # readOnly: the system sets it
    assert 'value="/swagger.json"' in page.text  # where it was found, shown in the path box


def test_it_fetches_the_api_description_from_the_path_typed(admin, describes):
    system = SystemFactory(base_url=describes.url)
    page = read_description(admin, system, "/docs/api")
    assert 'value="title"' in page.text and 'value="Deal"' in page.text


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (
            "/readme",
            "is not an OpenAPI document (it has no &quot;openapi&quot; or &quot;swagger&quot; version)",
        ),
        ("/nowhere", "has nothing at /nowhere (it answered 404)"),
    ],
)
def test_it_says_when_the_path_holds_no_api_description(admin, describes, path, words):
    page = read_description(admin, SystemFactory(base_url=describes.url), path)
    assert words in page.text and "id_openapi_path_error" in page.text


def test_it_says_when_the_system_publishes_no_api_description(admin, answers):
    page = read_description(admin, SystemFactory(name="Shop", base_url=answers.url))
    assert "Shop publishes no API description at /openapi.json, /openapi.yaml, /swagger.json" in page.text


def test_an_oauth_system_whose_secret_is_refused_gets_a_form_error(admin, fresh_sandbox):
    accounting = sandbox_system(
        fresh_sandbox, "accounting", credentials={"client_id": "hub", "client_secret": "wrong"}
    )
    page = read(admin, accounting, "/payments")
    assert page.status_code == 200
    assert "Accounting refused the hub&#x27;s credentials (it answered 40" in page.text, page.text[
        page.text.find("field-error") :
    ][:300]
