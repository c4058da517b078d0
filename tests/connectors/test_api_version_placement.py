"""A system's API version reaches the target where the system says it goes (a header, a path
segment or a query parameter) on every call, over `requests` and on the event loop alike."""

import asyncio

import pytest
from django.core.exceptions import ValidationError

from connectors import asynchttp
from connectors.base import ConnectorError, ErrorClass
from connectors.registry import connector_for
from tests.factories import SystemFactory
from tests.versioned_target import VersionedTarget

pytestmark = pytest.mark.django_db

WAYS = ("thread", "loop")


@pytest.fixture
def target():
    with VersionedTarget() as server:
        yield server


def push(system, way: str, resource: str = "/contacts", record: dict | None = None):
    arguments = {
        "operation": "create",
        "resource": resource,
        "record": record or {"email_address": "ann@example.com"},
        "target_id": None,
        "idempotency_key": "k1",
    }

    async def on_loop():
        try:
            return await connector_for(system).apush(**arguments)
        finally:
            await asynchttp.close_sessions()

    if way == "thread":
        return connector_for(system).push(**arguments)
    return asyncio.run(on_loop())


@pytest.mark.parametrize("way", WAYS)
def test_it_sends_the_version_in_the_named_header(target, way):
    system = SystemFactory(base_url=target.url, api_version="v2", api_version_in="header")
    assert push(system, way).status == 201
    (seen,) = target.seen
    assert seen.path == "/contacts" and seen.headers["x-api-version"] == "v2" and seen.query == {}


@pytest.mark.parametrize("way", WAYS)
def test_it_sends_the_version_in_a_header_of_another_name(target, way):
    system = SystemFactory(
        base_url=target.url,
        api_version="2024-06-20",
        api_version_in="header",
        api_version_name="Stripe-Version",
    )
    with pytest.raises(ConnectorError):  # this target reads only its own header
        push(system, way)
    (seen,) = target.seen
    assert seen.headers["stripe-version"] == "2024-06-20" and "x-api-version" not in seen.headers


@pytest.mark.parametrize("way", WAYS)
def test_it_puts_the_version_in_place_of_the_placeholder_in_the_base_url(target, way):
    system = SystemFactory(base_url=target.url + "/api/{version}", api_version="v2", api_version_in="path")
    assert push(system, way).status == 201
    (seen,) = target.seen
    assert seen.path == "/api/v2/contacts" and "x-api-version" not in seen.headers and seen.query == {}


@pytest.mark.parametrize("way", WAYS)
def test_it_replaces_the_part_that_looks_like_a_version_in_the_resource_path(target, way):
    system = SystemFactory(base_url=target.url, api_version="v2", api_version_in="path")
    push(system, way, resource="/crm/v1/contacts")
    (seen,) = target.seen
    assert seen.path == "/crm/v2/contacts" and seen.version == "v2"


@pytest.mark.parametrize("way", WAYS)
def test_it_sends_the_version_as_a_query_parameter(target, way):
    system = SystemFactory(
        base_url=target.url, api_version="v2", api_version_in="query", api_version_name="api-version"
    )
    assert push(system, way).status == 201
    (seen,) = target.seen
    assert seen.path == "/contacts" and seen.query == {"api-version": "v2"}
    assert "x-api-version" not in seen.headers


@pytest.mark.parametrize("way", WAYS)
def test_a_path_without_a_place_for_the_version_is_refused_before_sending(target, way):
    system = SystemFactory(base_url=target.url, api_version="v2", api_version_in="path")
    with pytest.raises(ConnectorError) as caught:
        push(system, way, resource="/contacts")
    assert caught.value.error_class == ErrorClass.REJECTED
    assert "neither {version} nor a part such as /v1/" in caught.value.message
    assert target.seen == []


def test_no_version_sends_nothing_extra(target):
    system = SystemFactory(base_url=target.url, api_version="")
    with pytest.raises(ConnectorError):  # this target wants a version
        push(system, "thread", record={"email": "a@example.com"})
    (seen,) = target.seen
    assert "x-api-version" not in seen.headers and seen.query == {}


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"base_url": "http://127.0.0.1:9/{version}", "api_version_in": "header"},
            "api_version_in",
            "in the address",
        ),
        (
            {"base_url": "http://127.0.0.1:9/{version}", "api_version_in": "path", "api_version": ""},
            "api_version",
            "Enter the API version",
        ),
        ({"api_version_in": "query", "api_version_name": ""}, "api_version_name", "query parameter"),
        ({"api_version_in": "header", "api_version_name": "Bad Name"}, "api_version_name", "header name"),
    ],
)
def test_the_system_refuses_version_settings_that_cannot_work(fields, field, words):
    system = SystemFactory.build(**{"api_version": "v2", **fields})
    with pytest.raises(ValidationError) as caught:
        system.full_clean(exclude=["credentials", "webhook_secret"])
    assert words in " ".join(caught.value.message_dict[field])
