"""Exports of the sync history and the audit log, as CSV and JSON, for a time range: from the
pages and from `manage.py export_history` / `export_audit`, streamed so memory stays flat."""

import csv
import io
import json
import tracemalloc
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hub.models import Delivery, Event
from hub.selectors.audit import EXPORT_COLUMNS as AUDIT_COLUMNS
from hub.selectors.history import EXPORT_COLUMNS
from hub.services.audit import entry_hash
from tests.history_helpers import order_1042_story

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def download(user, name: str, **params) -> tuple[str, str]:
    response = client_for(user).get(reverse(name), params)
    assert response.status_code == 200 and response.streaming
    return response["Content-Disposition"], b"".join(response.streaming_content).decode()


@pytest.fixture
def story(fresh_sandbox, personas):
    return order_1042_story(fresh_sandbox, personas["ops"])


def test_it_exports_the_searched_history_as_csv_one_row_per_delivery(story, personas):
    disposition, text = download(personas["auditor"], "hub-history-export", text="1043", format="csv")
    assert disposition.startswith('attachment; filename="sync-history-') and disposition.endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    by_flow = {row["flow"]: row for row in rows}
    assert set(by_flow) == {"Orders to invoices", "Big buyers to accounts"}
    invoice = by_flow["Orders to invoices"]
    assert (invoice["record_id"], invoice["status"], invoice["dead_letter"], invoice["resolved_by"]) == (
        "ord_1043",
        "succeeded",
        "replayed",
        "oscar-ops",
    )
    assert invoice["resolution_note"] == "typo in the email" and invoice["mapping_version"] == "1"
    assert by_flow["Big buyers to accounts"]["status"] == "skipped"
    assert json.loads(invoice["payload"])["data"]["customer"]["email"] == "not an email"


def test_it_exports_the_history_as_json_for_a_time_range(story, personas):
    received = Event.objects.get(record_id="ord_1042").received_at
    since = timezone.localtime(received - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    _, text = download(personas["auditor"], "hub-history-export", since=since, format="json")
    rows = json.loads(text)
    assert len(rows) == Delivery.objects.count() == 6
    assert {row["record_id"] for row in rows} == {"ord_1042", "ord_77", "ord_1043"}
    assert rows[0]["payload"]["data"]["id"] == rows[0]["record_id"]  # an object, not JSON text
    later = timezone.localtime(received + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    assert (
        json.loads(download(personas["auditor"], "hub-history-export", since=later, format="json")[1]) == []
    )


def test_the_audit_export_carries_the_chain_so_it_can_be_checked_on_its_own(story, personas):
    _, text = download(personas["auditor"], "hub-audit-export", format="json")
    rows = json.loads(text)
    assert [row["seq"] for row in rows] == list(range(1, len(rows) + 1))
    previous = ""
    for row in rows:
        entry = SimpleNamespace(
            **{k: row[k] for k in ("seq", "verb", "target_type", "target_id", "target_label", "diff")},
            actor_name=row["actor"],
            at=timezone.datetime.fromisoformat(row["at"]),
        )
        assert row["prev_hash"] == previous and entry_hash(previous, entry) == row["hash"]
        previous = row["hash"]
    _, text = download(personas["auditor"], "hub-audit-export", verb="replay", format="csv")
    (replay,) = csv.DictReader(io.StringIO(text))
    assert tuple(replay) == AUDIT_COLUMNS and json.loads(replay["diff"])["note"] == "typo in the email"


def test_it_refuses_an_unknown_format_or_a_wrong_filter(personas):
    client = client_for(personas["auditor"])
    assert client.get(reverse("hub-history-export"), {"format": "xml"}).status_code == 400
    response = client.get(reverse("hub-history-export"), {"format": "csv", "text": "ab"})
    assert response.status_code == 400 and "at least 3 characters" in response.content.decode()


def test_the_commands_export_a_time_range_to_a_file_or_stdout(story, tmp_path):
    target = tmp_path / "history.csv"
    call_command("export_history", since=timezone.now() - timedelta(hours=1), output=str(target))
    assert len(list(csv.DictReader(target.open()))) == 6
    call_command("export_history", until=timezone.now() - timedelta(hours=1), output=str(target))
    assert list(csv.DictReader(target.open())) == []
    out = io.StringIO()
    call_command("export_audit", "--format", "json", "--since", "2000-01-01", stdout=out)
    assert {row["verb"] for row in json.loads(out.getvalue())} >= {"save", "replay"}


def test_a_large_export_streams_in_bounded_memory(personas):
    """50,000 deliveries out through the page: the peak of Python memory stays a small fraction
    of what is sent, and the same as for a tenth of the rows."""
    call_command("history_fill", deliveries=50_000, days=10, stdout=io.StringIO())
    client = client_for(personas["auditor"])
    now = timezone.now()

    def export(**params) -> tuple[int, int, int]:
        response = client.get(reverse("hub-history-export"), {"format": "csv", **params})
        tracemalloc.start()
        size = rows = 0
        for chunk in response.streaming_content:
            size += len(chunk)
            rows += chunk.count(b"\n")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size, rows, peak

    tenth = timezone.localtime(now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    small_size, small_rows, small_peak = export(since=tenth)
    size, rows, peak = export()
    assert rows >= 50_000 > small_rows * 5
    assert size > 20_000_000
    assert peak < 10_000_000 and peak < size / 4
    assert peak < small_peak * 2, (peak, small_peak)
