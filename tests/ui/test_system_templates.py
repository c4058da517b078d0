"""Registering a well-known system: choosing its vendor template fills the form, and saving it works."""

import pytest
from django.urls import reverse

from connectors.models import SignatureScheme, System
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def admin_client(client, personas):
    client.force_login(personas["admin"])
    return client


def filled_in(response) -> dict[str, str]:
    """What the page's form holds, as a browser would send it back."""
    form = response.context["form"]
    return {name: "" if form[name].value() is None else str(form[name].value()) for name in form.fields}


def test_choosing_stripe_fills_the_form_and_it_saves(admin_client):
    page = admin_client.get(reverse("connectors-add"), {"template": "stripe"})
    assert page.status_code == 200
    values = filled_in(page)
    assert values["template"] == "stripe"
    assert values["kind"] == "payments"
    assert values["base_url"] == "https://api.stripe.com/v1"
    assert values["auth_scheme"] == "bearer"
    assert values["signature_scheme"] == SignatureScheme.TIMESTAMPED
    assert values["signature_header"] == "Stripe-Signature"
    assert (values["event_type_path"], values["idempotency_key_path"], values["record_path"]) == (
        "type",
        "id",
        "data.object",
    )
    html = page.content.decode()
    assert '<option value="stripe" selected>Stripe</option>' in html
    assert "Use the signing secret (whsec_…)" in html  # the template's notes for the admin

    response = admin_client.post(
        reverse("connectors-add"),
        {**values, "name": "Payments", "token": "sk_test_1", "webhook_secret": HOOK_SECRET},
    )
    system = System.objects.get(name="Payments")
    assert response.status_code == 302
    assert (system.kind, system.base_url, system.auth_scheme) == (
        "payments",
        "https://api.stripe.com/v1",
        "bearer",
    )
    assert (system.signature_scheme, system.signature_header, system.record_path) == (
        SignatureScheme.TIMESTAMPED,
        "Stripe-Signature",
        "data.object",
    )
    assert system.credentials == {"token": "sk_test_1"}


def test_choosing_shopify_fills_its_api_key_header_and_asks_for_the_shop(admin_client):
    values = filled_in(admin_client.get(reverse("connectors-add"), {"template": "shopify"}))
    assert values["api_key_header"] == "X-Shopify-Access-Token"
    assert values["signature_encoding"] == "base64" and values["signature_prefix"] == ""
    assert values["event_type_path"] == "header:X-Shopify-Topic"
    response = admin_client.post(
        reverse("connectors-add"), {**values, "name": "Shop", "api_key": "k", "webhook_secret": "s"}
    )
    assert response.status_code == 200
    # {version} stays: the hub puts the system's API version there on every call.
    assert "Replace {shop} with your own value" in response.context["form"].errors["base_url"][0]
    assert (values["api_version"], values["api_version_in"]) == ("2024-07", "path")
    values["base_url"] = "https://acme.myshopify.com/admin/api/{version}"
    response = admin_client.post(
        reverse("connectors-add"), {**values, "name": "Shop", "api_key": "k", "webhook_secret": "s"}
    )
    assert response.status_code == 302
    shop = System.objects.get(name="Shop")
    assert shop.auth_config == {"header": "X-Shopify-Access-Token"}
    assert (
        shop.version_placement()
        .address(shop.base_url, "/orders.json")
        .endswith("/admin/api/2024-07/orders.json")
    )


def test_a_standard_webhooks_secret_must_be_in_its_whsec_form(admin_client):
    values = filled_in(admin_client.get(reverse("connectors-add"), {"template": "standard-webhooks"}))
    assert (values["signature_scheme"], values["signature_header"]) == (
        "standard_webhooks",
        "webhook-signature",
    )
    response = admin_client.post(
        reverse("connectors-add"), {**values, "name": "Sender", "webhook_secret": "whsec_not base64!"}
    )
    assert response.status_code == 200
    assert "whsec_ followed by" in response.context["form"].errors["webhook_secret"][0]


def test_the_page_carries_every_template_for_the_page_script(admin_client):
    page = admin_client.get(reverse("connectors-add"))
    table = page.context["vendor_templates"]
    assert table["github"]["values"]["signature_header"] == "X-Hub-Signature-256"
    # A template without a webhook scheme puts back the new form's safe default, not "Not signed".
    assert table["hubspot"]["values"]["signature_scheme"] == SignatureScheme.HMAC_SHA256
    assert 'id="vendor-templates"' in page.content.decode()


def test_an_unknown_template_leaves_the_form_empty(admin_client):
    page = admin_client.get(reverse("connectors-add"), {"template": "nope"})
    assert page.status_code == 200 and filled_in(page)["base_url"] == ""


def test_only_admins_open_the_form_with_a_template(client, personas):
    client.force_login(personas["auditor"])
    assert client.get(reverse("connectors-add"), {"template": "stripe"}).status_code == 403


def test_switching_a_system_to_standard_webhooks_asks_for_a_secret_of_that_form(admin_client):
    system = SystemFactory(name="Old sender", webhook_secret={"secret": "plain-shared-secret"})
    edit = reverse("connectors-edit", args=[system.pk])
    values = filled_in(admin_client.get(edit))
    values |= {"signature_scheme": "standard_webhooks", "signature_header": "webhook-signature"}
    response = admin_client.post(edit, values)
    assert response.status_code == 200
    assert response.context["form"].errors["webhook_secret"] == [
        "The stored signing secret is not of that form. Paste the secret exactly as the sender shows it: "
        "whsec_ followed by letters, digits, + and /."
    ]
    assert admin_client.post(edit, {**values, "webhook_secret": HOOK_SECRET}).status_code == 302
    system.refresh_from_db()
    assert (system.signature_scheme, system.secret) == ("standard_webhooks", HOOK_SECRET)


def test_replacing_a_standard_webhooks_secret_checks_its_form(admin_client):
    system = SystemFactory(
        signature_scheme="standard_webhooks",
        signature_header="webhook-signature",
        webhook_secret={"secret": HOOK_SECRET},
    )
    replace = reverse("connectors-credentials", args=[system.pk])
    response = admin_client.post(replace, {"webhook_secret": "not-whsec"})
    assert response.status_code == 200
    assert "whsec_ followed by" in response.context["form"].errors["webhook_secret"][0]
    system.refresh_from_db()
    assert system.secret == HOOK_SECRET


def test_a_system_remembers_its_template_shows_it_and_an_admin_changes_it(admin_client):
    values = filled_in(admin_client.get(reverse("connectors-add"), {"template": "stripe"}))
    admin_client.post(
        reverse("connectors-add"), {**values, "name": "Payments", "token": "t", "webhook_secret": HOOK_SECRET}
    )
    system = System.objects.get(name="Payments")
    assert system.vendor_template == "stripe"
    page = admin_client.get(reverse("connectors-detail", args=[system.pk])).content.decode()
    assert "Set up from the Stripe template" in page
    edit = admin_client.get(reverse("connectors-edit", args=[system.pk]))
    assert '<option value="stripe" selected>Stripe</option>' in edit.content.decode()
    changed = {**filled_in(edit), "vendor_template": ""}
    assert admin_client.post(reverse("connectors-edit", args=[system.pk]), changed).status_code == 302
    system.refresh_from_db()
    assert system.vendor_template == ""
    assert (
        "Set up from" not in admin_client.get(reverse("connectors-detail", args=[system.pk])).content.decode()
    )


def test_a_system_registered_by_hand_has_no_template_and_a_gone_template_is_kept(admin_client):
    values = filled_in(admin_client.get(reverse("connectors-add")))
    values |= {"name": "Own", "base_url": "https://own.example.com", "webhook_secret": "s"}
    assert admin_client.post(reverse("connectors-add"), values).status_code == 302
    assert System.objects.get(name="Own").vendor_template == ""
    old = SystemFactory(name="Old", vendor_template="acme-crm")
    page = admin_client.get(reverse("connectors-detail", args=[old.pk])).content.decode()
    assert "“acme-crm” template, which this hub no longer has" in page
    edit = admin_client.get(reverse("connectors-edit", args=[old.pk]))
    assert (
        '<option value="acme-crm" selected>acme-crm (no such template any more)</option>'
        in edit.content.decode()
    )
