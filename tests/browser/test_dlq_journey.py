"""An ops user works dead letters in the browser: one letter fixed field by field and replayed;
a cause picked from the grouped inbox and all its letters replayed as a job with live progress."""

import json
import re

import pytest
from playwright.sync_api import expect

from dlq.models import BulkJob, DeadLetter
from hub.models import Delivery, DeliveryStatus
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.services.mappings import mapping_version_save
from tests.conftest import wait_for
from tests.dlq.letter_helpers import letters_without_email
from tests.sandbox_helpers import drain_all, employee_event, hr_to_inventory_accounts, records

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_fixes_and_replays_a_dead_letter(fresh_sandbox, personas, sign_in, live_server):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    bad = employee_event(7)
    bad["data"]["email"] = None  # empty: a record that lacks the field would be held as schema drift
    events_store([IncomingEvent(flow.source_system, "employee.hired", bad["id"], bad)])
    drain_all()
    letter = DeadLetter.objects.get()

    page = sign_in(personas["ops"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dead letters").click()
    expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="emp_7")
    expect(row).to_contain_text("The mapped record breaks what the target accepts.")
    row.get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(rf"/dead-letters/{letter.pk}/$"))
    expect(page.get_by_role("heading", name="What went wrong")).to_be_visible()

    page.get_by_text("Fix and replay", exact=True).first.click()  # open the panel
    fields = page.locator("form.fix-fields")
    expect(fields.get_by_label("first_name")).to_have_value("Ann")  # prefilled from the record
    expect(fields.get_by_label("email")).to_have_value("")
    page.get_by_text("Advanced: edit the raw JSON").click()
    textarea = page.get_by_label("Corrected source record (JSON)")
    record = json.loads(textarea.input_value())
    assert record["email"] is None
    textarea.fill('{"broken": ')
    page.get_by_role("button", name="Fix and replay as JSON").click()
    expect(page.locator(".field-error")).to_contain_text("not valid JSON")

    # Field by field: the email the target needs, typed beside the original.
    fields = page.locator("form.fix-fields")
    fields.get_by_label("email").fill("Seven@Example.com")
    fields.get_by_label(re.compile("What did you fix")).fill("added the missing email")
    fields.get_by_role("button", name="Fix and replay").click()

    expect(page).to_have_url(f"{live_server.url}/dead-letters/")
    expect(page.locator(".message.success")).to_contain_text("fixed and replayed")
    expect(
        page.get_by_text("No dead letters. Every delivery either succeeded or is still being retried.")
    ).to_be_visible()

    drain_all()
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert [a["email"] for a in records(fresh_sandbox, "inventory", "accounts")] == ["seven@example.com"]


def test_it_groups_letters_by_cause_and_replays_one_cause_in_bulk(
    fresh_sandbox, personas, sign_in, live_server, start_worker
):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    letters_without_email(flow, range(13, 18))  # one cause: no email to send
    rules = flow.mapping.current_version.rules
    # Another: a mapping change that casts names to numbers fails every hire after it...
    cast = {
        "target": "name",
        "source": "first_name",
        "transforms": [{"name": "cast", "options": {"to": "integer"}}],
    }
    broken = [cast if rule["target"] == "name" else rule for rule in rules]
    mapping_version_save(mapping=flow.mapping, rules=broken, actor=None)
    events_store(
        [
            IncomingEvent(flow.source_system, "employee.hired", f"e{n}", employee_event(n))
            for n in range(1, 13)
        ]
    )
    drain_all()
    assert DeadLetter.objects.unresolved().count() == 17
    mapping_version_save(mapping=flow.mapping, rules=rules, actor=None)  # ...until it is rolled back
    start_worker(workers=1)

    page = sign_in(personas["ops"])
    page.goto(f"{live_server.url}/dead-letters/")
    causes = page.get_by_role("table", name=re.compile("grouped by cause"))
    cast = causes.get_by_role("row").filter(has_text="cannot convert")
    expect(cast).to_contain_text("12")
    expect(causes.get_by_role("row").filter(has_text="is required")).to_contain_text("5")
    cast.get_by_role("link", name="Show these").click()
    expect(page.get_by_role("button", name="Replay all 12")).to_be_visible()
    expect(page.locator("input[name=letters]")).to_have_count(12)

    page.get_by_role("button", name="Replay all 12").click()
    expect(page).to_have_url(re.compile(r"/dead-letters/jobs/\d+/$"))
    expect(page.get_by_role("heading", name="Replay 12 dead letters")).to_be_visible()
    # The progress region refreshes itself until the job is done: no reload.
    expect(page.locator("#job-progress")).to_contain_text("12 of 12", timeout=30_000)
    expect(page.get_by_role("heading", name="Finished")).to_be_visible()
    expect(page.locator("[data-tally=done]")).to_have_text("12")
    expect(page.get_by_role("button", name="Cancel the job")).to_have_count(0)

    wait_for(lambda: len(records(fresh_sandbox, "inventory", "accounts")) == 12, message="12 accounts")
    page.get_by_role("link", name="Back to the inbox").click()
    expect(page.locator("input[name=letters]")).to_have_count(5)
    assert BulkJob.objects.get().done == 12
