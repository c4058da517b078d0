"""A source starts sending a field renamed, then a type changed: the hub notices on the first such
event, records the change, alerts, and holds, dead-letters or carries on as the flow's drift policy
says, with nothing lost; after "Update the model" (and a mapping fix) and a release, every held
event is delivered exactly once."""

import pytest

from dlq.models import DeadLetter
from dlq.services import dead_letter_replay
from hub.alerts.models import Alert
from hub.models import AuditEntry, DeliveryStatus, DriftHold, DriftPolicy, Event, SchemaDrift
from hub.pipeline.drift import stats
from hub.pipeline.subscriptions import flow_needs
from hub.selectors.drift import drift_breaks
from hub.services.drift import drift_dismiss, drift_model_update, drift_release
from hub.services.mappings import mapping_version_save
from tests.alerts.helpers import evaluate, only_rule
from tests.drift.helpers import accounts, assert_each_delivered_once, hired, hr_flow, statuses
from tests.sandbox_helpers import drain_all

pytestmark = pytest.mark.django_db


def drift(kind: str) -> SchemaDrift:
    return SchemaDrift.objects.get(kind=kind)


def test_it_holds_renamed_then_retyped_records_and_delivers_each_once_after_the_update(
    client, fresh_sandbox, personas
):
    flow = hr_flow(fresh_sandbox, drift_policy=DriftPolicy.HOLD)
    only_rule(flow, "schema_drift")
    for n in (1, 2):
        hired(client, flow, n)
    drain_all()
    assert len(accounts(fresh_sandbox)) == 2

    for n in (3, 4, 5):  # HR renames "department" to "team"
        hired(client, flow, n, **{"-department": None, "team": "Ops"})
    for n in (6, 7):  # ... then sends the grade as text
        hired(client, flow, n, **{"-department": None, "team": "Ops", "grade": "A7"})
    drain_all()
    assert Event.objects.count() == 7
    assert statuses(flow) == {DeliveryStatus.SUCCEEDED: 2, DeliveryStatus.HELD: 5}
    assert len(accounts(fresh_sandbox)) == 2  # nothing held went out

    renamed, retyped = drift("renamed"), drift("type_changed")
    assert (renamed.path, renamed.new_path, renamed.events, renamed.samples) == (
        "department",
        "team",
        5,
        ["Ops"],
    )
    assert (retyped.path, retyped.expected_type, retyped.seen_type) == ("grade", "integer", "string")
    assert (retyped.events, retyped.samples) == (2, ["A7"])
    assert renamed.first_seen_at <= retyped.first_seen_at <= retyped.last_seen_at
    assert stats.comparisons == 3  # the original shape, the renamed one, the retyped one

    fired = evaluate().fired
    assert len(fired) == 1
    assert Alert.objects.get().summary.startswith("5 events held for review: ")

    admin = personas["admin"]
    drift_model_update(drift=renamed, actor=admin)
    drift_model_update(drift=retyped, actor=admin)
    fields = dict(flow.source_model.fields.values_list("path", "type"))
    assert "department" not in fields and fields["team"] == "string" and fields["grade"] == "string"
    assert drift_release(drift=renamed, actor=admin) == 5
    assert drift_release(drift=retyped, actor=admin) == 0  # released already, once
    drain_all()
    hired(client, flow, 8, **{"-department": None, "team": "Ops", "grade": "B1"})  # the new shape fits
    drain_all()
    assert_each_delivered_once(flow, fresh_sandbox, 8)
    assert not DriftHold.objects.filter(released_at__isnull=True).exists()
    evaluate()
    assert not Alert.objects.firing().exists()
    verbs = set(AuditEntry.objects.values_list("verb", flat=True))
    assert {"drift_apply", "drift_release", "rename_field", "update_field"} <= verbs


def test_it_dead_letters_drifted_records_for_ops_to_replay(client, fresh_sandbox, personas):
    flow = hr_flow(fresh_sandbox, drift_policy=DriftPolicy.DEAD_LETTER)
    hired(client, flow, 1)
    for n in (2, 3):
        hired(client, flow, n, **{"-department": None, "team": "Ops"})
    drain_all()
    assert statuses(flow) == {DeliveryStatus.SUCCEEDED: 1, DeliveryStatus.DEAD: 2}
    letters = list(DeadLetter.objects.order_by("pk"))
    assert [letter.error_class for letter in letters] == ["schema_drift", "schema_drift"]
    assert "department" in letters[0].reason and "team" in letters[0].reason

    drift_model_update(drift=drift("renamed"), actor=personas["admin"])
    for letter in letters:
        dead_letter_replay(letter=letter, actor=personas["ops"])
    drain_all()
    assert_each_delivered_once(flow, fresh_sandbox, 3)


def test_it_carries_on_under_report_but_holds_when_a_mapped_field_goes(client, fresh_sandbox, personas):
    flow = hr_flow(fresh_sandbox)  # policy "report", the default
    assert flow.drift_policy == DriftPolicy.REPORT
    only_rule(flow, "schema_drift")
    hired(client, flow, 1, **{"-department": None, "team": "Ops"})  # not mapped: carry on
    drain_all()
    assert statuses(flow) == {DeliveryStatus.SUCCEEDED: 1}
    assert drift("renamed").events == 1

    for n in (2, 3):  # the mapping reads "email": HR now calls it "email_address"
        hired(client, flow, n, **{"-email": None, "email_address": f"new{n}@example.com"})
    drain_all()
    assert statuses(flow) == {DeliveryStatus.SUCCEEDED: 1, DeliveryStatus.HELD: 2}
    gone = SchemaDrift.objects.get(path="email")
    assert (gone.kind, gone.new_path, drift_breaks(gone, flow_needs(flow))) == (
        "renamed",
        "email_address",
        True,
    )
    assert len(evaluate().fired) == 1

    admin = personas["admin"]
    drift_model_update(drift=gone, actor=admin)
    rules = [dict(rule) for rule in flow.mapping.rules]
    for rule in rules:
        if rule.get("source") == "email":
            rule["source"] = "email_address"
    mapping_version_save(mapping=flow.mapping, rules=rules, actor=admin, comment="HR renamed email")
    assert drift_release(drift=gone, actor=admin) == 2
    drain_all()
    assert_each_delivered_once(flow, fresh_sandbox, 3)
    emails = sorted(account["email"] for account in accounts(fresh_sandbox))
    assert emails == ["ann.lee1@example.com", "new2@example.com", "new3@example.com"]


def test_it_adds_new_fields_to_the_model_under_extend(client, fresh_sandbox):
    flow = hr_flow(fresh_sandbox, drift_policy=DriftPolicy.EXTEND)
    hired(client, flow, 1, phone="+44 20 7946 0000")
    drain_all()
    assert statuses(flow) == {DeliveryStatus.SUCCEEDED: 1}
    added = drift("added")
    assert (added.path, added.status) == ("phone", SchemaDrift.Status.APPLIED)
    assert flow.source_model.fields.filter(path="phone", type="string", required=False).exists()
    entry = AuditEntry.objects.get(verb="add_field")
    assert entry.actor_name == "hub" and entry.diff["field"]["path"] == "phone"


def test_a_dismissed_change_no_longer_holds(client, fresh_sandbox, personas):
    flow = hr_flow(fresh_sandbox, drift_policy=DriftPolicy.HOLD)
    hired(client, flow, 1, nickname="Annie")
    drain_all()
    assert statuses(flow) == {DeliveryStatus.HELD: 1}
    drift_dismiss(drift=drift("added"), actor=personas["admin"])
    hired(client, flow, 2, nickname="Bee")
    assert drift_release(drift=drift("added"), actor=personas["admin"]) == 1
    drain_all()
    assert_each_delivered_once(flow, fresh_sandbox, 2)


def test_a_field_a_template_or_the_filter_reads_is_needed_too(client, fresh_sandbox, personas):
    """Nothing maps last_name directly: the name's template reads it. HR calling it surname would
    otherwise send accounts named "Ann " without anyone noticing."""
    flow = hr_flow(fresh_sandbox)
    flow.filter = {"path": "grade", "op": "gte", "value": 1}
    flow.save(update_fields=["filter"])
    assert {"last_name", "first_name", "grade"} <= flow_needs(flow)
    hired(client, flow, 1, **{"-last_name": None, "surname": "Lee"})
    drain_all()
    assert statuses(flow) == {DeliveryStatus.HELD: 1}
    renamed = SchemaDrift.objects.get(path="last_name")
    assert (renamed.kind, renamed.new_path) == ("renamed", "surname")
    assert accounts(fresh_sandbox) == []
