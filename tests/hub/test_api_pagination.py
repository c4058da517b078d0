"""API pages: limit and offset within the table of limits; anything else a 400 naming the bound,
and the schema declares the same bounds."""

import pytest
from rest_framework.test import APIClient

from common.limits import LIMITS
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
LISTS = [
    "/api/v1/events/",
    "/api/v1/deliveries/",
    "/api/v1/flows/",
    "/api/v1/audit/",
    "/api/v1/dead-letters/",
]


@pytest.fixture
def api(personas):
    source = model_with_fields(SystemFactory(name="CRM", slug="crm"), "Deal", "/deals", "id!")
    target = model_with_fields(SystemFactory(name="Books", slug="books"), "Invoice", "/invoices", {})
    for n in range(3):
        flow_with_mapping(
            source_model=source, target_model=target, rules=[], name=f"f{n}", actor=personas["admin"]
        )
    client = APIClient()
    client.force_authenticate(personas["admin"])
    return client


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    ("query", "name"),
    [
        (f"limit={2**63 + 1}", "limit"),
        (f"limit={2**64}", "limit"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        (f"limit={LIMITS.api_max_limit + 1}", "limit"),
        ("limit=1e3", "limit"),
        (f"offset={2**63 + 1}", "offset"),
        ("offset=-5", "offset"),
        ("offset=x", "offset"),
    ],
)
def test_a_limit_or_offset_out_of_bounds_is_a_400_that_names_the_bound(api, path, query, name):
    response = api.get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    assert f"must be a whole number from {1 if name == 'limit' else 0} to" in response.content.decode()


def test_limits_within_bounds_page_as_before(api):
    page = api.get("/api/v1/flows/?limit=2&offset=1").json()
    assert page["count"] == 3 and len(page["results"]) == 2
    assert len(api.get(f"/api/v1/flows/?limit={LIMITS.api_max_limit}").json()["results"]) == 3
    assert len(api.get("/api/v1/flows/").json()["results"]) == 3


def test_the_schema_declares_the_bounds(api):
    schema = api.get("/api/schema/?format=json").json()
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/flows/"]["get"]["parameters"]}
    assert parameters["limit"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": LIMITS.api_max_limit,
        "default": 50,
    }
    assert parameters["offset"]["minimum"] == 0 and parameters["offset"]["maximum"] == LIMITS.api_max_offset
