"""The flow wizard never dead-ends: a missing data model is created from inside it, and the admin
comes back to the same step with what was chosen kept and the new model chosen."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from hub.models import Flow
from mappings.models import DataModel
from tests.factories import SystemFactory, model_with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, personas):
    client.force_login(personas["admin"])
    return client


@pytest.fixture
def employee():
    hr = SystemFactory(name="HR", slug="hr")
    return model_with_fields(hr, "Employee", "/employees", "id! first_name email!")


@pytest.fixture
def inventory():
    return SystemFactory(name="Inventory", slug="inventory")


def step(client, number, **data):
    return client.post(f"{reverse('flows-add')}?step={number}", data)


def is_checked(page: str, value: str) -> bool:
    """Whether the radio button with this value is checked."""
    return "checked" in page.split(f'value="{value}"', 1)[1].split(">", 1)[0]


def new_model_form(system, next_url, **extra) -> dict:
    rows = {"fields-TOTAL_FORMS": "2", "fields-INITIAL_FORMS": "0"}
    for index, (path, required) in enumerate([("id", False), ("email", True)]):
        rows |= {f"fields-{index}-path": path, f"fields-{index}-type": "string"}
        if required:
            rows[f"fields-{index}-required"] = "on"
    return {
        "action": "save", "system": system.pk, "source": "sample", "next": next_url,
        "sample": json.dumps({"id": "a1", "email": "ann@example.com"}),
        "name": "Account", "resource_path": "/accounts", "id_path": "id", **rows, **extra,
    }  # fmt: skip


def test_a_target_model_created_from_the_wizard_comes_back_chosen(admin, employee, inventory):
    admin.get(reverse("flows-add"))
    step(admin, 1, source_system=employee.system_id, source_model=employee.pk, event_type="employee.hired")
    page = admin.get(f"{reverse('flows-add')}?step=2&target_system={inventory.pk}")
    assert "Create a data model" in page.text

    # Inventory has no models: the admin asks for one from step 2, with "create" already chosen.
    partial = admin.get(
        f"{reverse('flows-add')}?partial=target-options&target_system={inventory.pk}", HTTP_HX_REQUEST="true"
    )
    assert "Inventory has no data models yet." in partial.text
    assert "Create a data model for Inventory" in partial.text
    asked = step(admin, 2, target_system=inventory.pk, target_model="", operation="create", create_model="1")
    assert asked.status_code == 302
    where = urlsplit(asked["Location"])
    assert where.path == reverse("mappings-model-add")
    query = parse_qs(where.query)
    assert query["system"] == [str(inventory.pk)]
    assert query["next"] == [f"{reverse('flows-add')}?step=2"]

    add_page = admin.get(asked["Location"])
    assert "you go back to the new flow" in add_page.text
    assert f'name="next" value="{reverse("flows-add")}?step=2"' in add_page.text

    saved = admin.post(reverse("mappings-model-add"), new_model_form(inventory, query["next"][0]))
    account = DataModel.objects.get(system=inventory, name="Account")
    assert saved.status_code == 302
    assert saved["Location"] == f"{reverse('flows-add')}?step=2&new_model={account.pk}"

    back = admin.get(saved["Location"])
    assert back.status_code == 200
    assert f'<option value="{inventory.pk}" selected>Inventory</option>' in back.text
    assert f'<option value="{account.pk}" selected>Account</option>' in back.text
    assert is_checked(back.text, "create")

    # The rest of the wizard goes on as if the model had always been there.
    step(admin, 2, target_system=inventory.pk, target_model=account.pk, operation="create")
    step(admin, 3, trigger="realtime")
    step(admin, 4, filter_text="")
    done = step(admin, 5, name="Hires become accounts", description="")
    flow = Flow.objects.get(name="Hires become accounts")
    assert (flow.source_model, flow.target_model, flow.operation) == (employee, account, "create")
    assert done.status_code == 302


def test_a_source_model_created_from_the_wizard_keeps_the_event_typed(admin, employee):
    hr = employee.system
    admin.get(reverse("flows-add"))
    step(admin, 1, source_system=hr.pk, source_model="", event_type="employee.left", create_model="1")
    person = model_with_fields(hr, "Person", "/people", "id email")
    back = admin.get(f"{reverse('flows-add')}?step=1&new_model={person.pk}")
    assert f'<option value="{person.pk}" selected>Person</option>' in back.text
    assert 'value="employee.left"' in back.text


def test_going_back_without_creating_keeps_what_was_chosen(admin, employee, inventory):
    admin.get(reverse("flows-add"))
    step(admin, 1, source_system=employee.system_id, source_model=employee.pk, event_type="*")
    step(admin, 2, target_system=inventory.pk, target_model="", operation="delete", create_model="1")
    back = admin.get(f"{reverse('flows-add')}?step=2")
    assert f'<option value="{inventory.pk}" selected>Inventory</option>' in back.text
    assert is_checked(back.text, "delete")


def test_the_model_page_goes_back_only_to_pages_of_the_hub(admin, inventory):
    saved = admin.post(reverse("mappings-model-add"), new_model_form(inventory, "https://evil.example/steal"))
    account = DataModel.objects.get(system=inventory, name="Account")
    assert saved["Location"] == reverse("mappings-model-detail", args=[account.pk])
    page = admin.get(f"{reverse('mappings-model-add')}?next=//evil.example/x")
    assert "evil.example" not in page.text


@pytest.mark.parametrize("persona", ["ops", "auditor"])
def test_only_admins_use_the_wizard_to_create_models(client, personas, inventory, persona):
    client.force_login(personas[persona])
    assert step(client, 2, target_system=inventory.pk, create_model="1").status_code == 403
