"""The audit trail is append-only through every path and hash-chained: `audit_verify` names the
first entry edited or removed behind the hub's back, and concurrent writers never fork it."""

import io
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from hub.models import AppendOnlyError, AuditEntry
from hub.pipeline import clock
from hub.services.audit import audit_append, audit_purge, audit_record, audit_verify, entry_hash
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db


def entries(count: int) -> list[AuditEntry]:
    system = SystemFactory()
    return [
        audit_record(actor=None, verb="update", target=system, diff={"n": [i, i + 1], "ratio": 1.5 * i})
        for i in range(count)
    ]


def raw(sql: str, params: list) -> None:
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


def verify() -> str:
    """The command's verdict: "" when the chain is whole, else the message it exits with."""
    try:
        call_command("audit_verify", stdout=io.StringIO())
    except CommandError as exc:
        return str(exc)
    return ""


def test_each_entry_links_to_the_one_before_it():
    first, second, third = entries(3)
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == "" and second.prev_hash == first.hash and third.prev_hash == second.hash
    report = audit_verify()
    assert report.ok and report.checked == 3 and report.head_hash == third.hash


def test_it_names_an_entry_edited_with_a_raw_update():
    _, middle, _ = entries(3)
    raw("UPDATE {table} SET target_label = %s WHERE id = %s", ["someone else", middle.pk])
    problem = verify()
    assert f"entry #{middle.seq} (id {middle.pk}" in problem and "was edited" in problem


def test_it_names_an_entry_whose_diff_was_edited_even_when_its_hash_was_recomputed():
    _, second, third = entries(3)
    second.diff = {"n": [0, 99]}
    forged = entry_hash(second.prev_hash, second)
    raw("UPDATE {table} SET diff = %s, hash = %s WHERE id = %s", ['{"n": [0, 99]}', forged, second.pk])
    problem = verify()
    assert f"entry #{third.seq}" in problem and f"no longer links to entry #{second.seq}" in problem


def test_it_names_an_entry_removed_with_a_raw_delete():
    _, middle, last = entries(3)
    raw("DELETE FROM {table} WHERE id = %s", [middle.pk])
    assert verify() == f"audit log broken: entry #{middle.seq} is missing: the log jumps from #1 to " + (
        f"entry #{last.seq} (id {last.pk}, {last.at:%Y-%m-%d %H:%M:%S}, hub update system "
        f"{last.target_label!r})"
    )


def test_it_names_the_first_entries_removed_from_the_start():
    first, *_ = entries(3)
    raw("DELETE FROM {table} WHERE id = %s", [first.pk])
    assert "entry #1 is missing" in verify()


def test_it_catches_entries_cut_off_the_end_with_the_head_recorded_earlier(capsys):
    *_, last = entries(3)
    call_command("audit_verify")
    assert f"head #{last.seq} {last.hash}" in capsys.readouterr().out
    raw("DELETE FROM {table} WHERE id = %s", [last.pk])
    assert verify() == ""  # the chain alone cannot see it...
    with pytest.raises(CommandError, match=f"entry #{last.seq}, recorded earlier as the head, is missing"):
        call_command("audit_verify", head=f"{last.seq}:{last.hash}")


def test_a_recorded_purge_is_not_a_break():
    with clock.travelled(-400 * 86400):
        entries(5)
    recent = entries(2)
    removed = audit_purge(before=recent[0].at, batch_size=2)
    assert removed == 5
    assert AuditEntry.objects.filter(verb="purge_audit").count() == 3
    assert audit_verify().ok
    assert AuditEntry.objects.order_by("seq").first().seq == 6


def test_no_path_through_the_orm_changes_or_deletes_an_entry():
    entry, *_ = entries(2)
    entry.target_label = "changed"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(target_label="changed")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    assert audit_verify().ok


def test_the_django_admin_shows_audit_entries_read_only(admin_client):
    entry, *_ = entries(1)
    assert admin_client.get(reverse("admin:hub_auditentry_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:hub_auditentry_change", args=[entry.pk])).status_code == 200
    assert admin_client.get(reverse("admin:hub_auditentry_add")).status_code == 403
    response = admin_client.post(reverse("admin:hub_auditentry_change", args=[entry.pk]), {"verb": "x"})
    assert response.status_code == 403
    assert (
        admin_client.post(
            reverse("admin:hub_auditentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEntry.objects.get(pk=entry.pk).verb == "update"


def test_the_api_reads_audit_entries_and_refuses_every_change(personas):
    entry, *_ = entries(1)
    client = Client()
    client.force_login(personas["admin"])
    url = reverse("api-audit-detail", args=[entry.pk])
    assert client.get(url).status_code == 200
    for method in (client.put, client.patch, client.delete):
        assert method(url, {"verb": "x"}, content_type="application/json").status_code == 405
    assert client.post(reverse("api-audit-list"), {}, content_type="application/json").status_code == 405
    assert AuditEntry.objects.get(pk=entry.pk).verb == "update"


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    system = SystemFactory()
    errors: list[Exception] = []
    start = threading.Barrier(6)

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(10):
                audit_append(actor=None, verb="update", target_type="system", target_id=str(system.pk),
                             diff={"writer": n, "i": i})  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(AuditEntry.objects.values_list("seq", flat=True)) == list(range(1, 61))
    assert audit_verify().ok
