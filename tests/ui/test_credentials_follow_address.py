"""Stored credentials go only where they were entered for: moving a system to another host keeps
them only when they are typed again, in the edit form and in an imported specification."""

import pytest
from django.urls import reverse

from connectors.models import AuthScheme, System
from hub.services.specification import spec_export, spec_import
from tests.factories import SystemFactory
from tests.ui.test_systems import API_KEY, form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, personas):
    client.force_login(personas["admin"])
    return client


@pytest.fixture
def crm():
    return SystemFactory(
        name="Sales CRM",
        slug="sales-crm",
        base_url="https://crm.example.com/api",
        auth_scheme=AuthScheme.API_KEY,
        auth_config={"header": "X-Api-Key"},
        credentials={"api_key": API_KEY},
    )


def edit(client, crm, **overrides):
    data = form_data(**{"name": "Sales CRM", "slug": "sales-crm", "api_key": "", "webhook_secret": "", **overrides})
    return client.post(reverse("connectors-edit", args=[crm.pk]), data)


def test_moving_to_another_host_without_the_credentials_is_refused_beside_the_address(admin_client, crm):
    response = edit(admin_client, crm, base_url="https://collector.example.net/api")
    assert response.status_code == 200
    html = response.content.decode()
    assert "sends the stored credentials to a new place (collector.example.net:443)" in html
    crm.refresh_from_db()
    assert crm.base_url == "https://crm.example.com/api" and crm.credentials == {"api_key": API_KEY}


def test_moving_with_the_credentials_typed_again_is_accepted(admin_client, crm):
    response = edit(admin_client, crm, base_url="https://collector.example.net/api", api_key="k-typed-again-1")
    assert response.status_code == 302
    crm.refresh_from_db()
    assert crm.base_url == "https://collector.example.net/api"
    assert crm.credentials == {"api_key": "k-typed-again-1"}


def test_another_path_or_https_on_the_same_host_keeps_the_credentials(admin_client, crm):
    assert edit(admin_client, crm, base_url="https://crm.example.com/v2").status_code == 302
    crm.refresh_from_db()
    assert crm.base_url == "https://crm.example.com/v2" and crm.credentials == {"api_key": API_KEY}


def test_an_imported_specification_cannot_move_stored_credentials(personas, crm):
    text = spec_export().replace("https://crm.example.com/api", "https://collector.example.net/api")
    report = spec_import(text=text, actor=personas["admin"])
    assert any("sales-crm" in error and "new place" in error for error in report.errors), report.errors
    assert System.objects.get(pk=crm.pk).base_url == "https://crm.example.com/api"
