"""The lookup by external id on the data-model page, and Test connection checking it against real
loopback servers: one that searches by the parameter (the CRM sandbox), one that ignores it."""

import pytest
import requests
from django.urls import reverse

from connectors.models import AuthScheme
from connectors.sandbox import DEMO_CREDENTIALS
from hub.models import AuditEntry
from mappings.models import DataModel
from tests.connectors.jsonapi_server import TOKEN, JsonApiServer
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields
from tests.ui.test_systems import sandbox_crm

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin(client, personas):
    client.force_login(personas["admin"])
    return client


@pytest.fixture
def customer():
    """A CRM customer model with a field for our id, a group of fields and a list."""
    crm = SystemFactory(name="Sales CRM", slug="sales-crm")
    return model_with_fields(
        crm, "Customer", "/customers", "id! email! external_id address:object tags[] lines[].sku"
    )


def lookup_post(c, model, **data):
    return c.post(reverse("mappings-model-lookup", args=[model.pk]), data, headers=HTMX)


def preview(c, model, **params):
    url = reverse("mappings-model-detail", args=[model.pk])
    return c.get(url, {"partial": "lookup-preview", **params}, headers=HTMX).content.decode()


# -- the data-model page -------------------------------------------------------------------------


def test_it_explains_why_a_lookup_matters_and_offers_the_models_own_fields(admin, customer):
    html = admin.get(reverse("mappings-model-detail", args=[customer.pk])).content.decode()
    assert "Avoiding duplicate records" in html and "Not set up." in html
    assert "waits as “Outcome unknown” for an operator instead of being retried" in html
    select = html.split('name="lookup_field"')[1].split("</select>")[0]
    # Only fields that hold one value; the field named like an external id first.
    assert select.index('value="external_id"') < select.index('value="id"')
    assert 'value="email"' in select
    for unfit in ("address", "tags[]", "lines[].sku"):
        assert f'value="{unfit}"' not in select
    assert "The system creates or replaces a record by this key (PUT)" in html


def test_it_proposes_the_query_for_the_field_picked(admin, customer):
    html = preview(admin, customer, lookup_field="external_id")
    assert html.lstrip().startswith('<div id="lookup-preview"')
    assert "GET /customers?external_id=&lt;value&gt;" in html
    html = preview(admin, customer, lookup_field="external_id", lookup_param="ref", create_by_key="on")
    assert "GET /customers?ref=&lt;value&gt;" in html and "PUT /customers/&lt;value&gt;" in html
    assert "Choose the field" in preview(admin, customer)


def test_a_jsonapi_system_is_searched_with_a_filter(admin):
    people = SystemFactory(connector="jsonapi", settings={"health_path": "/people"})
    person = model_with_fields(people, "Person", "/people", "id! email! external_id")
    assert "GET /people?filter[external_id]=&lt;value&gt;" in preview(
        admin, person, lookup_field="external_id"
    )


def test_an_admin_declares_the_lookup_and_it_is_audited(admin, customer):
    response = lookup_post(admin, customer, lookup_field="external_id", lookup_param="", create_by_key="on")
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="model-lookup"')
    assert "Saved." in html and "GET /customers?external_id=&lt;value&gt;" in html
    assert "PUT /customers/&lt;value&gt;" in html
    customer.refresh_from_db()
    assert (customer.lookup_field, customer.lookup_param, customer.create_by_key) == ("external_id", "", True)
    entry = AuditEntry.objects.get(verb="update")
    assert entry.diff == {"lookup_field": ["", "external_id"], "create_by_key": [False, True]}


def test_an_admin_can_name_another_query_parameter_and_clear_the_lookup_again(admin, customer):
    lookup_post(admin, customer, lookup_field="external_id", lookup_param="filter.ext")
    customer.refresh_from_db()
    assert customer.lookup_param == "filter.ext"
    detail = admin.get(reverse("mappings-model-detail", args=[customer.pk])).content.decode()
    assert "GET /customers?filter.ext=&lt;value&gt;" in detail and ">external id</span>" in detail
    lookup_post(admin, customer, lookup_field="", lookup_param="")
    customer.refresh_from_db()
    assert (customer.lookup_field, customer.lookup_param, customer.create_by_key) == ("", "", False)


@pytest.mark.parametrize(
    "data, error",
    [
        ({"lookup_field": "nickname"}, "&quot;nickname&quot; is not one of the fields of Customer"),
        ({"lookup_field": "address"}, "holds a group of fields, not one value"),
        ({"lookup_field": "lines[].sku"}, "is inside a list"),
        (
            {"lookup_field": "external_id", "lookup_param": "external_id=42"},
            "without &quot;?&quot;, &quot;=&quot;",
        ),
        ({"lookup_field": "external_id", "lookup_param": "?external_id"}, "e.g. external_id"),
        ({"lookup_field": "external_id", "lookup_param": "external id"}, "is not a query parameter name"),
        ({"lookup_field": "external_id", "lookup_param": "x" * 201}, "at most 200 characters"),
        ({"create_by_key": "on"}, "Choose the field that holds the key"),
        ({"lookup_param": "external_id"}, "Choose the field this query parameter searches by"),
    ],
)
def test_it_refuses_a_lookup_it_cannot_use_with_a_precise_error(admin, customer, data, error):
    response = lookup_post(admin, customer, **data)
    html = response.content.decode()
    assert response.status_code == 200 and error in html and 'class="field-error"' in html
    customer.refresh_from_db()
    assert customer.lookup_field == "" and not AuditEntry.objects.filter(verb="update").exists()


def test_the_service_refuses_the_same_whatever_the_entry_point(customer, personas):
    from hub.services.datamodels import data_model_update
    from hub.services.errors import ConfigError

    with pytest.raises(ConfigError, match="not one of the fields"):
        data_model_update(model=customer, actor=personas["admin"], lookup_field="nickname")
    with pytest.raises(ConfigError, match="query parameter name"):
        data_model_update(model=customer, actor=personas["admin"], lookup_field="email", lookup_param="a b")
    with pytest.raises(ConfigError, match="needs the field that holds the key"):
        data_model_update(model=customer, actor=personas["admin"], create_by_key=True)


def test_the_field_the_hub_looks_up_by_cannot_be_removed(admin, customer):
    customer.lookup_field = "external_id"
    customer.save()
    field = customer.fields.get(path="external_id")
    html = admin.post(reverse("mappings-field-remove", args=[field.pk]), headers=HTMX).content.decode()
    assert "The hub looks Customer records up by &quot;external_id&quot;: choose another" in html
    assert customer.fields.filter(path="external_id").exists()


def test_the_field_the_hub_looks_up_by_keeps_holding_one_value(admin, customer):
    customer.lookup_field = "external_id"
    customer.save()
    field = customer.fields.get(path="external_id")
    response = admin.post(reverse("mappings-field-update", args=[field.pk]), {"type": "object"}, headers=HTMX)
    assert "which must hold one value, not a group of fields" in response.content.decode()
    field.refresh_from_db()
    assert field.type == "string"


def test_it_warns_when_a_mapping_leaves_the_external_id_empty(admin, customer):
    customer.lookup_field = "external_id"
    customer.save()
    source = model_with_fields(SystemFactory(), "Lead", "/leads", "id! email")
    flow_with_mapping(
        source_model=source, target_model=customer, rules=[{"target": "email", "source": "email"}]
    )
    html = admin.get(reverse("mappings-model-detail", args=[customer.pk])).content.decode()
    assert "does not fill <code>external_id</code> yet" in html
    other = model_with_fields(SystemFactory(), "Lead", "/leads", "id! email")
    flow_with_mapping(
        source_model=other,
        target_model=customer,
        rules=[{"target": "external_id", "source": "id"}],
        name="ok",
    )
    html = admin.get(reverse("mappings-model-detail", args=[customer.pk])).content.decode()
    assert html.count("does not fill <code>external_id</code> yet") == 1


@pytest.mark.parametrize("who", ["ops", "auditor"])
def test_others_read_the_lookup_but_cannot_change_it(client, personas, customer, who):
    customer.lookup_field = "external_id"
    customer.save()
    client.force_login(personas[who])
    html = client.get(reverse("mappings-model-detail", args=[customer.pk])).content.decode()
    assert "GET /customers?external_id=&lt;value&gt;" in html
    assert 'name="lookup_field"' not in html and "Save the lookup" not in html
    response = lookup_post(client, customer, lookup_field="")
    assert response.status_code == 403
    assert DataModel.objects.get(pk=customer.pk).lookup_field == "external_id"


def test_the_page_keeps_a_fixed_number_of_queries_with_a_lookup(
    admin, customer, django_assert_max_num_queries
):
    customer.lookup_field = "external_id"
    customer.save()
    for number in range(3):
        source = model_with_fields(SystemFactory(), f"S{number}", "/s", "id!")
        flow_with_mapping(
            source_model=source, target_model=customer, rules=[{"target": "external_id", "source": "id"}]
        )
    with django_assert_max_num_queries(8):
        assert admin.get(reverse("mappings-model-detail", args=[customer.pk])).status_code == 200


# -- Test connection checks each declared lookup ------------------------------------------------------


def test_test_connection_says_the_lookup_works_on_a_system_that_searches(admin, fresh_sandbox):
    system = sandbox_crm(fresh_sandbox, DEMO_CREDENTIALS["crm"]["api_key"])
    for n in range(2):  # the check means something only with records there
        requests.post(
            f"{fresh_sandbox.url('crm')}/customers",
            json={"name": f"Ann {n}", "email": f"ann{n}@example.com"},
            headers={"X-Api-Key": DEMO_CREDENTIALS["crm"]["api_key"]},
            timeout=5,
        ).raise_for_status()
    model_with_fields(system, "Customer", "/customers", "id! email external_id", lookup_field="external_id")
    model_with_fields(system, "Deal", "/deals", "id! title")  # declares no lookup: not searched
    html = admin.post(reverse("connectors-test", args=[system.pk]), headers=HTMX).content.decode()
    assert "Connected, and the credentials were accepted" in html
    assert "Customer: lookup by external_id works (searched /customers?external_id=hub-lookup-check-" in html
    assert ": no match, as expected)" in html and "Deal:" not in html
    searched = [r for r in fresh_sandbox.system("crm").requests_since(0) if "hub-lookup-check-" in r["query"]]
    assert len(searched) == 1 and searched[0]["path"] == "/customers" and searched[0]["status"] == 200
    entry = AuditEntry.objects.get(verb="test_connection")
    assert entry.diff["lookups"] == {"Customer": "ok"}


def test_test_connection_warns_when_the_system_ignores_the_search(admin):
    with JsonApiServer() as server:
        for n in range(3):
            server.seed("people", {"email": f"p{n}@example.com", "external_id": f"src-{n}"})
        system = SystemFactory(
            connector="jsonapi",
            base_url=server.url,
            auth_scheme=AuthScheme.BEARER,
            credentials={"token": TOKEN},
            settings={"health_path": "/people"},
        )
        model_with_fields(system, "Person", "/people", "id! email external_id", lookup_field="external_id")
        html = admin.post(reverse("connectors-test", args=[system.pk]), headers=HTMX).content.decode()
        assert "cannot be trusted" in html
        assert (
            "Person: the system ignored ?filter[external_id]=…: searching /people?filter[external_id]="
            in html
        )
        assert (
            "returned 3 records although none can match, so the hub cannot tell whether a create arrived"
            in html
        )
        assert TOKEN not in html
        assert AuditEntry.objects.get(verb="test_connection").diff["lookups"] == {"Person": "warn"}


def test_test_connection_reports_a_lookup_that_fails(admin, fresh_sandbox):
    system = sandbox_crm(fresh_sandbox, DEMO_CREDENTIALS["crm"]["api_key"])
    model_with_fields(system, "Ghost", "/ghosts", "id! external_id", lookup_field="external_id")
    model_with_fields(system, "Nowhere", "", "id! external_id", lookup_field="external_id")
    html = admin.post(reverse("connectors-test", args=[system.pk]), headers=HTMX).content.decode()
    assert "Ghost: the lookup by external_id failed (searched /ghosts?external_id=hub-lookup-check-" in html
    assert "404" in html
    assert "Nowhere: the lookup by external_id cannot run: the data model has no resource path" in html
    assert AuditEntry.objects.get(verb="test_connection").diff["lookups"] == {
        "Ghost": "bad",
        "Nowhere": "bad",
    }


def test_test_connection_skips_the_lookups_when_the_system_cannot_be_reached(admin):
    system = SystemFactory(base_url="http://127.0.0.1:9", connect_timeout=0.5)
    model_with_fields(system, "Customer", "/customers", "id! external_id", lookup_field="external_id")
    html = admin.post(reverse("connectors-test", args=[system.pk]), headers=HTMX).content.decode()
    assert "Could not reach" in html and "Finding records by external id" not in html
