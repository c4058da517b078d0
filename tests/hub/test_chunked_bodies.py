"""A vendor that streams its webhook (Transfer-Encoding: chunked, no Content-Length) is read whole
by the web server's WSGI application, as gunicorn hands it over; one too large still gets 413."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from connectors.signatures import sign
from hub.models import Event
from hub.wsgi import application
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """As Django's test client does: the handler would close the test's open transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def crm():
    crm = SystemFactory(name="CRM", slug="crm")
    flow_with_mapping(
        source_model=model_with_fields(crm, "Deal", "/deals", "id! stage"),
        target_model=model_with_fields(
            SystemFactory(name="Books", slug="books"), "Invoice", "/invoices", "ref!"
        ),
        event_type="deal.won",
        rules=[{"target": "ref", "source": "id"}],
    )
    return crm


def post_chunked(path: str, body: bytes, headers: dict[str, str]) -> tuple[str, dict]:
    """The request as gunicorn's worker passes a chunked one on: decoded, terminated, no length."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True,
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }  # fmt: skip
    setup_testing_defaults(environ)
    answer = {}
    chunks = application(environ, lambda status, _headers: answer.setdefault("status", status))
    return answer["status"], json.loads(b"".join(chunks))


def test_it_reads_a_chunked_webhook_whole(crm):
    body = b'{"id": "evt-1", "type": "deal.won", "data": {"id": "deal-1", "stage": "won"}}'
    status, answer = post_chunked("/hooks/crm/", body, {"X-Signature": sign(crm, body)})
    assert status.startswith("202"), answer
    assert Event.objects.get().payload["data"]["id"] == "deal-1"


def test_it_refuses_a_chunked_webhook_past_the_limit_with_413(crm):
    body = b'{"id": "evt-2", "data": "' + b"x" * settings.HUB_MAX_WEBHOOK_BYTES + b'"}'
    status, answer = post_chunked("/hooks/crm/", body, {"X-Signature": sign(crm, body)})
    assert status.startswith("413") and "limit" in answer["error"]
    assert not Event.objects.exists()
