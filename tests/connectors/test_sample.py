"""Connector.sample: one record of a collection, listed with the system's stored credentials, as
flows read it (the start of a data model fetched from the system itself)."""

import pytest

from connectors.base import ConnectorError, ErrorClass
from connectors.models import System
from connectors.registry import connector_for
from tests.connectors.jsonapi_server import JsonApiServer
from tests.connectors.test_jsonapi import people_system
from tests.sandbox_helpers import sandbox_system

pytestmark = pytest.mark.django_db


def test_a_rest_system_gives_its_first_record_asking_for_one(fresh_sandbox):
    inventory = sandbox_system(fresh_sandbox, "inventory")
    record = connector_for(inventory).sample(resource="/products")
    assert record["sku"].startswith("SKU-") and {"id", "name", "stock", "created_at"} <= set(record)
    asked = fresh_sandbox.system("inventory").request_log[-1]
    assert asked["path"] == "/products" and "limit=1" in asked["query"]


def test_an_empty_list_gives_no_record(fresh_sandbox):
    hr = sandbox_system(fresh_sandbox, "hr")
    assert connector_for(hr).sample(resource="/employees") is None


def test_refused_credentials_are_an_auth_failure(fresh_sandbox):
    hr = sandbox_system(fresh_sandbox, "hr", credentials={"token": "wrong"})
    with pytest.raises(ConnectorError) as caught:
        connector_for(hr).sample(resource="/employees")
    assert caught.value.error_class == ErrorClass.AUTH_FAILURE and caught.value.status == 401


def test_a_json_api_system_gives_the_record_flat():
    with JsonApiServer() as server:
        server.seed("people", {"email": "ann@example.com", "name": "Ann"})
        record = connector_for(System(**people_system(server))).sample(resource="/people")
    assert record == {
        "id": "1",
        "email": "ann@example.com",
        "name": "Ann",
        "updated_at": "2026-01-01T00:00:01Z",
    }
