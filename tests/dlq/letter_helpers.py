"""Dead letters made the way the pipeline makes them: a mapping that cannot produce a record, a
target that refuses, and a create whose outcome the worker could not tell."""

from django.db import transaction
from rest_framework.test import APIClient

from connectors.base import ErrorClass
from dlq.models import DeadLetter
from hub.models import Delivery, DeliveryStatus
from hub.pipeline import clock
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.pipeline.signals import delivery_dead_lettered
from tests.sandbox_helpers import drain_all, employee_event


def letters_without_email(flow, numbers) -> list[DeadLetter]:
    """Hires without an email: the mapping cannot make an account, one dead letter each."""
    events = []
    for n in numbers:
        bad = employee_event(n)
        bad["data"]["email"] = None  # empty: a record that lacks the field would be held as schema drift
        events.append(IncomingEvent(flow.source_system, "employee.hired", bad["id"], bad))
    events_store(events)
    drain_all()
    return list(DeadLetter.objects.filter(record_key__in=[f"emp_{n}" for n in numbers]).order_by("pk"))


def outcome_unknown_letter(flow, n: int = 1) -> DeadLetter:
    """A hire whose create was sent but not answered, on a target with no lookup: the delivery
    waits as "outcome unknown" with a letter, as the pipeline leaves it."""
    event = employee_event(n)
    events_store([IncomingEvent(flow.source_system, "employee.hired", event["id"], event)])
    delivery = Delivery.objects.get(flow=flow, record_key=f"emp_{n}")
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.UNKNOWN, maybe_sent=True, attempts=1, finished_at=clock.now(),
            last_error_class=ErrorClass.OUTCOME_UNKNOWN,
        )  # fmt: skip
        delivery.refresh_from_db()
        delivery_dead_lettered.send(
            sender=Delivery, delivery=delivery, error_class=ErrorClass.OUTCOME_UNKNOWN,
            reason=f"POST /accounts for emp_{n}: the connection dropped after the request was sent",
            last_response={},
        )  # fmt: skip
    return DeadLetter.objects.get(delivery=delivery)


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def keep_tasks(monkeypatch) -> list:
    """Tasks the services would hand to django-q2, kept for the test to run (or not); made a
    fixture named `queued` where it is used."""
    import django_q.tasks

    tasks: list = []
    monkeypatch.setattr(django_q.tasks, "async_task", lambda name, *args, **kw: tasks.append((name, args)))
    return tasks
