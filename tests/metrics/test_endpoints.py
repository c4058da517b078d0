"""/metrics in Prometheus' text format (parsed back line by line), who may read it, the queue
gauges behind it, and /readyz with each dependency missing. Nothing real is stopped: a missing
broker is a closed loopback port, a missing database a query Django's execute_wrapper refuses."""

import math
import re
import socket
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from hub.api.monitoring import METRICS_CACHE_KEY
from hub.metrics import gauges
from hub.metrics.models import CircuitState
from hub.metrics.recording import worker_heartbeat
from hub.models import Delivery, DeliveryStatus, FlowState
from hub.pipeline import clock
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.conftest import wait_for
from tests.factories import flow_with_mapping
from tests.sandbox_helpers import control, drain_all, employee_event, fault, hr_to_inventory_accounts

pytestmark = pytest.mark.django_db(transaction=True)
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


def parse(text: str) -> dict[tuple, float]:
    """Every sample of an exposition, checked against the format: HELP and TYPE before each
    family's samples, sample names of the declared family, labels and values well formed."""
    assert text.endswith("\n")
    samples: dict[tuple, float] = {}
    family, kind = None, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            family = line.split(" ", 3)[2]
            kind = None
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == family and kind in ("counter", "gauge", "histogram"), line
            continue
        match = SAMPLE.match(line)
        assert match and kind, f"not a sample line: {line!r}"
        name, _, labels, value = match.groups()
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        assert name in {family + s for s in suffixes}, f"{name} outside its family {family}"
        pairs = LABEL.findall(labels or "")
        assert ",".join(f'{k}="{v}"' for k, v, _ in pairs) == (labels or ""), line
        number = float(value)
        assert not math.isnan(number)
        key = (name, tuple(sorted((k, v) for k, v, _ in pairs)))
        assert key not in samples, f"repeated sample {line!r}"
        samples[key] = number
    return samples


def scrape(client, **extra) -> dict[tuple, float]:
    cache.delete(METRICS_CACHE_KEY)
    response = client.get("/metrics", **extra)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def one(samples, metric: str, **labels) -> float:
    return samples[(metric, tuple(sorted((k, str(v)) for k, v in labels.items())))]


@pytest.fixture
def traffic(fresh_sandbox):
    """Hires into inventory: one dead-lettered after a retry (500 twice), one delivered 0.3 s
    after it arrived; and a leaver no flow subscribes to."""
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired", max_attempts=2)
    fault(fresh_sandbox, "inventory", mode="500", rate=1.0, methods=["POST"])
    events_store([IncomingEvent(flow.source_system, "employee.hired", "e1", employee_event(1))])
    drain_all()
    control(fresh_sandbox, "inventory", "DELETE", "faults")
    events_store([IncomingEvent(flow.source_system, "employee.hired", "e2", employee_event(2))])
    events_store([IncomingEvent(flow.source_system, "employee.left", "e3", employee_event(3))])
    clock.advance(0.3)
    drain_all()
    return flow


def test_it_exposes_counters_and_gauges(client, traffic):
    flow = traffic
    samples = scrape(client)
    info = {"name": flow.name, "source": "hr", "target": "inventory", "state": "active"}
    expected = [
        ("hub_events_received_total", {"system": "hr"}, 3),
        ("hub_events_not_subscribed_total", {"system": "hr"}, 1),
        ("hub_events_received_total", {"system": "inventory"}, 0),
        ("hub_deliveries_queued_total", {"flow": flow.pk}, 2),
        ("hub_deliveries_succeeded_total", {"flow": flow.pk}, 1),
        ("hub_deliveries_retried_total", {"flow": flow.pk, "error_class": "server_error"}, 1),
        ("hub_deliveries_dead_lettered_total", {"flow": flow.pk, "error_class": "server_error"}, 1),
        ("hub_dead_letters_open", {"flow": flow.pk}, 1),
        ("hub_queue_depth", {"flow": flow.pk, "state": "due"}, 0),
        ("hub_flow_info", {"flow": flow.pk, **info}, 1),
    ]
    assert [one(samples, metric, **labels) for metric, labels, _ in expected] == [n for _, _, n in expected]
    assert one(samples, "hub_system_last_event_age_seconds", system="hr") < 60
    assert one(samples, "hub_flow_last_success_age_seconds", flow=flow.pk) < 60


def test_it_exposes_the_latency_histogram(client, traffic):
    flow = traffic
    samples = scrape(client)
    assert one(samples, "hub_delivery_latency_seconds_count", flow=flow.pk) == 1
    assert one(samples, "hub_delivery_latency_seconds_bucket", flow=flow.pk, le="+Inf") == 1
    assert one(samples, "hub_delivery_latency_seconds_bucket", flow=flow.pk, le="0.256") == 0
    assert one(samples, "hub_delivery_latency_seconds_bucket", flow=flow.pk, le="1.024") == 1
    assert 0.3 <= one(samples, "hub_delivery_latency_seconds_sum", flow=flow.pk) < 1.5
    bounds = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == "hub_delivery_latency_seconds_bucket"
    )
    assert [v for _, v in bounds] == sorted(v for _, v in bounds), "buckets must be cumulative"


def test_it_builds_the_document_with_the_same_few_queries_however_many_flows(client, traffic):
    with CaptureQueriesContext(connection) as few:
        scrape(client)
    for n in range(4):
        flow_with_mapping(
            source_model=traffic.source_model,
            target_model=traffic.target_model,
            rules=[{"target": "email", "source": "email"}],
            name=f"more {n}",
        )
    with CaptureQueriesContext(connection) as more:
        scrape(client)
    assert len(few.captured_queries) == len(more.captured_queries) <= 12


def test_it_serves_a_scrape_within_a_second_from_the_cache(client, db):
    scrape(client)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/metrics").status_code == 200
    assert len(queries.captured_queries) == 0


# --- who may scrape ---------------------------------------------------------------------------


def test_it_answers_anonymous_scrapes_from_loopback_only(client, db):
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    refused = client.get("/metrics", **ELSEWHERE)
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    # A request a reverse proxy on this machine forwarded is not a local one.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 401


def test_it_answers_the_bearer_token_from_anywhere(client, db, settings):
    settings.HUB_METRICS_TOKEN = "s3cret-scrape-token"
    assert (
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", **ELSEWHERE).status_code
        == 200
    )
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **ELSEWHERE).status_code == 401


def test_it_can_refuse_loopback_too(client, db, settings):
    settings.HUB_METRICS_ALLOW_LOOPBACK = False
    assert client.get("/metrics").status_code == 401


@pytest.mark.parametrize("who, status", [("admin", 200), ("ops", 200), ("auditor", 200), ("outsider", 401)])
def test_it_answers_signed_in_readers_from_anywhere(client, personas, who, status):
    client.force_login(personas[who])
    assert client.get("/metrics", **ELSEWHERE).status_code == status


# --- the queue gauges -------------------------------------------------------------------------


def test_it_tells_what_each_unfinished_delivery_waits_for(traffic):
    flow = traffic
    events_store(
        [
            IncomingEvent(flow.source_system, "employee.hired", f"q{n}", employee_event(20 + n))
            for n in range(5)
        ]
    )
    pending = list(Delivery.objects.filter(status=DeliveryStatus.PENDING).order_by("pk"))
    later = clock.now() + timedelta(minutes=5)
    Delivery.objects.filter(pk=pending[0].pk).update(status=DeliveryStatus.RETRYING, next_attempt_at=later)
    Delivery.objects.filter(pk=pending[1].pk).update(status=DeliveryStatus.IN_FLIGHT, lease_expires_at=later)
    assert gauges.queues([flow.pk])[flow.pk].counts == {
        "paused": 0,
        "circuit_open": 0,
        "in_flight": 1,
        "due": 3,
        "retry_later": 1,
    }
    CircuitState.objects.create(system=flow.target_system, open_until=later)
    assert gauges.queues([flow.pk])[flow.pk].counts == {
        "paused": 0,
        "circuit_open": 4,
        "in_flight": 1,
        "due": 0,
        "retry_later": 0,
    }
    flow.state = FlowState.PAUSED
    flow.save()
    assert gauges.queues([flow.pk])[flow.pk].counts["paused"] == 5


# --- /readyz ----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def refusing(fragment: str):
    """Queries whose SQL contains `fragment` fail as if their server were gone."""

    def refuse(execute, sql, params, many, context):
        if fragment in sql:
            raise OperationalError("connection to server at 127.0.0.1 failed: secret-internal-detail")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield


def ready(client, **extra):
    response = client.get("/readyz", **extra)
    return response.status_code, response.json()


def test_it_is_ready_with_a_database_a_broker_and_a_worker_alive(client, db):
    worker_heartbeat("test-host:ready")
    assert ready(client) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "broker": "ok", "workers": "ok"}},
    )


def test_it_is_not_ready_without_a_worker_and_names_what_is_missing(client, db):
    status, body = ready(client)
    assert status == 503 and body["missing"] == ["workers"] and "details" not in body


def test_it_forgets_a_worker_that_stopped_draining_long_ago(client, db, settings):
    worker_heartbeat("test-host:old")
    clock.advance(settings.HUB_WORKER_HEARTBEAT_MAX_AGE + 1)
    assert ready(client)[1]["missing"] == ["workers"]


def test_it_is_not_ready_when_redis_does_not_answer(client, db, settings, personas):
    worker_heartbeat("test-host:redis")
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    status, body = ready(client)
    assert status == 503 and body["missing"] == ["broker"]
    assert "details" not in body and "Error" not in str(body) and str(closed_port) not in str(body)
    client.force_login(personas["admin"])
    assert "Connection" in ready(client)[1]["details"]["broker"]
    client.force_login(personas["auditor"])
    assert "details" not in ready(client)[1]


def test_it_is_not_ready_when_the_orm_brokers_table_cannot_be_read(client, db, settings):
    worker_heartbeat("test-host:orm")
    settings.REDIS_URL = ""
    with refusing("django_q_ormq"):
        status, body = ready(client)
    assert status == 503 and body["missing"] == ["broker"]


def test_it_is_not_ready_without_the_database_and_never_shows_why_to_the_anonymous(client, db, settings):
    worker_heartbeat("test-host:db")
    settings.REDIS_URL = ""
    with refusing(""):
        status, body = ready(client)
    assert status == 503 and "database" in body["missing"]
    assert "secret-internal-detail" not in str(body) and "details" not in body


def test_it_checks_only_what_a_web_nodes_probe_asks_for(client, db):
    assert ready(client, data={"checks": "database,broker"}) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "broker": "ok"}},
    )


@pytest.mark.slow
def test_it_is_ready_once_a_worker_cluster_runs(client, start_worker):
    assert ready(client)[0] == 503
    start_worker(workers=1)
    wait_for(lambda: ready(client)[0] == 200, timeout=30, message="readyz to see the worker")
