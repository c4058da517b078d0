"""Alerting needs no setup: migrate creates the minutely evaluation schedule, every new flow gets
the default rules, and an evaluation costs a fixed number of queries however many flows exist."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule

from hub.alerts.models import Alert, AlertRule
from hub.alerts.schedules import EVALUATE_SCHEDULE
from hub.alerts.tasks import alerts_evaluate_task
from hub.services.flows import flow_create
from tests.alerts.helpers import evaluate, flows_with_every_kind, minutes
from tests.factories import crm_and_books, model_with_fields

pytestmark = pytest.mark.django_db


def test_migrate_creates_the_minutely_evaluation_schedule_and_puts_it_back_if_changed():
    schedule = Schedule.objects.get(name=EVALUATE_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "hub.alerts.tasks.alerts_evaluate_task",
        Schedule.MINUTES,
        1,
        -1,
    )
    Schedule.objects.filter(pk=schedule.pk).update(minutes=60)
    call_command("migrate", verbosity=0)
    assert Schedule.objects.get(name=EVALUATE_SCHEDULE).minutes == 1
    assert Schedule.objects.filter(name=EVALUATE_SCHEDULE).count() == 1


def test_the_task_runs_the_evaluation(flow):
    assert alerts_evaluate_task() == "6 rules: 0 fired, 0 resolved, 0 notices"


def test_a_new_flow_gets_the_default_rules_in_plain_words(personas):
    crm, books = crm_and_books()
    deal = model_with_fields(crm, "Deal", "/deals", "id! amount:number")
    invoice = model_with_fields(books, "Invoice", "/invoices", "total:number!")
    flow = flow_create(name="Won deals", source_model=deal, target_model=invoice, actor=personas["admin"])
    rules = [rule.describe() for rule in AlertRule.objects.filter(flow=flow).order_by("id")]
    assert rules == [
        "gets no events for longer than its usual volume explains (learned from its last 4 weeks)",
        "fails more than 20% of its tries over 15 minutes",
        "sends 1 or more deliveries to the dead-letter inbox within 15 minutes",
        "is paused automatically (for example when its target refuses our credentials)",
        "uses an API its target is retiring (told at once, again when the switch-off is 30 days away "
        "and again 7 days before)",
        "holds events because the source's records changed shape (told at once)",
    ]


def queries_of_a_steady_evaluation() -> int:
    evaluate()  # learns the baselines, fires what fires
    minutes(1)
    with CaptureQueriesContext(connection) as queries:
        evaluate()
    return len(queries.captured_queries)


def test_an_evaluation_reads_in_a_fixed_number_of_queries_whatever_the_number_of_flows(flow):
    flows_with_every_kind(1, flow)
    one = queries_of_a_steady_evaluation()
    flows_with_every_kind(6, flow, start=1)
    assert queries_of_a_steady_evaluation() == one
    assert Alert.objects.firing().count() == 14
    assert one <= 15
