"""A vendor template offers its data models: every one of them creates a model through the usual
service, the new-data-model page offers them to systems set up from the template (one click), and a
model may come from a list of fields, a sample record or the vendor's published API description."""

import json
import shutil
from http.server import BaseHTTPRequestHandler

import pytest
from django.urls import reverse

from connectors.apps import vendor_templates_check
from connectors.vendors import FIELD_TYPES, TEMPLATES_DIR, TemplateError, template_load, vendor_catalogue
from hub.models import AuditEntry
from hub.services.errors import ConfigError
from hub.services.vendor_models import data_model_from_template, offered_models
from mappings import schema
from mappings.models import DataModel
from tests.factories import SystemFactory
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.django_db
OFFERED = [(slug, name) for slug, template in vendor_catalogue().items() for name in template.models]
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "Deals", "version": "1"},
    "paths": {},
    "components": {
        "schemas": {
            "Deal": {
                "type": "object",
                "required": ["id", "title"],
                "properties": {
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "value": {"type": "number"},
                    "won_at": {"type": "string", "format": "date-time"},
                },
            }
        }
    },
}


@pytest.fixture
def admin_client(client, personas):
    client.force_login(personas["admin"])
    return client


def test_the_template_field_types_are_the_data_models_types():
    assert FIELD_TYPES == schema.FIELD_TYPES


def test_the_main_categories_offer_data_models():
    offering = {t.category for t in vendor_catalogue().values() if t.models}
    assert {"crm", "accounting", "payments", "ecommerce", "hr"} <= offering


@pytest.mark.parametrize("vendor, name", OFFERED)
def test_every_offered_model_is_created_by_the_data_model_service(vendor, name, personas):
    system = SystemFactory(vendor_template=vendor)
    model = data_model_from_template(system=system, name=name, actor=personas["admin"])
    offered = vendor_catalogue()[vendor].models[name]
    assert (model.name, model.resource_path, model.id_path) == (
        name,
        offered["path"],
        offered.get("id", "id"),
    )
    assert model.fields.filter(path=model.id_path).exists()
    assert AuditEntry.objects.filter(target_type="datamodel", target_id=str(model.pk), verb="create").exists()


def test_a_model_already_there_or_unknown_is_refused_in_words(personas):
    system = SystemFactory(vendor_template="hubspot")
    data_model_from_template(system=system, name="Contact", actor=personas["admin"])
    assert [(m.name, m.taken) for m in offered_models(system)][:2] == [("Contact", True), ("Company", False)]
    with pytest.raises(ConfigError, match='already has a data model called "Contact"'):
        data_model_from_template(system=system, name="Contact", actor=personas["admin"])
    with pytest.raises(
        ConfigError, match="offers no model called “Lead” \\(it offers: Contact, Company, Deal\\)"
    ):
        data_model_from_template(system=system, name="Lead", actor=personas["admin"])
    with pytest.raises(ConfigError, match="was not set up from a vendor template"):
        data_model_from_template(system=SystemFactory(), name="Contact", actor=personas["admin"])


def test_the_new_model_page_offers_the_templates_models_and_one_click_creates_one(admin_client):
    system = SystemFactory(name="Our CRM", vendor_template="hubspot")
    SystemFactory(name="Plain")
    page = admin_client.get(reverse("mappings-model-add"), {"system": system.pk}).content.decode()
    assert "HubSpot's data models for Our CRM" in page
    assert "Use HubSpot's Contact model" in page and "Use HubSpot's Deal model" in page
    answer = admin_client.post(reverse("mappings-model-from-template", args=[system.pk]), {"name": "Deal"})
    model = DataModel.objects.get(system=system, name="Deal")
    assert answer.status_code == 302 and answer["Location"] == reverse(
        "mappings-model-detail", args=[model.pk]
    )
    assert model.fields.get(path="properties.amount").type == "number"
    page = admin_client.get(reverse("mappings-model-add"), {"system": system.pk}).content.decode()
    assert "Deal: added already" in page
    again = admin_client.post(
        reverse("mappings-model-from-template", args=[system.pk]), {"name": "Deal"}, follow=True
    )
    assert "The data model was not created: Our CRM already has a data model called" in again.content.decode()


def test_only_admins_create_models_from_templates(client, personas):
    system = SystemFactory(vendor_template="hubspot")
    client.force_login(personas["ops"])
    answer = client.post(reverse("mappings-model-from-template", args=[system.pk]), {"name": "Deal"})
    assert answer.status_code == 403 and not DataModel.objects.exists()


def test_a_model_from_the_vendors_api_description(tmp_path, monkeypatch, personas):
    class Publisher(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(OPENAPI).encode()
            self.send_response(200 if self.path == "/openapi.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with LoopbackServer(Publisher) as server:
        template = {
            "name": "Dealbook",
            "category": "crm",
            "base_url": server.url,
            "models": {
                "Deal": {"path": "/deals", "api_description": f"{server.url}/openapi.json", "schema": "Deal"},
                "Won deal": {"path": "/won", "api_description": "/openapi.json", "schema": "Deal"},
            },
        }
        (tmp_path / "dealbook.json").write_text(json.dumps(template))
        monkeypatch.setattr("connectors.vendors.TEMPLATES_DIR", tmp_path)
        system = SystemFactory(vendor_template="dealbook", base_url=server.url)
        for name in ("Deal", "Won deal"):  # at its own address, and at a path of the system's API
            model = data_model_from_template(system=system, name=name, actor=personas["admin"])
            fields = {f.path: (f.type, f.required) for f in model.fields.all()}
            assert fields == {
                "id": ("string", True),
                "title": ("string", True),
                "value": ("number", False),
                "won_at": ("datetime", False),
            }


@pytest.mark.parametrize(
    "model, message",
    [
        ({"path": "/x", "fields": []}, '"fields" must be a non-empty list'),
        ({"path": "/x", "fields": [{"path": "a", "type": "text"}]}, "field 'a' type 'text' is not one of"),
        ({"path": "/x", "fields": [{"path": "a", "size": 3}]}, "field key 'size' is not one of"),
        ({"path": "/x", "sample": {"a": 1}, "fields": [{"path": "a"}]}, "needs exactly one of"),
        ({"path": "/x", "api_description": "/openapi.json"}, '"api_description" needs "schema"'),
        ({"fields": [{"path": "a"}]}, 'must be an object with a "path"'),
    ],
)
def test_a_broken_model_is_refused_and_named_by_the_check(tmp_path, monkeypatch, model, message):
    shutil.copy(TEMPLATES_DIR / "stripe.json", tmp_path)
    path = tmp_path / "crm.json"
    path.write_text(json.dumps({"name": "CRM", "category": "crm", "models": {"Deal": model}}))
    with pytest.raises(TemplateError, match="vendor template crm.json: "):
        template_load(path)
    monkeypatch.setattr("connectors.vendors.TEMPLATES_DIR", tmp_path)
    [warning] = vendor_templates_check(None)
    assert warning.id == "connectors.W001" and message in warning.msg and "model 'Deal'" in warning.msg
