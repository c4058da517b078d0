"""A new admin registers two sandbox systems in a real browser and tests their connections; an
auditor can look but not change."""

import re

import pytest
from playwright.sync_api import expect

from connectors.models import System
from connectors.sandbox import DEMO_CREDENTIALS, DEMO_WEBHOOK_SECRETS
from tests.connectors.jsonapi_server import TOKEN, JsonApiServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def register(page, sandbox, kind: str, *, name: str, test_path: str) -> None:
    """Registers the sandbox system of that kind, signing in with its demo API key."""
    page.get_by_label("Kind of system").select_option(kind)
    # The kind pre-fills what such systems usually expect.
    expect(page.get_by_label("Sign-in method")).to_have_value("api_key")
    expect(page.get_by_label("Does the system sign its webhooks?")).to_have_value("hmac_sha256")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("API base URL").fill(sandbox.url(kind))
    page.get_by_label("Path to test the connection").fill(test_path)
    page.get_by_label("Sign-in method").select_option("api_key")
    # Only the inputs of the chosen sign-in method show.
    expect(page.get_by_label("Header for the API key")).to_have_value("X-Api-Key")
    expect(page.get_by_label("Bearer token")).to_be_hidden()
    page.get_by_label("API key", exact=True).fill(DEMO_CREDENTIALS[kind]["api_key"])
    page.get_by_label("Webhook signing secret").fill(DEMO_WEBHOOK_SECRETS[kind])
    page.get_by_role("button", name="Register system").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    expect(page.get_by_role("status").first).to_contain_text(f"{name} is registered")


def test_it_registers_two_sandbox_systems_and_tests_their_connections(
    sign_in, personas, live_server, fresh_sandbox
):
    page = sign_in(personas["admin"])
    page.get_by_role("link", name="Systems", exact=True).click()
    expect(page.get_by_text("No systems yet: register your first")).to_be_visible()
    page.get_by_role("link", name="Register a system").click()

    # A mistake first: the error shows next to the field, in plain words.
    page.get_by_label("Name", exact=True).fill("CRM")
    page.get_by_label("API base URL").fill("crm.example")
    page.get_by_role("button", name="Register system").click()
    expect(page.locator("#id_base_url_error")).to_contain_text("starting with http:// or https://")

    register(page, fresh_sandbox, "crm", name="CRM", test_path="/deals")
    expect(page.get_by_label(re.compile("webhook settings"))).to_have_value(re.compile(r"/hooks/crm/$"))
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Connected, and the credentials were accepted")
    expect(result).to_contain_text("Reachable: yes")
    assert DEMO_CREDENTIALS["crm"]["api_key"] not in page.content()

    page.get_by_role("link", name="← Systems").click()
    page.get_by_role("link", name="Register a system").click()
    register(page, fresh_sandbox, "inventory", name="Inventory", test_path="/products")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connected, and the credentials were accepted")

    # A wrong key: the test says so, and the secret never shows.
    page.get_by_role("link", name="← Systems").click()
    expect(page.get_by_role("row")).to_have_count(3)
    page.get_by_role("link", name="CRM").click()
    page.get_by_role("link", name="Replace secrets").click()
    page.get_by_label("API key").fill("not-the-right-key")
    page.get_by_role("button", name="Replace").click()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("credentials were refused")
    assert "not-the-right-key" not in page.content()
    assert System.objects.get(slug="crm").credentials == {"api_key": "not-the-right-key"}


def test_it_registers_a_jsonapi_system_showing_only_the_settings_of_that_kind(sign_in, personas, live_server):
    with JsonApiServer() as server:
        page = sign_in(personas["admin"])
        page.get_by_role("link", name="Systems", exact=True).click()
        page.get_by_role("link", name="Register a system").click()
        page.wait_for_load_state()  # the page script that fills in a kind's defaults has run
        page.get_by_label("Kind of system").select_option("payments")
        expect(page.get_by_label("Sign-in method")).to_have_value("basic")
        signed = page.get_by_label("Does the system sign its webhooks?")
        expect(signed).to_have_value("timestamped_hmac_sha256")
        # The signature's details wait under "Advanced", filled in for the kind.
        expect(page.get_by_label("Header that carries the signature")).to_be_hidden()
        page.get_by_text("Advanced: how webhooks are signed and read").click()
        expect(page.get_by_label("Header that carries the signature")).to_have_value("Payments-Signature")
        page.get_by_label("Name", exact=True).fill("People")
        page.get_by_label("API base URL").fill(server.url)
        expect(page.get_by_label("Update records with")).to_be_visible()
        page.get_by_label("Kind of API").select_option("jsonapi")
        expect(page.get_by_label("Update records with")).to_be_hidden()
        page.get_by_text("More settings for this kind of API").click()
        expect(page.get_by_label("Changed-since filter")).to_have_value("filter[updated_since]")
        page.get_by_label("Path to test the connection").fill("/people")
        page.get_by_label("Sign-in method").select_option("bearer")
        page.get_by_label("Bearer token").fill(TOKEN)
        signed.select_option("none")
        page.get_by_role("button", name="Register system").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("People")
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator("#test-result")).to_contain_text("Connected, and the credentials were accepted")
        assert TOKEN not in page.content()
    system = System.objects.get()
    assert system.connector == "jsonapi" and system.settings["health_path"] == "/people"


def test_an_auditor_sees_systems_but_cannot_change_them(sign_in, personas, live_server):
    System.objects.create(name="CRM", slug="crm", base_url="http://127.0.0.1:9")
    page = sign_in(personas["auditor"])
    page.get_by_role("link", name="Systems", exact=True).click()
    expect(page.get_by_role("link", name="CRM")).to_be_visible()
    expect(page.get_by_role("link", name="Register a system")).to_have_count(0)
    page.get_by_role("link", name="CRM").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("CRM")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Test connection")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    system = System.objects.get()
    for path in (
        f"/systems/{system.pk}/edit/",
        f"/systems/{system.pk}/delete/",
        f"/systems/{system.pk}/test/",
    ):
        response = page.request.post(
            f"{live_server.url}{path}",
            form={"name": "Hacked"},
            headers={"X-CSRFToken": csrf, "Referer": f"{live_server.url}/"},
        )
        assert response.status == 403, path
        # refused for the role, not for CSRF: the page names the role needed
        assert "CSRF verification failed" not in response.text() and "needs the" in response.text()
    assert System.objects.get().name == "CRM"
