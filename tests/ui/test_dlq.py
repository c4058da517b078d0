"""Dead-letter pages: the inbox, the detail page, replay / fix and replay / discard, bulk actions,
who may do what, and bounded query counts."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from dlq.models import DeadLetter
from hub.models import AuditEntry, Delivery, DeliveryStatus
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.sandbox_helpers import drain_all, employee_event, hr_to_inventory_accounts, records

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HX-Request": "true", "HX-Target": "dlq-list"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bad_events(flow, count: int) -> None:
    events = []
    for n in range(1, count + 1):
        bad = employee_event(n)
        del bad["data"]["email"]
        events.append(IncomingEvent(flow.source_system, "employee.hired", bad["id"], bad))
    events_store(events)
    drain_all()


@pytest.fixture
def flow(fresh_sandbox):
    return hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")


@pytest.fixture
def letter(flow):
    bad_events(flow, 1)
    return DeadLetter.objects.get()


def test_it_lists_open_dead_letters_in_the_inbox(letter, personas):
    page = client_for(personas["auditor"]).get(reverse("dlq-inbox")).content.decode()
    assert letter.flow.name in page
    assert reverse("flows-detail", args=[letter.flow_id]) in page
    assert "The mapping could not produce a valid record." in page
    assert letter.delivery.record_key in page
    assert reverse("dlq-detail", args=[letter.pk]) in page
    assert "Replay selected" not in page  # auditors read only


def test_it_shows_an_empty_inbox(personas):
    page = client_for(personas["ops"]).get(reverse("dlq-inbox")).content.decode()
    assert "No dead letters. Every delivery either succeeded or is still being retried." in page


def test_it_filters_by_flow_and_error_class_and_refreshes_the_list_region(letter, personas):
    ops = client_for(personas["ops"])
    region = ops.get(
        reverse("dlq-inbox"), {"error_class": "mapping_error", "flow": letter.flow_id}, headers=HTMX
    )
    body = region.content.decode()
    assert body.lstrip().startswith('<div id="dlq-list">') and "<html" not in body
    assert letter.delivery.record_key in body
    other = ops.get(reverse("dlq-inbox"), {"error_class": "timeout"}).content.decode()
    assert letter.delivery.record_key not in other and "match these filters" in other


def test_it_shows_the_detail_without_secrets(letter, personas):
    page = client_for(personas["auditor"]).get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert letter.reason[:40] in page or json.dumps(letter.reason)[1:40] in page
    assert "The mapping could not produce a valid record." in page
    assert "Ann" in page and "Lee1" in page  # the source record
    assert "inv-demo-key" not in page
    assert "Fix and replay" not in page  # no actions for auditors


def test_it_shows_every_attempt_with_its_summary(fresh_sandbox, personas):
    from tests.sandbox_helpers import dead_letter_of_a_failing_target

    letter = dead_letter_of_a_failing_target(fresh_sandbox)
    page = client_for(personas["ops"]).get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert "Attempt 1" in page and "Attempt 2" in page
    assert "The system answered with a server error (5xx)." in page
    assert "inv-demo-key" not in page


def test_it_fixes_and_replays_with_a_corrected_record(letter, personas, fresh_sandbox):
    ops = client_for(personas["ops"])
    page = ops.get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert "Fix and replay" in page and "&quot;first_name&quot;: &quot;Ann&quot;" in page  # prefilled
    corrected = {**letter.delivery.source_record(), "email": "Fixed@Example.com"}
    response = ops.post(
        reverse("dlq-fix", args=[letter.pk]),
        {"record": json.dumps(corrected), "note": "added email"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dlq-inbox")
    assert "fixed and replayed" in response.content.decode()
    drain_all()
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert [a["email"] for a in records(fresh_sandbox, "inventory", "accounts")] == ["fixed@example.com"]
    letter.refresh_from_db()
    assert letter.resolution == "replayed" and letter.resolution_note == "added email"
    detail = ops.get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert "Replayed" in detail and "oscar-ops" in detail and "Fix and replay" not in detail


def test_it_answers_bad_json_with_a_precise_form_error(letter, personas):
    response = client_for(personas["ops"]).post(
        reverse("dlq-fix", args=[letter.pk]), {"record": '{\n  "a": 1,\n}'}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="field-error"' in body and "line 3 column 1" in body
    letter.refresh_from_db()
    assert letter.resolved_at is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": NaN}', "NaN is not a JSON value"),
        ('{"a": "\\ud800"}', "lone UTF-16 surrogate"),
        ("[" * 10_000 + "]" * 10_000, "nests deeper than 64 levels"),
        ('{"a": 1e999}', "too large to store"),
    ],
)
def test_it_answers_json_no_database_can_store_with_a_form_error(letter, personas, text, reason):
    response = client_for(personas["ops"]).post(reverse("dlq-fix", args=[letter.pk]), {"record": text})
    assert response.status_code == 400
    assert reason in response.content.decode()
    letter.refresh_from_db()
    assert letter.resolved_at is None


def test_it_replays_as_is_and_refuses_twice_politely(letter, personas):
    ops = client_for(personas["ops"])
    first = ops.post(reverse("dlq-replay", args=[letter.pk]), follow=True)
    assert "replayed" in first.content.decode()
    again = ops.post(reverse("dlq-replay", args=[letter.pk]), follow=True)
    assert again.status_code == 200 and "already replayed" in again.content.decode()
    assert AuditEntry.objects.filter(verb="replay").count() == 1


def test_it_discards_only_with_a_reason(letter, personas):
    ops = client_for(personas["ops"])
    missing = ops.post(reverse("dlq-discard", args=[letter.pk]), {"reason": "  "})
    assert missing.status_code == 400 and "Say why you discard it" in missing.content.decode()
    letter.refresh_from_db()
    assert letter.resolved_at is None
    done = ops.post(reverse("dlq-discard", args=[letter.pk]), {"reason": "test data"}, follow=True)
    assert "discarded" in done.content.decode()
    letter.refresh_from_db()
    assert letter.resolution == "discarded" and letter.resolution_note == "test data"
    resolved = ops.get(reverse("dlq-inbox"), {"resolved": "on"}).content.decode()
    assert "test data" in resolved and "oscar-ops" in resolved and "Discarded" in resolved


def test_it_replays_and_discards_in_bulk(flow, personas, fresh_sandbox):
    bad_events(flow, 4)
    ops = client_for(personas["ops"])
    ids = list(DeadLetter.objects.order_by("pk").values_list("pk", flat=True))
    no_reason = ops.post(
        reverse("dlq-bulk"), {"letters": ids[:2], "action": "discard", "reason": ""}, follow=True
    )
    assert "Say why you discard it" in no_reason.content.decode()
    assert DeadLetter.objects.unresolved().count() == 4
    replayed = ops.post(reverse("dlq-bulk"), {"letters": ids[:2], "action": "replay"}, follow=True)
    assert "Replayed 2 dead letters" in replayed.content.decode()
    discarded = ops.post(
        reverse("dlq-bulk"), {"letters": ids[1:], "action": "discard", "reason": "old test data"}, follow=True
    )
    body = discarded.content.decode()
    assert "Discarded 2 dead letters" in body and "already been resolved" in body
    assert set(DeadLetter.objects.values_list("resolution", flat=True)) == {"replayed", "discarded"}
    assert DeadLetter.objects.unresolved().count() == 0


def test_it_refuses_every_post_to_auditors_and_outsiders(letter, personas):
    posts = [
        (reverse("dlq-replay", args=[letter.pk]), {}),
        (reverse("dlq-fix", args=[letter.pk]), {"record": "{}"}),
        (reverse("dlq-discard", args=[letter.pk]), {"reason": "x"}),
        (reverse("dlq-bulk"), {"letters": [letter.pk], "action": "replay"}),
    ]
    for role in ("auditor", "outsider"):
        client = client_for(personas[role])
        for url, data in posts:
            assert client.post(url, data).status_code == 403, (role, url)
    outsider = client_for(personas["outsider"])
    assert outsider.get(reverse("dlq-inbox")).status_code == 403
    assert outsider.get(reverse("dlq-detail", args=[letter.pk])).status_code == 403
    anonymous = Client()
    assert anonymous.get(reverse("dlq-inbox")).status_code == 302
    assert anonymous.post(reverse("dlq-discard", args=[letter.pk]), {"reason": "x"})["Location"].startswith(
        "/accounts/login/"
    )
    letter.refresh_from_db()
    assert letter.resolved_at is None


def test_it_lets_admins_act(letter, personas):
    response = client_for(personas["admin"]).post(reverse("dlq-discard", args=[letter.pk]), {"reason": "dup"})
    assert response.status_code == 302


def test_it_keeps_the_query_count_bounded(flow, personas, django_assert_max_num_queries):
    bad_events(flow, 20)
    assert DeadLetter.objects.unresolved().count() == 20
    ops = client_for(personas["ops"])
    with django_assert_max_num_queries(12):
        page = ops.get(reverse("dlq-inbox")).content.decode()
    assert page.count('name="letters"') == 20
    letter = DeadLetter.objects.first()
    with django_assert_max_num_queries(14):
        assert ops.get(reverse("dlq-detail", args=[letter.pk])).status_code == 200
    DeadLetter.objects.update(resolution="discarded", resolution_note="x", resolved_by=personas["ops"])
    from django.utils import timezone

    DeadLetter.objects.update(resolved_at=timezone.now())
    with django_assert_max_num_queries(12):
        ops.get(reverse("dlq-inbox"), {"resolved": "on"})
