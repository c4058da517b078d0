"""The JSON:API connector against a real JSON:API server on loopback: push, fetch with paging, check,
the failure taxonomy, and the hub delivering through it."""

import json

import pytest

from connectors.auth import AuthScheme
from connectors.base import ConnectorError, ErrorClass
from connectors.models import System
from connectors.registry import connector_for
from hub.models import Delivery, DeliveryStatus, RecordLink
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.connectors.jsonapi_server import MEDIA_TYPE, TOKEN, JsonApiServer
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields
from tests.sandbox_helpers import drain_all


@pytest.fixture
def server():
    with JsonApiServer() as running:
        yield running


def people_system(server: JsonApiServer) -> dict:
    """The fields of a system that is the JSON:API server."""
    return dict(
        name="People",
        slug="people",
        connector="jsonapi",
        base_url=server.url,
        auth_scheme=AuthScheme.BEARER,
        credentials={"token": TOKEN},
        connect_timeout=1.0,
        read_timeout=2.0,
    )


def jsonapi(server: JsonApiServer, **overrides):
    return connector_for(System(**{**people_system(server), **overrides}))


def push(connector, operation: str, record: dict | None = None, target_id: str | None = None):
    return connector.push(
        operation=operation,
        resource="/people",
        record=record or {},
        target_id=target_id,
        idempotency_key="delivery-1",
    )


def failure(call) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        call()
    return caught.value


# -- push --------------------------------------------------------------------------------------------


def test_it_creates_a_resource_and_reads_its_id_from_data_id(server):
    result = push(jsonapi(server), "create", {"email": "ann@example.com", "name": "Ann"})
    assert (result.target_id, result.status) == ("1", 201)
    sent = server.received[-1]
    assert (sent["method"], sent["path"]) == ("POST", "/people")
    assert sent["body"] == {
        "data": {"type": "people", "attributes": {"email": "ann@example.com", "name": "Ann"}}
    }
    assert sent["headers"]["Content-Type"] == MEDIA_TYPE and sent["headers"]["Accept"] == MEDIA_TYPE
    assert sent["headers"]["Idempotency-Key"] == "delivery-1"
    assert server.store["people"]["1"]["email"] == "ann@example.com"
    assert TOKEN not in json.dumps(result.exchange.request_summary())


def test_it_updates_a_resource_with_patch_naming_its_type_and_id(server):
    rid = server.seed("people", {"email": "ann@example.com", "name": "Ann"})
    result = push(jsonapi(server), "update", {"name": "Ann Lee"}, target_id=rid)
    assert (result.target_id, result.status) == (rid, 200)
    sent = server.received[-1]
    assert (sent["method"], sent["path"]) == ("PATCH", f"/people/{rid}")
    assert sent["body"] == {"data": {"type": "people", "id": rid, "attributes": {"name": "Ann Lee"}}}
    assert server.store["people"][rid]["name"] == "Ann Lee"
    assert server.store["people"][rid]["email"] == "ann@example.com"


def test_it_deletes_a_resource_and_takes_one_already_gone_as_done(server):
    rid = server.seed("people", {"email": "ann@example.com"})
    connector = jsonapi(server)
    first = push(connector, "delete", target_id=rid)
    again = push(connector, "delete", target_id=rid)
    assert (first.status, again.status) == (204, 404)
    assert first.target_id == again.target_id == rid
    assert server.store["people"] == {}


def test_a_created_resource_without_an_id_is_a_success_with_the_id_unknown(server):
    # The system said 201: the record exists. Raising would make the hub create it a second time.
    server.fail_next(201, body={"data": {"type": "people", "attributes": {"email": "ann@example.com"}}})
    result = push(jsonapi(server), "create", {"email": "ann@example.com"})
    assert (result.status, result.target_id) == (201, "")


def test_it_looks_records_up_with_a_filter_and_proposes_the_filter(server):
    server.seed("people", {"email": "ann@example.com"})
    server.seed("people", {"email": "bob@example.com"})
    connector = jsonapi(server)
    assert connector.lookup_parameter("email") == "filter[email]"
    found = connector.lookup(
        resource="/people", param="filter[email]", field="email", value="bob@example.com"
    )
    assert len(found.target_ids) == 1 and found.target_ids[0] in server.store["people"]


# -- fetch -------------------------------------------------------------------------------------------


def test_it_fetches_every_page_by_following_links_next(server):
    for n in range(5):
        server.seed("people", {"email": f"p{n}@example.com"})
    connector = jsonapi(server)
    pages, token = [], None
    while True:
        page = connector.fetch(resource="/people", since=None, page_token=token, limit=2)
        pages.append(page.records)
        token = page.next_token
        if not token:
            break
    assert [len(records) for records in pages] == [2, 2, 1]
    assert [r["email"] for records in pages for r in records] == [f"p{n}@example.com" for n in range(5)]
    assert pages[0][0] == {"id": "1", "email": "p0@example.com", "updated_at": "2026-01-01T00:00:01Z"}
    assert "page%5Bsize%5D=2" in server.received[0]["path"]


def test_it_asks_only_for_records_changed_since_the_cursor(server):
    server.seed("people", {"email": "old@example.com", "updated_at": "2026-01-01T00:00:00Z"})
    server.seed("people", {"email": "new@example.com", "updated_at": "2026-03-01T00:00:00Z"})
    page = jsonapi(server).fetch(resource="/people", since="2026-02-01T00:00:00Z", page_token=None, limit=10)
    assert [r["email"] for r in page.records] == ["new@example.com"] and page.next_token is None
    assert "filter%5Bupdated_since%5D=2026-02-01" in server.received[-1]["path"]


def test_it_refuses_to_follow_a_next_link_to_another_host(server):
    server.fail_next(200, body={"data": [], "links": {"next": "http://elsewhere.example.com/people?page=2"}})
    connector = jsonapi(server)
    page = connector.fetch(resource="/people", since=None, page_token=None, limit=2)
    error = failure(
        lambda: connector.fetch(resource="/people", since=None, page_token=page.next_token, limit=2)
    )
    assert error.error_class == ErrorClass.MALFORMED_RESPONSE and "elsewhere.example.com" in error.message
    assert len(server.received) == 1


def test_a_list_without_a_data_array_is_a_malformed_answer(server):
    server.fail_next(200, body={"data": {"type": "people", "id": "1"}})
    error = failure(lambda: jsonapi(server).fetch(resource="/people", since=None, page_token=None, limit=2))
    assert error.error_class == ErrorClass.MALFORMED_RESPONSE


# -- check -------------------------------------------------------------------------------------------


def test_check_says_connected_when_the_credentials_are_accepted(server):
    result = jsonapi(server).check(path="/people")
    assert (result.reachable, result.authenticated, result.status) == (True, True, 200)
    assert "page%5Bsize%5D=1" in server.received[-1]["path"]


def test_check_says_the_credentials_were_refused(server):
    result = jsonapi(server, credentials={"token": "wrong-token"}).check(path="/people")
    assert (result.reachable, result.authenticated, result.status) == (True, False, 401)


def test_check_says_when_nothing_answers():
    system = System(connector="jsonapi", base_url="http://127.0.0.1:9", connect_timeout=0.5, read_timeout=0.5)
    result = connector_for(system).check(path="/people")
    assert result.reachable is False and result.authenticated is None


# -- failures -----------------------------------------------------------------------------------------


def test_a_refused_token_is_an_auth_failure_that_pauses_the_flow(server):
    error = failure(
        lambda: push(jsonapi(server, credentials={"token": "wrong"}), "create", {"email": "a@b.c"})
    )
    assert (error.error_class, error.status) == (ErrorClass.AUTH_FAILURE, 401)
    assert error.error_class.pauses_flow and "The bearer token was not accepted." in error.message


def test_an_invalid_record_is_rejected_in_the_servers_own_words(server):
    error = failure(lambda: push(jsonapi(server), "create", {"name": "No Email"}))
    assert (error.error_class, error.status) == (ErrorClass.REJECTED, 422)
    assert "email is required. (at /data/attributes/email)" in error.message
    assert not error.error_class.retryable


@pytest.mark.parametrize(
    "status, headers, error_class, retry_after",
    [
        (401, {}, ErrorClass.AUTH_FAILURE, None),
        (422, {}, ErrorClass.REJECTED, None),
        (500, {}, ErrorClass.SERVER_ERROR, None),
        (429, {"Retry-After": "7"}, ErrorClass.RATE_LIMITED, 7.0),
    ],
)
def test_it_classifies_what_the_server_answers(server, status, headers, error_class, retry_after):
    server.fail_next(status, headers)
    error = failure(lambda: push(jsonapi(server), "create", {"email": "ann@example.com"}))
    assert (error.error_class, error.status, error.retry_after) == (error_class, status, retry_after)
    assert f"Canned failure {status}" in error.message
    assert error.exchange is not None and error.exchange.status == status


# -- through the hub -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_hub_creates_then_updates_a_record_in_a_jsonapi_system(server):
    source = SystemFactory(name="HR", slug="hr")
    target = SystemFactory(**people_system(server))
    employee = model_with_fields(
        source,
        "Employee",
        "/employees",
        "id! email! name",
    )
    person = model_with_fields(target, "Person", "/people", "email! name")
    flow = flow_with_mapping(
        source_model=employee,
        target_model=person,
        rules=[{"target": "email", "source": "email"}, {"target": "name", "source": "name"}],
    )
    for n, name in ((1, "Ann"), (2, "Ann Lee")):
        payload = {
            "id": f"evt_{n}",
            "type": "employee.hired",
            "data": {"id": "emp_1", "email": "ann@example.com", "name": name},
        }
        events_store([IncomingEvent(source, "employee.hired", payload["id"], payload)])
        drain_all()
    assert [r["method"] for r in server.received] == ["POST", "PATCH"]
    assert server.store["people"]["1"]["name"] == "Ann Lee"
    assert RecordLink.objects.get(flow=flow, source_id="emp_1").target_id == "1"
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
