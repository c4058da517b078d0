"""Alerting tests: a flow, a webhook receiver on loopback, the two channels, and evaluation with
the pipeline's clock."""

import pytest

from hub.alerts.services import channel_create
from tests.alerts.helpers import SIGNING_SECRET, Receiver
from tests.factories import crm_and_books, flow_with_mapping, model_with_fields


@pytest.fixture
def receiver():
    box = Receiver()
    yield box
    box.stop()


@pytest.fixture
def flow(db):
    crm, books = crm_and_books()
    return flow_with_mapping(
        source_model=model_with_fields(crm, "Deal", "/deals", "id! amount:number"),
        target_model=model_with_fields(books, "Invoice", "/invoices", "total:number!"),
        rules=[{"target": "total", "source": "amount"}],
        event_type="deal.won",
        name="Deals to invoices",
    )


@pytest.fixture
def channels(db, receiver):
    """Ops' two channels: an email list and a chat webhook on the loopback receiver."""
    email = channel_create(kind="email", name="Ops email", values={"to": "ops@example.com"}, actor=None)
    webhook = channel_create(
        kind="webhook",
        name="Ops chat",
        values={"url": receiver.url, "signing_secret": SIGNING_SECRET},
        actor=None,
    )
    return email, webhook
