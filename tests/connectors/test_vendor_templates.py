"""Vendor templates are data: every file loads, fills the system form with values it accepts, and a
broken file is refused with its name and what is wrong."""

import json
import re
import shutil

import pytest

from connectors.apps import vendor_templates_check
from connectors.models import SystemKind
from connectors.vendors import (
    CATEGORIES,
    TEMPLATES_DIR,
    TemplateError,
    catalogue_read,
    template_load,
    vendor_catalogue,
)
from hub.ui.forms.systems import SystemForm, template_form_values

pytestmark = pytest.mark.django_db
SECRETS = {"api_key": "k", "token": "t0ken", "username": "ann", "password": "pw", "client_id": "id"}
SECRETS |= {"client_secret": "sec", "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
VENDORS = sorted(p.stem for p in TEMPLATES_DIR.glob("*.json"))


@pytest.fixture
def admin_client(client, personas):
    client.force_login(personas["admin"])
    return client


def test_every_file_in_the_folder_is_in_the_catalogue():
    assert catalogue_read().problems == ()
    assert sorted(vendor_catalogue()) == VENDORS
    assert {"stripe", "shopify", "github", "slack", "hubspot", "salesforce", "quickbooks-online"} <= set(
        VENDORS
    )
    assert {"xero", "zendesk", "bamboohr", "woocommerce", "paypal", "intercom", "standard-webhooks"} <= set(
        VENDORS
    )


def test_the_catalogue_covers_every_category():
    assert {t.category for t in vendor_catalogue().values()} == set(CATEGORIES)


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_template_fills_the_form_with_values_it_accepts(vendor):
    values = template_form_values()[vendor]["values"]
    data = {**values, **SECRETS, "name": f"Our {vendor}", "connector": "rest"}
    data |= {"connect_timeout": "3", "read_timeout": "10", "signature_tolerance_seconds": "300"}
    # A base URL pattern names what the admin fills in: the form says so until it is done. The
    # {version} placeholder is the hub's own: the system's API version goes there.
    if re.search(r"\{(?!version\})", data.get("base_url", "")):
        form = SystemForm(data)
        assert not form.is_valid()
        assert form.errors["base_url"][0].startswith("Replace {")
        data["base_url"] = "https://acme.example.com/api"
    form = SystemForm(data)
    assert form.is_valid(), form.errors
    assert form.instance.kind in SystemKind.values


def test_a_new_file_in_the_folder_appears_in_the_catalogue_and_the_form(tmp_path, monkeypatch):
    for path in TEMPLATES_DIR.glob("*.json"):
        shutil.copy(path, tmp_path)
    monkeypatch.setattr("connectors.vendors.TEMPLATES_DIR", tmp_path)
    (tmp_path / "pipedrive.json").write_text(
        json.dumps({"name": "Pipedrive", "category": "crm", "base_url": "https://api.pipedrive.com/v1"})
    )
    assert vendor_catalogue()["pipedrive"].name == "Pipedrive"
    choices = dict(SystemForm().fields["template"].choices)
    assert ("pipedrive", "Pipedrive") in choices["CRM"]
    assert template_form_values()["pipedrive"]["values"]["base_url"] == "https://api.pipedrive.com/v1"


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "Expecting property name"),
        ("[]", "one JSON object"),
        ('{"category": "crm"}', "'name' is required"),
        ('{"name": "X", "category": "gaming"}', "category 'gaming' is not one of"),
        ('{"name": "X", "category": "crm", "homepage": "x"}', "key 'homepage' is not one of"),
        ('{"name": "X", "category": "crm", "auth": {"scheme": "magic"}}', "auth scheme 'magic'"),
        ('{"name": "X", "category": "crm", "webhook": {"scheme": "md5"}}', "signature scheme 'md5'"),
        (
            '{"name": "X", "category": "crm", "webhook": {"scheme": "hmac_sha256", "header": "X Sig"}}',
            "webhook header 'X Sig'",
        ),
        ('{"name": "X", "category": "crm", "event_type": "a..b"}', "event_type 'a..b'"),
        ('{"name": "X", "category": "crm", "models": []}', '"models" must map'),
        ('{"name": "X", "category": "crm", "models": {"Deal": {"path": "/deals"}}}', "needs exactly one of"),
    ],
)
def test_a_broken_file_is_refused_with_its_name_and_the_reason(tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(TemplateError, match="vendor template broken.json: ") as raised:
        template_load(path)
    assert message in str(raised.value)


def test_a_broken_file_in_the_folder_leaves_only_that_vendor_out_and_check_names_it(
    tmp_path, monkeypatch, admin_client
):
    shutil.copy(TEMPLATES_DIR / "stripe.json", tmp_path)
    (tmp_path / "typo.json").write_text('{"name": "Typo", "category": "crm", "webhook": {"scheme": "hmac"}}')
    monkeypatch.setattr("connectors.vendors.TEMPLATES_DIR", tmp_path)
    assert list(vendor_catalogue()) == ["stripe"]
    [warning] = vendor_templates_check(None)
    assert warning.id == "connectors.W001"
    assert "vendor template typo.json: signature scheme 'hmac' is not one of" in warning.msg
    page = admin_client.get("/systems/new/")
    assert page.status_code == 200 and '<option value="stripe">Stripe</option>' in page.content.decode()
