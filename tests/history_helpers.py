"""A shop's orders in the sandbox, for the sync history and audit log tests: each paid order in
the CRM becomes an invoice in accounting, and big orders also open an account in inventory (a
filter the usual order does not pass, so its delivery there is "filtered out")."""

from dlq.models import DeadLetter
from dlq.services import dead_letter_replay
from hub.models import Flow
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.factories import flow_with_mapping, model_with_fields
from tests.sandbox_helpers import drain_all, sandbox_system

BIG_ORDER = 50_000


def shop_flows(sandbox) -> tuple[Flow, Flow]:
    crm = sandbox_system(sandbox, "crm")
    order = model_with_fields(crm, "Order", "/orders", "id! number! customer.email! total_minor:integer!")
    invoice = model_with_fields(
        sandbox_system(sandbox, "accounting"),
        "Invoice",
        "/invoices",
        "customer_email! total_minor:integer! currency! number",
    )
    account = model_with_fields(sandbox_system(sandbox, "inventory"), "Account", "/accounts", "email! role")
    invoices = flow_with_mapping(
        name="Orders to invoices",
        source_model=order,
        target_model=invoice,
        event_type="order.paid",
        max_attempts=1,
        rules=[
            {"target": "customer_email", "source": "customer.email"},
            {"target": "total_minor", "source": "total_minor"},
            {"target": "currency", "constant": "EUR"},
            {"target": "number", "source": "number"},
        ],
    )
    accounts = flow_with_mapping(
        name="Big buyers to accounts",
        source_model=order,
        target_model=account,
        event_type="order.paid",
        filter={"path": "total_minor", "op": "gte", "value": BIG_ORDER},
        rules=[{"target": "email", "source": "customer.email", "transforms": [{"name": "lower"}]}],
    )
    return invoices, accounts


def order_event(number: int, *, email: str = "", total_minor: int = 12_900) -> dict:
    record = {
        "id": f"ord_{number}",
        "number": str(number),
        "customer": {"email": email or f"buyer{number}@example.com"},
        "total_minor": total_minor,
    }
    return {"id": f"evt_{number}", "type": "order.paid", "data": record}


def orders_paid(flow: Flow, *events: dict) -> None:
    events_store([IncomingEvent(flow.source_system, "order.paid", e["id"], e) for e in events])
    drain_all()


def order_1042_story(sandbox, operator) -> dict:
    """Order 1042 is invoiced (and filtered out of inventory); order 1043 has a bad email, is
    dead-lettered, then fixed and replayed by `operator`; order 77 is unrelated."""
    invoices, accounts = shop_flows(sandbox)
    orders_paid(invoices, order_event(1042), order_event(77), order_event(1043, email="not an email"))
    letter = DeadLetter.objects.get()
    fixed = {**letter.delivery.source_record(), "customer": {"email": "buyer1043@example.com"}}
    dead_letter_replay(letter=letter, actor=operator, corrected_record=fixed, note="typo in the email")
    drain_all()
    return {"invoices": invoices, "accounts": accounts, "letter": letter}
