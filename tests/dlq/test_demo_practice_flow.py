"""The demo has one flow that fails now and then, so ops can practise on real dead letters: a won
deal typed with a lowercase SKU is refused by inventory; the same deal with the SKU fixed goes.
A few deals of the demo activity are enough for the inbox and the alerts to show something."""

import random
import re

import pytest

from connectors.models import System
from dlq.models import DeadLetter
from dlq.services import dead_letter_replay
from hub.alerts.evaluation import alerts_evaluate
from hub.alerts.models import Alert, AlertRule
from hub.demo import demo_seed
from hub.demo_actions import demo_action_run
from hub.models import AuditEntry, Delivery, DeliveryStatus, Flow
from hub.pipeline.ingest import IncomingEvent, events_store
from mappings.models import DataModel, Field, Mapping, MappingVersion
from tests.sandbox_helpers import demo_on_sandbox, drain_all, records

pytestmark = pytest.mark.django_db(transaction=True)
PRACTICE = "Won deals checked against stock"


def won_deal(n: int, sku: str) -> IncomingEvent:
    deal = {"id": f"deal_{n}", "title": "Refit", "amount": 10.0, "currency": "EUR", "stage": "won",
            "lines": [{"sku": sku, "quantity": 2, "unit_price": 5.0}]}  # fmt: skip
    return IncomingEvent(System.objects.get(slug="crm"), "deal.won", f"e{n}", {"id": f"e{n}", "data": deal})


def test_the_practice_flow_fails_for_a_lowercase_sku_and_goes_once_fixed(fresh_sandbox, personas):
    demo_seed(
        urls={slug: fresh_sandbox.url(slug) for slug in ("crm", "accounting", "inventory", "hr", "payments")}
    )
    events_store([won_deal(1, "SKU-DESK"), won_deal(2, "sku-lamp")])
    drain_all()
    letter = DeadLetter.objects.get(flow__name=PRACTICE)
    assert letter.record_key == "deal_2" and letter.error_class == "rejected"
    assert "unknown sku sku-lamp" in letter.reason
    assert Delivery.objects.get(flow__name=PRACTICE, record_key="deal_1").status == DeliveryStatus.SUCCEEDED

    fixed = {
        **letter.delivery.source_record(),
        "lines": [{"sku": "SKU-LAMP", "quantity": 2, "unit_price": 5.0}],
    }
    dead_letter_replay(
        letter=letter, actor=personas["ops"], corrected_record=fixed, note="upper-cased the SKU"
    )
    drain_all()
    checks = [a for a in records(fresh_sandbox, "inventory", "adjustments") if a["reason"] == "stock check"]
    assert sorted(a["reference"] for a in checks) == ["check-deal_1", "check-deal_2"]
    assert all(line["quantity"] == 0 for a in checks for line in a["lines"])  # a check moves no stock


def test_a_few_won_deals_of_demo_activity_fill_the_inbox_and_fire_the_alert(fresh_sandbox, live_server):
    demo_on_sandbox(fresh_sandbox, live_server.url)
    rng, crm = random.Random(11), System.objects.get(slug="crm")
    for _ in range(10):  # the demo activity's own action; about half the deals carry a lowercase SKU
        outcome = demo_action_run(system=crm, action_name="win-deal", rng=rng)
        assert outcome.event is not None
        if any(line["sku"].islower() for line in outcome.event.record()["lines"]):
            break
    drain_all()
    letter = DeadLetter.objects.get(flow__name=PRACTICE)
    assert letter.error_class == "rejected" and re.search(r"unknown sku sku-[a-z]+", letter.reason)
    assert letter.record_key == outcome.record_id

    alerts_evaluate()
    alert = Alert.objects.get(rule__flow__name=PRACTICE, resolved_at__isnull=True)
    assert alert.rule.kind == "dead_letters"


def test_seeding_the_demo_twice_changes_nothing(fresh_sandbox):
    demo_on_sandbox(fresh_sandbox)
    tables = (System, DataModel, Field, Mapping, MappingVersion, Flow, AlertRule, AuditEntry)
    before = {model.__name__: model.objects.count() for model in tables}
    demo_on_sandbox(fresh_sandbox)
    assert {model.__name__: model.objects.count() for model in tables} == before
