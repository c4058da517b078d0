"""A flow's test event: a record made from the source model, stored through ingest for that flow
only, marked as a test, and delivered by the real pipeline to the real (sandbox) target."""

import pytest

from hub.models import AuditEntry, Delivery, DeliveryStatus, Event, Flow, FlowState
from hub.pipeline.drain import deliveries_process_batch
from hub.services.flow_test_events import flow_test_event_send, sample_record_build
from hub.services.flows import flow_delete_blockers, flow_enable
from tests.factories import DataModelFactory, SystemFactory, model_with_fields
from tests.sandbox_helpers import demo_on_sandbox, drain_all, hr_to_inventory_accounts, records

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_record_from_the_sample_gets_a_fresh_id_and_keeps_the_rest():
    model = DataModelFactory(sample={"id": "emp_1", "email": "sam@example.com", "tags": ["a"]})
    first, second = sample_record_build(model=model), sample_record_build(model=model)
    assert first["id"].startswith("test-") and first["id"] != second["id"]
    assert {k: v for k, v in first.items() if k != "id"} == {"email": "sam@example.com", "tags": ["a"]}
    assert model.sample["id"] == "emp_1"  # the sample itself is untouched


def test_a_model_without_a_sample_gets_a_value_of_the_right_type_for_every_field():
    model = model_with_fields(
        SystemFactory(),
        "Deal",
        "/deals",
        "id! amount:number qty:integer paid:boolean on:date at:datetime customer:object customer.email "
        "currency lines:array lines[].sku lines[].quantity:integer",
    )
    record = sample_record_build(model=model)
    assert record["id"].startswith("test-")
    assert (record["amount"], record["qty"], record["paid"], record["currency"]) == (10.0, 1, True, "EUR")
    assert len(record["on"]) == 10 and record["at"].endswith("Z")
    assert record["customer"] == {"email": "test.person@example.com"}
    assert record["lines"] == [{"sku": "Test sku", "quantity": 1}]


def test_it_is_delivered_through_the_pipeline_to_this_flow_only_and_marked_as_a_test(fresh_sandbox, personas):
    flow = hr_to_inventory_accounts(fresh_sandbox)
    flow.source_model.sample = {"id": "emp_9", "first_name": "Ann", "last_name": "Lee", "email": "Ann@X.io"}
    flow.source_model.save()
    other = Flow.objects.create(
        **{
            f: getattr(flow, f)
            for f in ("source_system", "source_model", "target_system", "target_model", "mapping")
        },
        name="another flow from HR",
        event_type="*",
    )
    sent = flow_test_event_send(flow=flow, actor=personas["admin"])
    assert sent.event.origin == Event.Origin.TEST and sent.event.get_origin_display().startswith("Test event")
    assert sent.event.record_id == sent.record["id"] and sent.event.record()["email"] == "Ann@X.io"
    assert list(Delivery.objects.filter(event=sent.event).values_list("flow", flat=True)) == [flow.pk]
    assert not Delivery.objects.filter(flow=other).exists()
    assert not sent.held
    entry = AuditEntry.objects.get(verb="send_test_event")
    assert (entry.target_id, entry.actor, entry.diff["event"]) == (
        str(flow.pk),
        personas["admin"],
        str(sent.event.pk),
    )

    drain_all()
    sent.delivery.refresh_from_db()
    assert sent.delivery.status == DeliveryStatus.SUCCEEDED
    assert [a["email"] for a in records(fresh_sandbox, "inventory", "accounts")] == ["ann@x.io"]


def test_a_draft_flow_keeps_its_test_event_until_it_is_enabled(fresh_sandbox, personas):
    flow = hr_to_inventory_accounts(fresh_sandbox, state=FlowState.DRAFT)
    sent = flow_test_event_send(flow=flow, actor=personas["admin"])
    assert sent.held
    assert not deliveries_process_batch()  # nothing to claim: a draft's deliveries wait
    sent.delivery.refresh_from_db()
    assert sent.delivery.status == DeliveryStatus.PENDING
    assert flow_delete_blockers(flow) == []  # a held test event does not keep a draft from going
    assert records(fresh_sandbox, "inventory", "accounts") == []

    flow_enable(flow=flow, actor=personas["admin"])
    drain_all()
    sent.delivery.refresh_from_db()
    assert sent.delivery.status == DeliveryStatus.SUCCEEDED


def test_the_record_is_fitted_to_a_plain_filter_so_the_test_is_not_filtered_out(fresh_sandbox, personas):
    demo_on_sandbox(fresh_sandbox)
    flow = Flow.objects.get(name="Operations staff get inventory accounts")  # department is "Operations"
    sent = flow_test_event_send(flow=flow, actor=personas["admin"])
    assert sent.record["department"] == "Operations"
    assert sent.delivery.status == DeliveryStatus.PENDING
    drain_all()
    assert [a["email"] for a in records(fresh_sandbox, "inventory", "accounts")] == ["sam@example.com"]


def test_a_filter_it_cannot_satisfy_is_said_as_filtered_out(fresh_sandbox, personas):
    flow = hr_to_inventory_accounts(
        fresh_sandbox, filter={"path": "department", "op": "ne", "value": "Test department"}
    )
    sent = flow_test_event_send(flow=flow, actor=personas["admin"])
    assert sent.delivery.status == DeliveryStatus.SKIPPED
    assert sent.delivery.last_error.startswith("filtered out")
