"""Dead-letter pages: the inbox, the detail page, replay / fix and replay / discard, bulk actions,
who may do what, and bounded query counts."""

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from dlq.jobs import bulk_job_run
from dlq.models import BulkJob, DeadLetter
from hub.models import AuditEntry, Delivery, DeliveryStatus, Flow, FlowState, RecordLink
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.services.flows import flow_pause
from tests.dlq.letter_helpers import keep_tasks, letters_without_email, outcome_unknown_letter
from tests.sandbox_helpers import drain_all, employee_event, hr_to_inventory_accounts, records

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HX-Request": "true", "HX-Target": "dlq-list"}
queued = pytest.fixture(keep_tasks, name="queued")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bad_events(flow, count: int) -> None:
    events = []
    for n in range(1, count + 1):
        bad = employee_event(n)
        bad["data"]["email"] = None  # empty: a record that lacks the field would be held as schema drift
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
    assert "The mapped record breaks what the target accepts." in page
    assert letter.delivery.record_key in page
    assert reverse("dlq-detail", args=[letter.pk]) in page
    assert "Replay selected" not in page  # auditors read only


def test_it_shows_an_empty_inbox(personas):
    page = client_for(personas["ops"]).get(reverse("dlq-inbox")).content.decode()
    assert "No dead letters. Every delivery either succeeded or is still being retried." in page


def test_it_filters_by_flow_and_error_class_and_refreshes_the_list_region(letter, personas):
    ops = client_for(personas["ops"])
    region = ops.get(
        reverse("dlq-inbox"), {"error_class": "contract_violation", "flow": letter.flow_id}, headers=HTMX
    )
    body = region.content.decode()
    assert body.lstrip().startswith('<div id="dlq-list">') and "<html" not in body
    assert letter.delivery.record_key in body
    other = ops.get(reverse("dlq-inbox"), {"error_class": "timeout"}).content.decode()
    assert letter.delivery.record_key not in other and "match these filters" in other


def test_it_shows_the_detail_without_secrets(letter, personas):
    page = client_for(personas["auditor"]).get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert letter.reason[:40] in page or json.dumps(letter.reason)[1:40] in page
    assert "The mapped record breaks what the target accepts." in page
    assert "Ann" in page and "Lee1" in page  # the source record
    assert "inv-demo-key" not in page
    assert "Fix and replay" not in page  # no actions for auditors
    # The plain sentence with the next step, never the raw class name beside it, nor ".:".
    assert "Correct the rule the reason names in the field mapper" in page
    assert "contract_violation" not in page.replace('value="contract_violation"', "")
    assert "record.:" not in page


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


# --------------------------------------------------------------------------------------------------
# The inbox at scale: causes, filters, pages, bulk jobs
# --------------------------------------------------------------------------------------------------


def test_it_groups_open_letters_by_cause_with_a_link_to_each(flow, personas):
    bad_events(flow, 3)
    page = client_for(personas["auditor"]).get(reverse("dlq-inbox")).content.decode()
    assert "What went wrong, by cause" in page
    cause = DeadLetter.objects.first()
    assert '<strong class="count">3</strong>' in page and "Inventory" in page
    assert "Correct the rule the reason names in the field mapper" in page  # the next step
    link = f"error_class=contract_violation&amp;system={flow.target_system_id}&amp;pattern="
    assert link in page
    shown = client_for(personas["auditor"]).get(
        reverse("dlq-inbox"),
        {"error_class": "contract_violation", "system": flow.target_system_id, "pattern": cause.pattern},
    )
    assert shown.content.decode().count('href="/dead-letters/') >= 3


def test_it_filters_by_record_text_system_and_time(flow, personas):
    bad_events(flow, 3)
    ops = client_for(personas["ops"])

    def records_shown(**params) -> list[str]:
        body = ops.get(reverse("dlq-inbox"), params).content.decode()
        return sorted(key for key in ("emp_1", "emp_2", "emp_3") if f">{key}<" in body)

    assert records_shown(record="emp_2") == ["emp_2"]
    assert records_shown(text="is required") == ["emp_1", "emp_2", "emp_3"]
    assert records_shown(text="nothing like this") == []
    assert records_shown(system=flow.source_system_id) == ["emp_1", "emp_2", "emp_3"]
    assert records_shown(since="2000-01-01T00:00", until="2001-01-01T00:00") == []
    assert records_shown(since="2000-01-01T00:00") == ["emp_1", "emp_2", "emp_3"]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"since": "yesterday"}, "Enter a valid date/time."),
        ({"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}, "must be later than"),
        ({"flow": "999999"}, "Select a valid choice."),
        ({"error_class": "nonsense"}, "Select a valid choice."),
        ({"before": "-4"}, "greater than or equal to 1"),
    ],
)
def test_it_answers_a_bad_filter_with_a_precise_error(letter, personas, params, error):
    response = client_for(personas["ops"]).get(reverse("dlq-inbox"), params)
    assert response.status_code == 400
    body = response.content.decode()
    assert error in body and "Correct the filter marked above" in body


def test_it_pages_through_letters_newest_first(flow, personas):
    bad_events(flow, 55)
    ops = client_for(personas["ops"])
    first = ops.get(reverse("dlq-inbox"), {"flow": flow.pk}).content.decode()
    assert first.count('name="letters"') == 50 and ">emp_55<" in first and ">emp_1<" not in first
    older = re.search(r'href="/dead-letters/\?([^"]*before=\d+)"', first).group(1).replace("&amp;", "&")
    second = ops.get(f"{reverse('dlq-inbox')}?{older}").content.decode()
    assert second.count('name="letters"') == 5 and ">emp_1<" in second and ">emp_55<" not in second
    assert "← Newest" in second


def test_it_replays_everything_matching_as_a_job_with_progress(flow, personas, queued):
    bad_events(flow, 4)
    ops = client_for(personas["ops"])
    inbox = ops.get(reverse("dlq-inbox"), {"record": "emp_2"}).content.decode()
    assert "Replay all 1" in inbox and 'name="record" value="emp_2"' in inbox
    started = ops.post(reverse("dlq-bulk-all"), {"action": "replay", "record": "emp_2"})
    job = BulkJob.objects.get()
    assert started["Location"] == reverse("dlq-job", args=[job.pk]) and job.total == 1
    page = ops.get(started["Location"]).content.decode()
    assert "Waiting for a worker" in page and 'hx-trigger="every 1s"' in page and "Cancel the job" in page

    bulk_job_run(job_id=job.pk)
    region = ops.get(started["Location"], headers={"HX-Request": "true", "HX-Target": "job-progress"})
    body = region.content.decode()
    assert body.lstrip().startswith('<section id="job-progress"') and "<html" not in body
    assert "Finished" in body and "every 1s" not in body and "1 of 1" in body
    assert DeadLetter.objects.unresolved().count() == 3


def test_it_refuses_a_bulk_job_without_a_reason_or_over_nothing(letter, personas):
    ops = client_for(personas["ops"])
    no_reason = ops.post(reverse("dlq-bulk-all"), {"action": "discard", "reason": " "}, follow=True)
    assert "Nothing was started: Say why you discard it" in no_reason.content.decode()
    nothing = ops.post(reverse("dlq-bulk-all"), {"action": "replay", "error_class": "timeout"}, follow=True)
    assert "No open dead letters match these filters" in nothing.content.decode()
    bad = ops.post(reverse("dlq-bulk-all"), {"action": "replay", "since": "soon"}, follow=True)
    assert "Enter a valid date/time" in bad.content.decode()
    assert not BulkJob.objects.exists()


def test_it_lets_every_role_watch_a_job_and_only_operators_start_or_cancel_it(letter, personas, queued):
    assert (
        client_for(personas["auditor"]).post(reverse("dlq-bulk-all"), {"action": "replay"}).status_code == 403
    )
    client_for(personas["admin"]).post(reverse("dlq-bulk-all"), {"action": "replay"})
    job = BulkJob.objects.get()
    auditor = client_for(personas["auditor"])
    page = auditor.get(reverse("dlq-job", args=[job.pk])).content.decode()
    assert "Waiting for a worker" in page and "Cancel the job" not in page
    assert auditor.post(reverse("dlq-job-cancel", args=[job.pk])).status_code == 403
    assert client_for(personas["outsider"]).get(reverse("dlq-job", args=[job.pk])).status_code == 403
    cancelled = client_for(personas["ops"]).post(reverse("dlq-job-cancel", args=[job.pk]), follow=True)
    assert "Job cancelled before it started" in cancelled.content.decode()
    again = client_for(personas["ops"]).post(reverse("dlq-job-cancel", args=[job.pk]), follow=True)
    assert "Nothing to cancel: the job has already cancelled" in again.content.decode()
    assert client_for(personas["ops"]).get(reverse("dlq-job", args=[999999])).status_code == 404


# --------------------------------------------------------------------------------------------------
# One letter: outcome unknown, paused flows, the field-by-field fix
# --------------------------------------------------------------------------------------------------


def test_it_asks_whether_an_outcome_unknown_create_arrived(flow, personas):
    letter = outcome_unknown_letter(flow)
    auditor_page = (
        client_for(personas["auditor"]).get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    )
    assert "Did it arrive?" not in auditor_page
    ops = client_for(personas["ops"])
    page = ops.get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert "Did it arrive?" in page and "It arrived" in page and "Send again" in page
    done = ops.post(reverse("dlq-arrived", args=[letter.pk]), {"target_id": "acct_7"}, follow=True)
    assert "arrived, the delivery counts as succeeded and is linked to acct_7" in done.content.decode()
    assert RecordLink.objects.get(source_id="emp_1").target_id == "acct_7"
    detail = ops.get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert "Arrived" in detail and "acct_7" in detail and "Did it arrive?" not in detail


def test_it_sends_an_outcome_unknown_create_again_and_refuses_it_for_other_letters(flow, letter, personas):
    ops = client_for(personas["ops"])
    assert "Did it arrive?" not in ops.get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    refused = ops.post(reverse("dlq-send-again", args=[letter.pk]), follow=True)
    assert "nothing to confirm" in refused.content.decode()
    unknown = outcome_unknown_letter(flow, 2)
    sent = ops.post(reverse("dlq-send-again", args=[unknown.pk]), follow=True)
    assert (
        "sent anew (no lookup first). The delivery of record emp_2 is being sent again."
        in sent.content.decode()
    )
    assert Delivery.objects.get(pk=unknown.delivery_id).maybe_sent is False
    assert client_for(personas["auditor"]).post(reverse("dlq-arrived", args=[unknown.pk])).status_code == 403


def test_it_says_a_replay_into_a_paused_flow_is_held_and_offers_resume_and_replay(flow, personas):
    first, second = letters_without_email(flow, [1, 2])
    flow_pause(flow=flow, actor=personas["ops"], reason="vendor maintenance")
    ops = client_for(personas["ops"])
    page = ops.get(reverse("dlq-detail", args=[first.pk])).content.decode()
    assert "a replay is held until the flow resumes" in page and "Resume and replay" in page
    replayed = ops.post(reverse("dlq-replay", args=[first.pk]), follow=True).content.decode()
    assert (
        f"record emp_1 is held until flow “{flow.name}” resumes" in replayed
        and "is being sent again" not in replayed
    )
    held = ops.get(reverse("dlq-detail", args=[first.pk])).content.decode()
    assert "this delivery is held until the flow resumes" in held and "Resume the flow" in held
    resumed = ops.post(reverse("dlq-resume-replay", args=[second.pk]), follow=True).content.decode()
    assert "resumed. Dead letter" in resumed and "is being sent again" in resumed
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE


def test_only_admins_may_switch_on_a_draft_flow_to_replay(flow, letter, personas):
    Flow.objects.filter(pk=flow.pk).update(state=FlowState.DRAFT)
    ops_page = client_for(personas["ops"]).get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert "Resume and replay" not in ops_page and "is draft" in ops_page
    assert client_for(personas["ops"]).post(reverse("dlq-resume-replay", args=[letter.pk])).status_code == 403
    admin = client_for(personas["admin"])
    assert "Resume and replay" in admin.get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert admin.post(reverse("dlq-resume-replay", args=[letter.pk])).status_code == 302
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE
    assert AuditEntry.objects.filter(target_type="flow", verb="enable").exists()


def test_it_fixes_field_by_field_and_shows_the_original_beside_the_correction(
    letter, personas, fresh_sandbox
):
    ops = client_for(personas["ops"])
    page = ops.get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert 'id="fields_field_1"' in page and 'value="Ann"' in page  # first_name, prefilled
    form = {f"field_{n}": value for n, value in enumerate(["emp_1", "Ann", "Lee1", "", "Operations"])}
    required = ops.post(reverse("dlq-fix-fields", args=[letter.pk]), {**form, "field_0": ""})
    assert required.status_code == 400 and "Required by the data model" in required.content.decode()
    done = ops.post(
        reverse("dlq-fix-fields", args=[letter.pk]),
        {**form, "field_3": "Ann.Fixed@Example.com", "note": "typed the email"},
        follow=True,
    )
    assert "fixed and replayed" in done.content.decode()
    drain_all()
    assert [a["email"] for a in records(fresh_sandbox, "inventory", "accounts")] == ["ann.fixed@example.com"]
    detail = client_for(personas["auditor"]).get(reverse("dlq-detail", args=[letter.pk])).content.decode()
    assert "The original beside the correction" in detail
    assert '<span class="added">  &quot;email&quot;: &quot;Ann.Fixed@Example.com&quot;,</span>' in detail


def test_it_keeps_every_new_page_within_a_bounded_number_of_queries(
    flow, personas, django_assert_max_num_queries, queued
):
    bad_events(flow, 20)
    outcome_unknown_letter(flow, 21)
    ops = client_for(personas["ops"])
    ops.post(reverse("dlq-bulk-all"), {"action": "replay", "record": "emp_3"})
    with django_assert_max_num_queries(14):
        ops.get(reverse("dlq-inbox"), {"system": flow.target_system_id, "text": "missing"})
    with django_assert_max_num_queries(8):
        ops.get(reverse("dlq-job", args=[BulkJob.objects.get().pk]))
    letter = DeadLetter.objects.get(record_key="emp_21")
    with django_assert_max_num_queries(16):
        assert ops.get(reverse("dlq-detail", args=[letter.pk])).status_code == 200


def test_the_bulk_form_carries_every_filter_of_the_page(flow, personas, queued):
    bad_events(flow, 2)
    ops = client_for(personas["ops"])
    filters = {
        "since": "2000-01-02T03:04",
        "text": "is required",
        "flow": str(flow.pk),
        "error_class": "contract_violation",
    }
    page = ops.get(reverse("dlq-inbox"), filters).content.decode()
    form = page[page.index('action="/dead-letters/bulk/all/"') :]
    hidden = dict(
        re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form[: form.index("</form>")])
    )
    assert {name: value for name, value in hidden.items() if name != "csrfmiddlewaretoken"} == filters
    ops.post(reverse("dlq-bulk-all"), {**hidden, "action": "discard", "reason": "old"})
    job = BulkJob.objects.get()
    assert job.total == 2 and job.filters["since"].startswith("2000-01-02T03:04")
    assert job.description.startswith("flow “") and "text “is required”" in job.description


def test_it_refuses_a_selection_too_large_for_one_request(letter, personas):
    response = client_for(personas["ops"]).post(
        reverse("dlq-bulk"), {"letters": list(range(1, 602)), "action": "replay"}, follow=True
    )
    assert "Select at most 500 dead letters" in response.content.decode()
    letter.refresh_from_db()
    assert letter.resolved_at is None
