"""Sandbox business systems over real loopback HTTP (no database needed)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.sandbox import DEFAULT_PORTS, DEMO_CREDENTIALS, DEMO_WEBHOOK_SECRETS, Sandbox

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CRM_AUTH = {"X-Api-Key": DEMO_CREDENTIALS["crm"]["api_key"]}
INVENTORY_AUTH = {"X-Api-Key": DEMO_CREDENTIALS["inventory"]["api_key"]}
HR_AUTH = {"Authorization": f"Bearer {DEMO_CREDENTIALS['hr']['token']}"}
PAYMENTS_AUTH = (DEMO_CREDENTIALS["payments"]["username"], DEMO_CREDENTIALS["payments"]["password"])
TIMEOUT = 5


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox(ports=dict.fromkeys(DEFAULT_PORTS, 0), duplicate_rate=0.0) as running:
        yield running


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_next = 0  # answer this many requests with 500 first
        self.cond = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict[str, str], bytes]]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.cond:
            failing = self.server.fail_next > 0
            if failing:
                self.server.fail_next -= 1
            else:
                self.server.received.append((self.path, dict(self.headers.items()), body))
                self.server.cond.notify_all()
        status = 500 if failing else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _accounting_token(box: Sandbox) -> str:
    creds = DEMO_CREDENTIALS["accounting"]
    response = requests.post(
        f"{box.url('accounting')}/oauth/token",
        data={"grant_type": "client_credentials", **creds},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    return response.json()["access_token"]


def _deal(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Office refit",
        "amount": 1250.50,
        "currency": "EUR",
        "customer": {"email": "ada@example.com", "name": "Ada"},
        "lines": [{"sku": "SKU-DESK", "quantity": 2, "unit_price": 625.25}],
        "owner_email": "sam@example.com",
        **overrides,
    }


# -- CRUD, validation, auth ----------------------------------------------------------------------


def test_crm_deal_crud_roundtrip(box: Sandbox) -> None:
    base = f"{box.url('crm')}/deals"
    created = requests.post(base, json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT)
    assert created.status_code == 201
    deal = created.json()
    assert deal["id"].startswith("deal_") and deal["stage"] == "lead"
    assert deal["created_at"] == deal["updated_at"] and deal["updated_at"].endswith("Z")

    fetched = requests.get(f"{base}/{deal['id']}", headers=CRM_AUTH, timeout=TIMEOUT).json()
    assert fetched == deal

    patched = requests.patch(
        f"{base}/{deal['id']}", json={"stage": "proposal"}, headers=CRM_AUTH, timeout=TIMEOUT
    )
    assert patched.status_code == 200
    assert patched.json()["stage"] == "proposal" and patched.json()["title"] == "Office refit"
    assert patched.json()["updated_at"] > deal["updated_at"]

    replaced = requests.put(
        f"{base}/{deal['id']}",
        json={"title": "Refit v2", "amount": 99, "currency": "USD"},
        headers=CRM_AUTH,
        timeout=TIMEOUT,
    ).json()
    assert replaced["title"] == "Refit v2" and "customer" not in replaced
    assert replaced["created_at"] == deal["created_at"]

    listing = requests.get(base, headers=CRM_AUTH, timeout=TIMEOUT).json()
    assert [item["id"] for item in listing["data"]] == [deal["id"]] and listing["next"] is None

    assert requests.delete(f"{base}/{deal['id']}", headers=CRM_AUTH, timeout=TIMEOUT).status_code == 204
    missing = requests.get(f"{base}/{deal['id']}", headers=CRM_AUTH, timeout=TIMEOUT)
    assert missing.status_code == 404 and "error" in missing.json()


def test_validation_and_malformed_bodies(box: Sandbox) -> None:
    base = box.url("crm")
    invalid = requests.post(f"{base}/deals", json={"title": "No money"}, headers=CRM_AUTH, timeout=TIMEOUT)
    assert invalid.status_code == 422
    assert invalid.json()["fields"] == {"amount": "required", "currency": "required"}

    wrong_type = requests.post(
        f"{base}/deals", json=_deal(amount="lots", stage="maybe"), headers=CRM_AUTH, timeout=TIMEOUT
    )
    assert wrong_type.status_code == 422
    assert set(wrong_type.json()["fields"]) == {"amount", "stage"}

    user = requests.post(f"{base}/users", json={"full_name": "No Email"}, headers=CRM_AUTH, timeout=TIMEOUT)
    assert user.status_code == 422 and user.json()["fields"] == {"email": "required"}

    not_json = requests.post(f"{base}/deals", data=b"{nope", headers=CRM_AUTH, timeout=TIMEOUT)
    assert not_json.status_code == 400
    not_object = requests.post(f"{base}/deals", json=[1, 2], headers=CRM_AUTH, timeout=TIMEOUT)
    assert not_object.status_code == 400

    assert requests.get(f"{base}/nothing-here", headers=CRM_AUTH, timeout=TIMEOUT).status_code == 404
    assert box.system("crm").records("deals") == []


def test_api_key_bearer_and_basic_auth(box: Sandbox) -> None:
    for system, resource, good in (
        ("crm", "customers", {"headers": CRM_AUTH}),
        ("inventory", "products", {"headers": INVENTORY_AUTH}),
        ("hr", "employees", {"headers": HR_AUTH}),
        ("payments", "charges", {"auth": PAYMENTS_AUTH}),
    ):
        url = f"{box.url(system)}/{resource}"
        assert requests.get(url, timeout=TIMEOUT, **good).status_code == 200
        denied = requests.get(url, timeout=TIMEOUT)
        assert denied.status_code == 401 and denied.json() == {"error": "invalid credentials"}

    wrong_key = requests.get(f"{box.url('crm')}/deals", headers={"X-Api-Key": "nope"}, timeout=TIMEOUT)
    assert wrong_key.status_code == 401
    wrong_token = requests.get(
        f"{box.url('hr')}/employees", headers={"Authorization": "Bearer nope"}, timeout=TIMEOUT
    )
    assert wrong_token.status_code == 401
    wrong_password = requests.get(f"{box.url('payments')}/charges", auth=("hub", "nope"), timeout=TIMEOUT)
    assert wrong_password.status_code == 401


def test_accounting_oauth_client_credentials(box: Sandbox) -> None:
    base = box.url("accounting")
    assert requests.get(f"{base}/payments", timeout=TIMEOUT).status_code == 401

    bad_client = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "hub", "client_secret": "wrong"},
        timeout=TIMEOUT,
    )
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    bad_grant = requests.post(f"{base}/oauth/token", data={"grant_type": "password"}, timeout=TIMEOUT)
    assert bad_grant.status_code == 400

    token_body = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("hub", DEMO_CREDENTIALS["accounting"]["client_secret"]),  # HTTP Basic client auth
        timeout=TIMEOUT,
    ).json()
    assert token_body["token_type"] == "Bearer" and token_body["expires_in"] == 3600
    bearer = {"Authorization": f"Bearer {token_body['access_token']}"}

    payment = requests.post(
        f"{base}/payments",
        json={
            "amount_minor": 125050,
            "currency": "EUR",
            "payer_email": "ada@example.com",
            "reference": "INV-7",
        },
        headers=bearer,
        timeout=TIMEOUT,
    )
    assert payment.status_code == 201 and payment.json()["received_at"].endswith("Z")
    assert (
        requests.get(
            f"{base}/payments", headers={"Authorization": "Bearer forged"}, timeout=TIMEOUT
        ).status_code
        == 401
    )

    form_token = _accounting_token(box)
    assert requests.get(
        f"{base}/payees", headers={"Authorization": f"Bearer {form_token}"}, timeout=TIMEOUT
    ).ok

    requests.post(f"{base}/_control/expire-tokens", timeout=TIMEOUT)
    assert requests.get(f"{base}/payments", headers=bearer, timeout=TIMEOUT).status_code == 401


# -- listing ------------------------------------------------------------------------------------


def test_pagination_is_stable_when_many_records_share_updated_at(box: Sandbox) -> None:
    base = box.url("crm")
    shared = "2026-01-01T00:00:00.000000Z"
    seeded = requests.post(
        f"{base}/_control/seed",
        json={
            "resource": "deals",
            "records": [_deal(title=f"Deal {n}") for n in range(25)],
            "updated_at": shared,
        },
        timeout=TIMEOUT,
    )
    assert seeded.status_code == 201
    expected = {record["id"] for record in seeded.json()["data"]}

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 10}
    pages = 0
    while True:
        page = requests.get(f"{base}/deals", params=params, headers=CRM_AUTH, timeout=TIMEOUT).json()
        pages += 1
        seen.extend(item["id"] for item in page["data"])
        assert all(item["updated_at"] == shared for item in page["data"])
        if page["next"] is None:
            break
        params = {"limit": 10, "page": page["next"]}
    assert pages == 3
    assert len(seen) == 25 and set(seen) == expected


def test_updated_since_is_inclusive_and_touch_sets_exact_timestamps(box: Sandbox) -> None:
    base = box.url("hr")

    def updated_since(stamp: str) -> requests.Response:
        params = {"updated_since": stamp}
        return requests.get(f"{base}/employees", params=params, headers=HR_AUTH, timeout=TIMEOUT)

    ids = []
    for name in ("Ada", "Grace", "Linus"):
        response = requests.post(
            f"{base}/employees",
            json={"first_name": name, "last_name": "X", "email": f"{name.lower()}@example.com"},
            headers=HR_AUTH,
            timeout=TIMEOUT,
        )
        ids.append(response.json()["id"])
    for touched, stamp in ((ids[:1], "2026-03-01T00:00:00Z"), (ids[1:], "2026-03-02T00:00:00Z")):
        requests.post(
            f"{base}/_control/touch",
            json={"resource": "employees", "ids": touched, "updated_at": stamp},
            timeout=TIMEOUT,
        )
    since = updated_since("2026-03-02T00:00:00.000000Z").json()
    assert [item["id"] for item in since["data"]] == ids[1:]
    everything = updated_since("2026-03-01T00:00:00+00:00").json()
    assert [item["id"] for item in everything["data"]] == ids
    bad = updated_since("yesterday")
    assert bad.status_code == 400


# -- idempotency, rate limit, faults --------------------------------------------------------------


def test_idempotency_key_replays_without_applying_twice(box: Sandbox) -> None:
    base = f"{box.url('payments')}/charges"
    headers = {"Idempotency-Key": "order-42"}
    charge = {"amount": 4200, "currency": "EUR", "customer_email": "ada@example.com"}
    first = requests.post(base, json=charge, headers=headers, auth=PAYMENTS_AUTH, timeout=TIMEOUT)
    second = requests.post(base, json=charge, headers=headers, auth=PAYMENTS_AUTH, timeout=TIMEOUT)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(box.system("payments").records("charges")) == 1

    other = requests.post(
        base, json=charge, headers={"Idempotency-Key": "order-43"}, auth=PAYMENTS_AUTH, timeout=TIMEOUT
    )
    assert other.json()["id"] != first.json()["id"]
    log = box.system("payments").requests_since(0)
    assert [entry["headers"].get("Idempotency-Key") for entry in log] == ["order-42", "order-42", "order-43"]


def test_rate_limit_answers_429_with_retry_after(box: Sandbox) -> None:
    base = box.url("crm")
    assert requests.put(f"{base}/_control/rate-limit", json={"per_second": 5}, timeout=TIMEOUT).ok
    with requests.Session() as session:
        statuses = [session.get(f"{base}/deals", headers=CRM_AUTH, timeout=TIMEOUT) for _ in range(8)]
    assert [r.status_code for r in statuses[:5]] == [200] * 5
    throttled = [r for r in statuses if r.status_code == 429]
    assert len(throttled) == 3 and throttled[0].headers["Retry-After"] == "1"
    state = requests.get(f"{base}/_control/state", timeout=TIMEOUT).json()
    assert state["throttled"] == state["over_limit"] == 3 and state["rate_limit"] == 5
    assert state["requests"] == 8

    requests.put(f"{base}/_control/rate-limit", json={"per_second": None}, timeout=TIMEOUT)
    assert requests.get(f"{base}/deals", headers=CRM_AUTH, timeout=TIMEOUT).status_code == 200

    # Observe-only mode: over-limit arrivals are counted but served, for "did the client stay under?" checks.
    requests.post(f"{base}/_control/reset", timeout=TIMEOUT)
    requests.put(f"{base}/_control/rate-limit", json={"per_second": 2, "enforce": False}, timeout=TIMEOUT)
    statuses = [
        requests.get(f"{base}/deals", headers=CRM_AUTH, timeout=TIMEOUT).status_code for _ in range(4)
    ]
    assert statuses == [200] * 4
    state = requests.get(f"{base}/_control/state", timeout=TIMEOUT).json()
    assert (state["over_limit"], state["throttled"]) == (2, 0)

    log = requests.get(f"{base}/_control/requests", params={"since": 0}, timeout=TIMEOUT).json()
    assert [entry["status"] for entry in log] == [200] * 4


def test_fault_500_applies_before_effect_and_expires_after_count(box: Sandbox) -> None:
    base = box.url("crm")
    added = requests.post(f"{base}/_control/faults", json={"mode": "500", "count": 2}, timeout=TIMEOUT)
    assert added.status_code == 201
    first = requests.post(
        f"{base}/customers", json={"name": "A", "email": "a@x.io"}, headers=CRM_AUTH, timeout=TIMEOUT
    )
    second = requests.get(f"{base}/customers", headers=CRM_AUTH, timeout=TIMEOUT)
    third = requests.post(
        f"{base}/customers", json={"name": "A", "email": "a@x.io"}, headers=CRM_AUTH, timeout=TIMEOUT
    )
    assert (first.status_code, second.status_code, third.status_code) == (500, 500, 201)
    assert first.json()["error"]
    assert len(box.system("crm").records("customers")) == 1
    assert requests.get(f"{base}/_control/state", timeout=TIMEOUT).json()["faults"] == []


@pytest.mark.parametrize(("mode", "status"), [("503", 503), ("429", 429), ("401", 401)])
def test_status_faults(box: Sandbox, mode: str, status: int) -> None:
    box.system("inventory").add_fault(mode, count=1)
    response = requests.get(f"{box.url('inventory')}/products", headers=INVENTORY_AUTH, timeout=TIMEOUT)
    assert response.status_code == status
    if status in (503, 429):
        assert response.headers["Retry-After"] == "1"
    assert requests.get(f"{box.url('inventory')}/products", headers=INVENTORY_AUTH, timeout=TIMEOUT).ok


def test_a_timed_fault_answers_every_request_until_its_time_is_up_then_heals(box: Sandbox) -> None:
    base = box.url("inventory")
    added = requests.post(
        f"{base}/_control/faults", json={"mode": "503", "seconds": 0.5}, timeout=TIMEOUT
    ).json()
    assert added["until"] == pytest.approx(time.time() + 0.5, abs=0.3)
    answers = [requests.get(f"{base}/products", headers=INVENTORY_AUTH, timeout=TIMEOUT) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert requests.get(f"{base}/_control/state", timeout=TIMEOUT).json()["faults"][0]["mode"] == "503"
    time.sleep(0.6)
    assert requests.get(f"{base}/products", headers=INVENTORY_AUTH, timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{base}/_control/state", timeout=TIMEOUT).json()["faults"] == []


@pytest.mark.parametrize("seconds", [0, -1, "60", True, 86401])
def test_a_timed_fault_needs_a_sensible_number_of_seconds(box: Sandbox, seconds) -> None:
    refused = requests.post(
        f"{box.url('crm')}/_control/faults", json={"mode": "503", "seconds": seconds}, timeout=TIMEOUT
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "seconds must be a number between 0 and 86400"


def test_fault_method_filter(box: Sandbox) -> None:
    base = box.url("crm")
    requests.post(
        f"{base}/_control/faults", json={"mode": "500", "rate": 1.0, "methods": ["POST"]}, timeout=TIMEOUT
    )
    assert requests.get(f"{base}/deals", headers=CRM_AUTH, timeout=TIMEOUT).status_code == 200
    assert requests.post(f"{base}/deals", json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT).status_code == 500
    requests.delete(f"{base}/_control/faults", timeout=TIMEOUT)
    assert requests.post(f"{base}/deals", json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT).status_code == 201


def test_slow_fault_delays_then_applies(box: Sandbox) -> None:
    base = box.url("crm")
    requests.post(f"{base}/_control/faults", json={"mode": "slow", "delay": 0.4, "count": 1}, timeout=TIMEOUT)
    started = time.monotonic()
    response = requests.post(f"{base}/deals", json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT)
    assert time.monotonic() - started >= 0.4
    assert response.status_code == 201
    assert len(box.system("crm").records("deals")) == 1
    with pytest.raises(requests.exceptions.ReadTimeout):
        box.system("crm").add_fault("slow", delay=0.5, count=1)
        requests.get(f"{base}/deals", headers=CRM_AUTH, timeout=0.1)


def test_garbage_fault_writes_the_record_then_answers_non_json(box: Sandbox) -> None:
    # A 2xx means the target did it; only its answer is unreadable.
    base = box.url("crm")
    box.system("crm").add_fault("garbage", count=1)
    response = requests.post(f"{base}/deals", json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT)
    assert response.status_code == 200 and response.text.startswith("<html>")
    with pytest.raises(ValueError):
        response.json()
    assert len(box.system("crm").records("deals")) == 1


def test_drop_after_fault_writes_the_record_then_closes_the_connection(box: Sandbox) -> None:
    base = box.url("crm")
    box.system("crm").add_fault("drop_after", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{base}/deals", json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT)
    assert len(box.system("crm").records("deals")) == 1


def test_drop_fault_closes_the_connection(box: Sandbox) -> None:
    base = box.url("crm")
    box.system("crm").add_fault("drop", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{base}/deals", json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT)
    assert box.system("crm").records("deals") == []
    assert requests.post(f"{base}/deals", json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT).status_code == 201
    dropped = [entry for entry in box.system("crm").requests_since(0) if entry["fault"] == "drop"]
    assert len(dropped) == 1 and dropped[0]["status"] is None


# -- inventory ------------------------------------------------------------------------------------


def test_inventory_adjustment_moves_stock_and_rejects_unknown_sku(box: Sandbox) -> None:
    base = box.url("inventory")
    products = requests.get(f"{base}/products", headers=INVENTORY_AUTH, timeout=TIMEOUT).json()["data"]
    assert sorted(p["sku"] for p in products) == sorted(
        ["SKU-CHAIR", "SKU-DESK", "SKU-LAMP", "SKU-MONITOR", "SKU-DOCK"]
    )
    assert {p["stock"] for p in products} == {100}

    adjustment = requests.post(
        f"{base}/adjustments",
        json={"reference": "order-1", "reason": "sale", "lines": [{"sku": "SKU-DESK", "quantity": -3}]},
        headers=INVENTORY_AUTH,
        timeout=TIMEOUT,
    )
    assert adjustment.status_code == 201
    desk = requests.get(
        f"{base}/products", params={"sku": "SKU-DESK"}, headers=INVENTORY_AUTH, timeout=TIMEOUT
    )
    assert desk.json()["data"][0]["stock"] == 97

    unknown = requests.post(
        f"{base}/adjustments",
        json={
            "reference": "order-2",
            "lines": [{"sku": "SKU-DESK", "quantity": -1}, {"sku": "SKU-SOFA", "quantity": -1}],
        },
        headers=INVENTORY_AUTH,
        timeout=TIMEOUT,
    )
    assert unknown.status_code == 422 and "SKU-SOFA" in unknown.json()["error"]
    stock = {p["sku"]: p["stock"] for p in box.system("inventory").records("products")}
    assert stock["SKU-DESK"] == 97  # nothing applied from the rejected adjustment

    received = requests.get(f"{base}/_control/received", timeout=TIMEOUT).json()
    mine = [item for item in received if item["resource"] == "adjustments"]
    assert len(mine) == 1 and mine[0]["record"]["reference"] == "order-1"
    assert mine[0]["received_at"] <= time.time()

    requests.post(f"{base}/_control/reset", timeout=TIMEOUT)
    stock = {p["sku"]: p["stock"] for p in box.system("inventory").records("products")}
    assert stock["SKU-DESK"] == 100 and box.system("inventory").records("adjustments") == []


# -- webhooks -------------------------------------------------------------------------------------


def _events(received: list[tuple[str, dict[str, str], bytes]]) -> list[dict[str, Any]]:
    return [json.loads(body) for _, _, body in received]


def test_crm_webhooks_are_hmac_signed_and_deal_won_is_emitted(box: Sandbox, receiver: _Receiver) -> None:
    crm = box.system("crm")
    crm.configure_webhook(url=f"{receiver.url}/hooks/crm/", duplicate_rate=0.0)
    base = f"{box.url('crm')}/deals"
    deal = requests.post(base, json=_deal(), headers=CRM_AUTH, timeout=TIMEOUT).json()
    requests.patch(f"{base}/{deal['id']}", json={"stage": "won"}, headers=CRM_AUTH, timeout=TIMEOUT)

    received = receiver.wait_for(3)
    assert [event["type"] for event in _events(received)] == ["deal.created", "deal.updated", "deal.won"]
    secret = DEMO_WEBHOOK_SECRETS["crm"].encode()
    for path, headers, body in received:
        assert path == "/hooks/crm/"
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Signature"], expected)
        assert headers["X-Event-Type"] == json.loads(body)["type"]
    won = _events(received)[2]
    assert won["id"].startswith("evt_") and won["data"]["stage"] == "won" and won["data"]["id"] == deal["id"]
    assert crm.webhooks.wait_idle(2) and crm.state()["webhooks"]["sent"] == 3


def test_payments_webhooks_use_timestamped_signature(box: Sandbox, receiver: _Receiver) -> None:
    requests.put(
        f"{box.url('payments')}/_control/webhook",
        json={"url": f"{receiver.url}/hooks/payments/", "duplicate_rate": 0.0, "enabled": True},
        timeout=TIMEOUT,
    )
    base = f"{box.url('payments')}/charges"
    requests.post(base, json={"amount": 500, "currency": "EUR"}, auth=PAYMENTS_AUTH, timeout=TIMEOUT)
    requests.post(
        base, json={"amount": 700, "currency": "EUR", "status": "failed"}, auth=PAYMENTS_AUTH, timeout=TIMEOUT
    )

    received = receiver.wait_for(2)
    assert [event["type"] for event in _events(received)] == ["payment.succeeded", "payment.failed"]
    secret = DEMO_WEBHOOK_SECRETS["payments"].encode()
    for _, headers, body in received:
        parts = dict(item.split("=", 1) for item in headers["Payments-Signature"].split(","))
        assert abs(int(parts["t"]) - time.time()) < 60
        expected = hmac.new(secret, f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(parts["v1"], expected)
        assert "X-Signature" not in headers


def test_webhook_duplicates_and_retries(box: Sandbox, receiver: _Receiver) -> None:
    hr = box.system("hr")
    hr.configure_webhook(url=f"{receiver.url}/hooks/hr/", duplicate_rate=1.0)
    receiver.fail_next = 1  # the first attempt fails and must be retried
    employee = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    created = requests.post(f"{box.url('hr')}/employees", json=employee, headers=HR_AUTH, timeout=TIMEOUT)
    assert created.status_code == 201

    assert hr.webhooks.wait_idle(5)
    received = receiver.wait_for(2)
    assert len(received) == 2
    first, second = received
    assert first[2] == second[2]  # the exact same event, same id and body
    assert json.loads(first[2])["type"] == "employee.hired"
    stats = hr.state()["webhooks"]
    assert stats["duplicates"] == 1 and stats["sent"] == 2 and stats["errors"] == 1 and stats["failed"] == 0


def test_seed_does_not_send_webhooks(box: Sandbox, receiver: _Receiver) -> None:
    crm = box.system("crm")
    crm.configure_webhook(url=f"{receiver.url}/hooks/crm/", duplicate_rate=0.0)
    crm.seed("customers", [{"name": "Ada", "email": "ada@example.com"}])
    assert crm.webhooks.wait_idle(1) and receiver.received == []
    assert len(crm.records("customers")) == 1


# -- process --------------------------------------------------------------------------------------


def test_cli_starts_fast_without_django_and_stops_on_sigterm() -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    free_port = probe.server_address[1]
    probe.server_close()
    no_django = "import sys, connectors.sandbox; assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", no_django], cwd=PROJECT_ROOT, check=True, timeout=10)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", "--systems", "crm", "--port-base", str(free_port - 1)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == f"crm http://127.0.0.1:{free_port}"
        assert time.monotonic() - started < 1.5
        assert requests.get(f"http://127.0.0.1:{free_port}/deals", headers=CRM_AUTH, timeout=TIMEOUT).ok
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr
