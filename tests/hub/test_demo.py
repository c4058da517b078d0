"""The demo's own examples work: a won deal reduces stock, a payment is recorded in accounting,
a new employee is provisioned in the other systems (and the scheduled invoice sweep runs)."""

import pytest
import requests

from connectors.sandbox import DEMO_CREDENTIALS
from hub.models import Delivery, DeliveryStatus, Flow
from hub.pipeline.polling import flow_poll
from tests.conftest import wait_for
from tests.sandbox_helpers import demo_on_sandbox, drain_all, records

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(fresh_sandbox, live_server):
    demo_on_sandbox(fresh_sandbox, live_server.url, duplicate_rate=0.5)
    return fresh_sandbox


def finished(flow_name: str, count: int):
    return lambda: (
        Delivery.objects.filter(flow__name=flow_name, status=DeliveryStatus.SUCCEEDED).count() >= count
    )


def test_it_runs_the_demo_flows_end_to_end(demo):
    crm = {"X-Api-Key": DEMO_CREDENTIALS["crm"]["api_key"]}
    deal = requests.post(
        f"{demo.url('crm')}/deals",
        headers=crm,
        timeout=5,
        json={
            "title": "Refit",
            "amount": 1250.5,
            "currency": "EUR",
            "stage": "proposal",
            "customer": {"email": "ann@example.com", "name": "Ann"},
            "lines": [
                {"sku": "sku-desk", "quantity": 2, "unit_price": 400},
                {"sku": "SKU-LAMP", "quantity": 1, "unit_price": 50.5},
            ],
        },
    ).json()
    requests.patch(f"{demo.url('crm')}/deals/{deal['id']}", headers=crm, json={"stage": "won"}, timeout=5)
    pay = DEMO_CREDENTIALS["payments"]
    requests.post(
        f"{demo.url('payments')}/charges",
        auth=(pay["username"], pay["password"]),
        timeout=5,
        json={
            "amount": 125050,
            "currency": "eur",
            "customer_email": " Ann@Example.com ",
            "description": "Order",
            "status": "succeeded",
            "paid_at": "2026-11-23T10:00:00Z",
        },
    )
    hr = {"Authorization": f"Bearer {DEMO_CREDENTIALS['hr']['token']}"}
    for first, department in (("Sam", "Sales"), ("Olu", "Operations")):
        requests.post(
            f"{demo.url('hr')}/employees",
            headers=hr,
            timeout=5,
            json={
                "first_name": first,
                "last_name": "Diaz",
                "email": f"{first}.Diaz@Example.com",
                "department": department,
                "title": "Specialist",
                "start_date": "2026-12-01",
                "status": "hired",
            },
        )

    def delivered():
        drain_all()
        return all(
            finished(name, n)()
            for name, n in [
                ("Won deals reduce stock", 1),
                ("Payments recorded in accounting", 1),
                ("New employees get a CRM login", 2),
                ("New employees become payees", 2),
                ("Operations staff get inventory accounts", 1),
            ]
        )

    wait_for(delivered, timeout=30, message="the demo flows to deliver")
    stock = {p["sku"]: p["stock"] for p in records(demo, "inventory", "products")}
    assert (stock["SKU-DESK"], stock["SKU-LAMP"]) == (98, 99)
    payments = records(demo, "accounting", "payments")
    assert [(p["amount_minor"], p["currency"], p["payer_email"]) for p in payments] == [
        (125050, "EUR", "ann@example.com")
    ]
    users = {u["email"]: (u["full_name"], u["role"]) for u in records(demo, "crm", "users")}
    assert users == {
        "sam.diaz@example.com": ("Sam Diaz", "sales_rep"),
        "olu.diaz@example.com": ("Olu Diaz", "viewer"),
    }
    assert len(records(demo, "accounting", "payees")) == 2
    assert [a["email"] for a in records(demo, "inventory", "accounts")] == ["olu.diaz@example.com"]

    invoices_flow = Flow.objects.get(name="Won deals invoiced (every 15 minutes)")
    assert flow_poll(flow=invoices_flow).new_events == 1  # the one deal in the CRM
    drain_all()
    invoices = records(demo, "accounting", "invoices")
    assert [(i["number"], i["total_minor"]) for i in invoices] == [(f"INV-{deal['id']}", 125050)]
