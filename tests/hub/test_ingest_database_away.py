# ruff: noqa: F811
"""Ingest while the database is away: 503 with Retry-After, never a 500, and a retry stores the
event once. (tests/hub/test_database_restart.py restarts a real PostgreSQL under load.)"""

from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection

from hub.models import Event

# The fixtures are shared with test_ingest by importing them by name.
from tests.hub.test_ingest import crm, deal_flow, event_body, post_hook, publish, publisher_client  # noqa: F401

pytestmark = pytest.mark.django_db


@contextmanager
def database_away(statement: str = ""):
    """Every statement (or those starting with `statement`) fails as on a server that went away."""

    def fail(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(statement):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail):
        yield


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    assert "database is unavailable" in response.json()["error"]


@pytest.mark.parametrize("statement", ["", "INSERT"])
def test_a_webhook_is_answered_503_with_retry_after_and_stored_once_when_sent_again(
    client, crm, deal_flow, statement
):
    with database_away(statement):
        assert_unavailable(post_hook(client, crm, event_body()))
    assert Event.objects.count() == 0
    assert post_hook(client, crm, event_body()).status_code == 202
    assert post_hook(client, crm, event_body()).json()["duplicate"] is True
    assert Event.objects.count() == 1


@pytest.mark.parametrize("statement", ["", "INSERT"])
def test_a_publish_is_answered_503_with_retry_after_and_stored_once_when_sent_again(
    publisher_client, crm, deal_flow, statement
):
    body = {"system": "crm", "type": "deal.won", "idempotency_key": "k1", "payload": {"data": {"id": "d1"}}}
    with database_away(statement):
        assert_unavailable(publish(publisher_client, body))
    assert Event.objects.count() == 0
    assert publish(publisher_client, body).status_code == 202
    assert publish(publisher_client, body).json()["duplicate"] is True
    assert Event.objects.count() == 1
