"""An admin registers a Standard Webhooks sender by picking it from the catalogue in a real browser;
the webhook it then signs is accepted and a tampered one refused."""

import json

import pytest
import requests
from playwright.sync_api import expect

from connectors.models import SignatureScheme, System
from connectors.signatures import signed_headers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_picking_a_vendor_fills_the_form_and_its_webhooks_are_checked(sign_in, personas, live_server):
    page = sign_in(personas["admin"])
    page.goto(f"{live_server.url}/systems/new/")
    template = page.get_by_label("Which system is it?")

    template.select_option(label="GitHub")
    expect(page.get_by_label("Kind of system")).to_have_value("code_hosting")
    expect(page.get_by_label("API base URL")).to_have_value("https://api.github.com")
    expect(page.get_by_label("Sign-in method")).to_have_value("bearer")
    expect(page.get_by_label("Header that carries the signature")).to_have_value("X-Hub-Signature-256")

    # Another vendor replaces all of it: nothing of GitHub stays behind.
    template.select_option(label="Standard Webhooks")
    expect(page.get_by_label("API base URL")).to_have_value("")
    expect(page.get_by_label("Does the system sign its webhooks?")).to_have_value("standard_webhooks")
    expect(page.get_by_label("Header that carries the signature")).to_have_value("webhook-signature")
    expect(page.get_by_label("Where the event's unique id is")).to_have_value("header:webhook-id")
    expect(page.locator("#vendor-template-note")).to_contain_text("Paste the secret as given, whsec_")
    page.get_by_text("Advanced: how webhooks are signed and read").click()
    expect(page.get_by_label("Header that carries the signature")).to_be_visible()
    expect(page.get_by_label("Maximum age of a signature (seconds)")).to_be_visible()
    expect(page.get_by_label("Text before the signature")).to_be_hidden()  # only plain HMAC has one

    page.get_by_label("Name", exact=True).fill("Billing platform")
    page.get_by_label("Webhook signing secret").fill(SECRET)
    page.get_by_role("button", name="Register system").click()
    expect(page.get_by_role("status").first).to_contain_text("Billing platform is registered")
    expect(page.get_by_text("Webhooks are signed the Standard Webhooks way")).to_be_visible()

    system = System.objects.get(name="Billing platform")
    assert (system.signature_scheme, system.kind) == (SignatureScheme.STANDARD_WEBHOOKS, "other")
    body = json.dumps({"type": "invoice.paid", "data": {"id": "in_1"}}).encode()
    headers = {"Content-Type": "application/json", **signed_headers(system, body, message_id="msg_1")}
    hook = f"{live_server.url}/hooks/{system.slug}/"
    assert requests.post(hook, data=body, headers=headers, timeout=10).status_code == 202
    tampered = requests.post(hook, data=body.replace(b"in_1", b"in_9"), headers=headers, timeout=10)
    assert tampered.status_code == 401
    assert "does not match the id, timestamp and body" in tampered.json()["error"]
