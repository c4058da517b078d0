"""The pieces of `manage.py bench`: its target answers after the latency asked without serialising
concurrent writes, the senders keep to their slots, and each run's row lands under one header."""

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

pytest.importorskip("aiohttp")

from hub.management.benchkit.report import RESULTS_HEADER, cpu_figures, receipts, record  # noqa: E402
from hub.management.benchkit.sender import Request, _slots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = {"X-Api-Key": "bench-test-key"}


@pytest.fixture
def target():
    """The bench target on a free loopback port, answering each write after 200 ms."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [sys.executable, "-m", "hub.management.benchkit.target", "--port", str(port)]
    process = subprocess.Popen([*argv, "--latency-ms", "200", "--api-key", KEY["X-Api-Key"]], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{url}/_control/state", timeout=1)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


def test_it_answers_concurrent_writes_together_after_the_latency(target):
    def create(n):
        return requests.post(f"{target}/accounts", json={"email": f"bench-r-{n}@x"}, headers=KEY, timeout=10)

    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(create, range(20)))
    elapsed = time.monotonic() - started

    assert [answer.status_code for answer in answers] == [201] * 20
    assert all(answer.json()["id"] for answer in answers)
    assert 0.2 <= elapsed < 2.0  # one after another they would take 4 s
    first_receipt, copies = receipts(
        requests.get(f"{target}/_control/received", timeout=5).json(), prefix="bench-r-"
    )
    assert sorted(first_receipt) == list(range(20)) and set(copies.values()) == {1}
    state = requests.get(f"{target}/_control/state", timeout=5).json()
    assert state["counts"] == {"accounts": 20} and state["most_in_flight"] > 1


def test_it_refuses_a_wrong_key_and_replays_a_repeated_idempotency_key(target):
    refused = requests.post(f"{target}/accounts", json={"email": "a@x"}, headers={"X-Api-Key": "no"})
    assert refused.status_code == 401

    headers = {**KEY, "Idempotency-Key": "delivery-1"}
    first = requests.post(f"{target}/accounts", json={"email": "a@x"}, headers=headers, timeout=5)
    again = requests.post(f"{target}/accounts", json={"email": "a@x"}, headers=headers, timeout=5)
    assert (first.status_code, again.json()) == (201, first.json())
    record_url = f"{target}/accounts/{first.json()['id']}"
    assert requests.patch(record_url, json={"name": "A"}, headers=KEY, timeout=5).json()["name"] == "A"
    assert requests.delete(record_url, headers=KEY, timeout=5).status_code == 204
    assert requests.get(record_url, headers=KEY, timeout=5).status_code == 404
    assert len(requests.get(f"{target}/_control/received", timeout=5).json()) == 1


def test_it_gives_each_request_its_slot_at_the_rate_in_events():
    batches = [Request(tuple(range(start, start + 100)), "/", b"", {}) for start in range(0, 300, 100)]
    assert [offset for offset, _ in _slots(batches, 200)] == [0.0, 0.5, 1.0]
    assert [offset for offset, _ in _slots(batches, None)] == [None, None, None]


def test_the_hub_total_is_its_processes_and_the_database():
    seconds = {"web": 2.0, "workers": 3.0, "database": 1.0, "sender": 5.0, "target": 1.0, "broker": 0.5}
    figures = cpu_figures(seconds, delivered=1000)
    assert figures["hub_cpu_ms_per_event"] == 6.0
    assert figures["cpu_ms_per_event"]["sender"] == 5.0


def test_each_run_appends_one_row_under_one_header(tmp_path):
    result = {
        "commit": "abc1234",
        "dirty": False,
        "database": "postgresql",
        "options": "webhook per event, 16 senders, bench target",
        "events": 5000,
        "events_per_s": 301.25,
        "p50_ms": 40.0,
        "p95_ms": 90.0,
        "p99_ms": 120.0,
        "lost": 0,
        "duplicates": 0,
        "hub_cpu_ms_per_event": 6.5,
        "cpu_ms_per_event": {"web": 3.0, "workers": 2.5, "database": 1.0, "sender": 0.8},
        "peak_rss_mb": 780.0,
        "peak_pss_mb": 360.0,
        "load_before": [1.5, 1.2, 1.0],
    }
    path = tmp_path / "bench" / "RESULTS.md"
    record(path, result)
    record(path, {**result, "drain_rss_mb": {"start": 700.0, "middle": 760.0, "end": 770.0, "max": 775.0}})

    text = path.read_text()
    assert text.startswith(RESULTS_HEADER)
    rows = text[len(RESULTS_HEADER) :].splitlines()
    columns = RESULTS_HEADER.splitlines()[-2].count("|")
    assert len(rows) == 2 and all(row.count("|") == columns for row in rows)
    assert "| abc1234 | postgresql | webhook per event, 16 senders, bench target | 5,000 | 301.2 |" in rows[0]
    assert "| web 3.00, workers 2.50, database 1.00; sender 0.80 |" in rows[0]
    assert "drain 700 → 760 → 770" in rows[1]
