"""The engine as its users meet it: a real `manage.py engine` on the test database, signed
webhooks from many senders at once, the sandbox as the target, and a SIGKILL mid-stream."""

import json
import os
import signal
import threading

import pytest
import requests
from django.db import connection

from connectors.signatures import sign
from hub.models import Delivery, DeliveryStatus, Event
from tests.conftest import wait_for
from tests.sandbox_helpers import employee_event, hr_to_inventory_accounts, records

pytestmark = pytest.mark.django_db(transaction=True)
# Leases of 10 s instead of the default 60 s, so the deliveries a killed engine had in flight are
# taken up again within seconds (a live engine renews its leases while its calls are under way).
SHORT_LEASES = {"HUB_LEASE_SECONDS": "10"}


def send(engine, flow, payload: dict, session=None) -> requests.Response:
    body = json.dumps(payload).encode()
    return (session or requests).post(
        f"{engine.url}/hooks/{flow.source_system.slug}/",
        data=body,
        headers={"Content-Type": "application/json", "X-Signature": sign(flow.source_system, body)},
        timeout=30,
    )


def send_from_many(engine, flow, payloads: list[dict], senders: int = 16) -> list[requests.Response]:
    answers: list[requests.Response] = []
    lock = threading.Lock()
    pending = list(payloads)

    def sender():
        with requests.Session() as session:
            while True:
                with lock:
                    if not pending:
                        return
                    payload = pending.pop()
                answer = send(engine, flow, payload, session)
                with lock:
                    answers.append(answer)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def delivered(flow) -> int:
    return Delivery.objects.filter(flow=flow, status=DeliveryStatus.SUCCEEDED).count()


def commits() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_a_webhook_is_stored_once_and_delivered(fresh_sandbox, start_engine):
    flow = hr_to_inventory_accounts(fresh_sandbox)
    engine = start_engine()
    first, again = send(engine, flow, employee_event(1)), send(engine, flow, employee_event(1))
    assert first.status_code == again.status_code == 202
    assert first.json()["duplicate"] is False and first.json()["deliveries"] == 1
    assert again.json() == {**first.json(), "duplicate": True, "deliveries": 0}
    wait_for(lambda: delivered(flow) == 1, timeout=30, message="the delivery")
    assert Event.objects.get().duplicates_seen == 1
    assert [r["email"] for r in records(fresh_sandbox, "inventory", "accounts")] == ["ann.lee1@example.com"]


def test_many_senders_at_once_each_event_once_in_fewer_commits(fresh_sandbox, start_engine):
    flow = hr_to_inventory_accounts(fresh_sandbox)
    engine = start_engine()
    send(engine, flow, employee_event(0))  # the engine has read the system and its flows
    wait_for(lambda: delivered(flow) == 1, timeout=30, message="the first delivery")
    before = commits() if connection.vendor == "postgresql" else None
    payloads = [employee_event(n) for n in range(1, 401)]
    answers = send_from_many(engine, flow, payloads + payloads[:50])  # 50 sent twice
    assert sorted({a.status_code for a in answers}) == [202]
    assert sum(a.json()["duplicate"] for a in answers) == 50
    assert Event.objects.count() == 401
    if before is not None:
        # Each webhook alone would be one commit: grouped, 450 webhooks took far fewer (deliveries,
        # the test's own queries and the metrics count too, so the bound is loose).
        assert commits() - before < 300
    wait_for(lambda: delivered(flow) == 401, timeout=60, message="every delivery")
    emails = [r["email"] for r in records(fresh_sandbox, "inventory", "accounts")]
    assert len(emails) == len(set(emails)) == 401


def test_every_event_answered_202_survives_a_kill_and_is_delivered_once(fresh_sandbox, start_engine):
    flow = hr_to_inventory_accounts(fresh_sandbox)
    engine = start_engine(extra_env=SHORT_LEASES)
    answered: list[str] = []
    stop = threading.Event()

    def sender(offset: int):
        with requests.Session() as session:
            n = offset
            while not stop.is_set():
                try:
                    answer = send(engine, flow, employee_event(n), session)
                except requests.RequestException:
                    return  # the engine is gone
                if answer.status_code == 202:
                    answered.append(f"evt_{n}")
                n += 8

    threads = [threading.Thread(target=sender, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(answered) >= 150, timeout=60, message="150 answered webhooks")
    os.killpg(engine.process.pid, signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join()
    engine.process.wait(10)
    stored = set(Event.objects.values_list("idempotency_key", flat=True))
    assert set(answered) <= stored  # a 202 means committed
    # A second engine finds what the first left (in flight under its lease, or queued) and
    # finishes it; a create whose answer was lost is not made twice.
    start_engine(extra_env=SHORT_LEASES)
    wait_for(
        lambda: not Delivery.objects.filter(flow=flow).unfinished().exists(),
        timeout=120,
        message="every delivery to finish",
    )
    emails = [r["email"] for r in records(fresh_sandbox, "inventory", "accounts")]
    assert len(emails) == len(set(emails))  # no record created twice
    finished = Delivery.objects.filter(flow=flow)
    assert finished.filter(status=DeliveryStatus.SUCCEEDED).count() + finished.filter(
        status=DeliveryStatus.UNKNOWN
    ).count() == len(stored)


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b'{"type": "employee.hired"', {}, 400, "JSON"),
        (b"[1e999]", {}, 400, "too large"),
        (b'{"type": "employee.hired", "id": "x"}', {"X-Signature": "sha256=wrong"}, 401, "signature"),
        (b"x" * (1024 * 1024 + 10), {}, 413, "limit"),
    ],
)
def test_bad_input_is_a_4xx_that_says_why_and_stores_nothing(
    fresh_sandbox, start_engine, body, headers, status, says
):
    flow = hr_to_inventory_accounts(fresh_sandbox)
    engine = start_engine()
    sent = {"X-Signature": sign(flow.source_system, body), **headers}
    answer = requests.post(
        f"{engine.url}/hooks/{flow.source_system.slug}/", data=body, headers=sent, timeout=30
    )
    assert answer.status_code == status
    assert says.lower() in answer.json()["error"].lower()
    assert not Event.objects.exists()


def test_a_chunked_body_is_read_whole(fresh_sandbox, start_engine):
    flow = hr_to_inventory_accounts(fresh_sandbox)
    engine = start_engine()
    body = json.dumps(employee_event(7)).encode()
    answer = requests.post(
        f"{engine.url}/hooks/{flow.source_system.slug}/",
        data=iter([body[:10], body[10:]]),  # a generator: sent with Transfer-Encoding: chunked
        headers={"Content-Type": "application/json", "X-Signature": sign(flow.source_system, body)},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    assert Event.objects.get().idempotency_key == "evt_7"


def test_unknown_systems_and_other_methods_and_paths_are_answered_in_json(start_engine):
    engine = start_engine()
    unknown = requests.post(f"{engine.url}/hooks/nobody/", data=b"{}", timeout=10)
    assert unknown.status_code == 404 and "unknown system" in unknown.json()["error"]
    wrong_method = requests.get(f"{engine.url}/hooks/nobody/", timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    elsewhere = requests.get(f"{engine.url}/admin/", timeout=10)
    assert elsewhere.status_code == 404 and "/hooks/" in elsewhere.json()["error"]
