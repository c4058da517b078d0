"""Schema drift tests: HR's signed webhooks reach the hub's real webhook view, the hub delivers
to the sandbox inventory on loopback, and HR's records change shape along the way."""

import json

from connectors.signatures import sign
from hub.models import Delivery, DeliveryStatus, Flow
from mappings.models import Field
from tests.sandbox_helpers import hr_to_inventory_accounts, records


def hr_flow(sandbox, **options) -> Flow:
    """HR employees become inventory accounts; HR's model also knows department and grade."""
    flow = hr_to_inventory_accounts(sandbox, **options)
    flow.source_model.fields.filter(path="department").update(required=True)  # HR always sends it
    Field.objects.create(model=flow.source_model, path="grade", type="integer", required=True, position=9)
    return flow


def employee(n: int, **changes) -> dict:
    """Employee n as HR sends it; `changes` adds fields, or takes one away with None as its value
    under the key "-name"."""
    record = {
        "id": f"emp_{n}",
        "first_name": "Ann",
        "last_name": f"Lee{n}",
        "email": f"ann.lee{n}@example.com",
        "department": "Operations",
        "grade": 3,
    }
    for key, value in changes.items():
        if key.startswith("-"):
            record.pop(key[1:])
        else:
            record[key] = value
    return record


def hired(client, flow: Flow, n: int, **changes) -> dict:
    """HR's signed webhook about employee n, posted to the hub's webhook URL."""
    system = flow.source_system
    body = json.dumps({"id": f"evt_{n}", "type": "employee.hired", "data": employee(n, **changes)}).encode()
    response = client.post(
        f"/hooks/{system.slug}/",
        data=body,
        content_type="application/json",
        headers={"X-Signature": sign(system, body)},
    )
    assert response.status_code == 202, response.content
    return response.json()


def statuses(flow: Flow) -> dict[str, int]:
    found: dict[str, int] = {}
    for status in Delivery.objects.filter(flow=flow).values_list("status", flat=True):
        found[status] = found.get(status, 0) + 1
    return found


def accounts(sandbox) -> list[dict]:
    return records(sandbox, "inventory", "accounts")


def assert_each_delivered_once(flow: Flow, sandbox, expected: int) -> None:
    """Every event of the flow reached inventory exactly once: one succeeded delivery each, one
    attempt each, and as many accounts as events."""
    deliveries = Delivery.objects.filter(flow=flow)
    assert deliveries.count() == expected
    assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
    assert set(deliveries.values_list("attempts", flat=True)) == {1}
    assert len(accounts(sandbox)) == expected
