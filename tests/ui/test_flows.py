"""Flow pages: list, wizard, detail with live deliveries, edit, lifecycle buttons, and who may do what."""

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from hub.models import Attempt, AuditEntry, Delivery, DeliveryStatus, Event, Flow, FlowState, Trigger
from hub.pipeline.retry import default_retry_classes
from mappings.models import Mapping
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
RULES = [
    {"target": "email", "source": "email", "transforms": [{"name": "lower"}]},
    {
        "target": "name",
        "transforms": [{"name": "template", "options": {"template": "{first_name} {last_name}"}}],
    },
]


@pytest.fixture
def hr():
    return SystemFactory(name="HR", slug="hr", kind="hr")


@pytest.fixture
def inventory():
    return SystemFactory(name="Inventory", slug="inventory", kind="inventory")


@pytest.fixture
def employee(hr):
    return model_with_fields(hr, "Employee", "/employees", "id! first_name last_name email! department updated_at:datetime")  # fmt: skip


@pytest.fixture
def account(inventory):
    return model_with_fields(inventory, "Account", "/accounts", "email! name")  # fmt: skip


@pytest.fixture
def flow(employee, account):
    return flow_with_mapping(source_model=employee, target_model=account, rules=RULES, event_type="employee.hired",
                             name="New hires get accounts")  # fmt: skip


def as_user(client, personas, who):
    if who != "anonymous":
        client.force_login(personas[who])
    return client


def mapper_url(mapping_id):
    return reverse("mappings-mapper", args=[mapping_id])


# --------------------------------------------------------------------------------------------------
# The list
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who, status", [("admin", 200), ("ops", 200), ("auditor", 200), ("outsider", 403)])
def test_it_lists_flows_to_every_role(client, personas, flow, who, status):
    response = as_user(client, personas, who).get(reverse("flows-list"))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert "New hires get accounts" in page
        assert "HR · Employee" in page and "Inventory · Account" in page
        assert "employee.hired" in page and "Real-time" in page


def test_it_sends_anonymous_visitors_to_sign_in(client, flow):
    response = client.get(reverse("flows-list"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_it_shows_an_empty_state_with_a_way_forward(client, personas):
    page = as_user(client, personas, "admin").get(reverse("flows-list")).content.decode()
    assert "No flows yet: connect two systems" in page
    assert reverse("flows-add") in page


def test_it_shows_the_new_flow_button_only_to_admins(client, personas, flow):
    assert (
        reverse("flows-add") in as_user(client, personas, "admin").get(reverse("flows-list")).content.decode()
    )
    client.logout()
    page = as_user(client, personas, "auditor").get(reverse("flows-list")).content.decode()
    assert reverse("flows-add") not in page
    assert reverse("flows-spec-import") not in page


def test_it_describes_schedules_in_plain_words(client, personas, employee, account):
    flow_with_mapping(source_model=employee, target_model=account, rules=RULES, name="Sweep",
                      trigger=Trigger.SCHEDULED, schedule_minutes=15)  # fmt: skip
    flow_with_mapping(source_model=employee, target_model=account, rules=RULES, name="Nightly",
                      trigger=Trigger.SCHEDULED, schedule_cron="0 2 * * 1-5")  # fmt: skip
    page = as_user(client, personas, "ops").get(reverse("flows-list")).content.decode()
    assert "Every 15 minutes" in page
    assert "Weekdays at 02:00" in page


def test_it_lists_many_flows_in_a_fixed_number_of_queries(client, personas, employee, account,
                                                           django_assert_max_num_queries):  # fmt: skip
    as_user(client, personas, "admin")
    for n in range(3):
        flow_with_mapping(source_model=employee, target_model=account, rules=RULES, name=f"flow {n}")
    client.get(reverse("flows-list"))  # warm the session
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("flows-list"))
    for n in range(3, 25):
        flow_with_mapping(source_model=employee, target_model=account, rules=RULES, name=f"flow {n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("flows-list"))
    assert response.content.decode().count('class="badge ') >= 25


def test_it_filters_the_list_by_health(client, personas, flow, employee, account):
    flow_with_mapping(
        source_model=employee, target_model=account, rules=RULES, name="Stopped", state="paused"
    )
    page = as_user(client, personas, "admin").get(reverse("flows-list") + "?health=paused").content.decode()
    assert "Stopped" in page and "New hires get accounts" not in page
    assert (
        as_user(client, personas, "admin").get(reverse("flows-list") + "?health=<script>").status_code == 200
    )


# --------------------------------------------------------------------------------------------------
# The wizard
# --------------------------------------------------------------------------------------------------


def wizard(client, step, **data):
    return client.post(f"{reverse('flows-add')}?step={step}", data)


def walk_to(client, last_step, employee, account, overrides=None):
    overrides = overrides or {}
    steps = {
        1: {"source_system": employee.system_id, "source_model": employee.pk, "event_type": "employee.hired"},
        2: {"target_system": account.system_id, "target_model": account.pk, "operation": "upsert"},
        3: {"trigger": "realtime"},
        4: {"filter_text": ""},
        5: {"name": "Hires to inventory", "description": "People hired get an account."},
    }
    client.get(reverse("flows-add"))
    response = None
    for number in range(1, last_step + 1):
        response = wizard(client, number, **{**steps[number], **overrides.get(number, {})})
    return response


def test_it_creates_a_draft_flow_with_an_empty_mapping_and_sends_the_admin_to_map_it(
    client, personas, employee, account
):
    as_user(client, personas, "admin")
    response = walk_to(client, 5, employee, account, {4: {"filter_text": "department = Operations"}})
    flow = Flow.objects.get(name="Hires to inventory")
    assert flow.state == FlowState.DRAFT
    assert flow.event_type == "employee.hired" and flow.operation == "upsert"
    assert flow.filter == {"path": "department", "op": "eq", "value": "Operations"}
    assert flow.mapping.name == "Hires to inventory"
    assert (flow.mapping.source_model, flow.mapping.target_model) == (employee, account)
    assert flow.mapping.rules == []
    assert response.status_code == 302
    assert response["Location"] == mapper_url(flow.mapping_id)
    entry = AuditEntry.objects.get(verb="create", target_type="flow")
    assert entry.actor == personas["admin"] and entry.diff["state"] == "draft"


def test_it_creates_a_scheduled_flow_from_plain_words(client, personas, employee, account):
    as_user(client, personas, "admin")
    walk_to(
        client,
        5,
        employee,
        account,
        {3: {"trigger": "scheduled", "preset": "weekdays", "at_time": "02:30", "cursor_field": "updated_at"}},
    )
    flow = Flow.objects.get(name="Hires to inventory")
    assert flow.trigger == Trigger.SCHEDULED
    assert flow.schedule_cron == "30 2 * * 1-5" and flow.schedule_minutes is None


def test_it_stores_the_cursor_field_chosen_for_a_scheduled_flow(client, personas, employee, account):
    as_user(client, personas, "admin")
    walk_to(client, 5, employee, account, {3: {"trigger": "scheduled", "preset": "15", "cursor_field": "id"}})
    flow = Flow.objects.get(name="Hires to inventory")
    assert flow.schedule_minutes == 15
    employee.refresh_from_db()
    assert employee.cursor_field == "id"


def test_it_tells_what_is_missing_on_each_step(client, personas, employee, account):
    as_user(client, personas, "admin")
    client.get(reverse("flows-add"))
    page = wizard(client, 1).content.decode()
    assert "Choose the system where the change happens." in page
    assert "Choose the kind of record the flow reacts to." in page
    wizard(client, 1, source_system=employee.system_id, source_model=employee.pk)
    page = wizard(client, 2, target_system=account.system_id).content.decode()
    assert "Choose the kind of record the flow writes." in page
    wizard(client, 2, target_system=account.system_id, target_model=account.pk, operation="upsert")
    page = wizard(client, 3, trigger="scheduled").content.decode()
    assert "Choose how often the hub should look for changes." in page
    page = wizard(client, 3, trigger="scheduled", preset="daily", cursor_field="updated_at").content.decode()
    assert "Choose the time of day" in page


def test_it_refuses_a_model_of_another_system(client, personas, employee, account):
    as_user(client, personas, "admin")
    client.get(reverse("flows-add"))
    page = wizard(client, 1, source_system=employee.system_id, source_model=account.pk).content.decode()
    assert "Choose one of the data models of the system you picked." in page


def test_it_previews_the_next_runs_of_a_schedule(client, personas, employee, account):
    as_user(client, personas, "admin")
    walk_to(client, 2, employee, account)
    url = reverse("flows-add") + "?partial=schedule-preview&trigger=scheduled&preset=custom&cron=0+2+*+*+1-5"
    page = client.get(url, headers=HTMX).content.decode()
    assert "Weekdays at 02:00" in page and "Next runs:" in page and "02:00" in page
    page = client.get(url.replace("0+2", "99+2"), headers=HTMX).content.decode()
    assert "not a valid schedule" in page


CUSTOM_SCHEDULE = {"trigger": "scheduled", "preset": "custom", "cursor_field": "updated_at"}


@pytest.mark.parametrize("step, inputs, message", [
    (3, {**CUSTOM_SCHEDULE, "cron": "61 * * *"}, "exactly 5 parts"),
    (3, {**CUSTOM_SCHEDULE, "cron": "61 * * * *"}, "is not a valid schedule"),
    (3, {**CUSTOM_SCHEDULE, "cron": ""}, "Enter the schedule"),
    (4, {"filter_text": "stage = won and (amount > 100"}, 'A "(" is never closed.'),
    (4, {"filter_text": "stage won"}, 'After "stage" expected'),
    (4, {"filter_text": "stage = won and amount > 1 or x = 2"}, "Mixing"),
])  # fmt: skip
def test_it_rejects_a_bad_custom_schedule_or_filter_precisely(
    client, personas, employee, account, step, inputs, message
):
    as_user(client, personas, "admin")
    walk_to(client, step - 1, employee, account)
    response = wizard(client, step, **inputs)
    assert response.status_code == 200
    assert escape(message) in response.content.decode()


def test_it_reads_the_filter_back_in_plain_words_as_the_admin_types(client, personas, employee, account):
    as_user(client, personas, "admin")
    walk_to(client, 3, employee, account)
    url = reverse("flows-add") + "?partial=filter-echo&filter_text=department+%3D+Operations+and+titel+exists"
    page = client.get(url, headers=HTMX).content.decode()
    assert "department is &quot;Operations&quot; and titel exists" in page
    assert (
        'role="alert">There is no field &quot;titel&quot;, so no record would pass. '
        "Check the spelling against the fields listed below." in page
    )


def test_it_flags_a_typo_with_the_closest_field_and_an_impossible_comparison_as_the_admin_types(
    client, personas, employee, account
):
    as_user(client, personas, "admin")
    walk_to(client, 3, employee, account)
    url = reverse("flows-add") + "?partial=filter-echo&filter_text=emial+exists+and+updated_at+%3E+soon"
    page = client.get(url, headers=HTMX).content.decode()
    assert "There is no field &quot;emial&quot;, so no record would pass. Did you mean email?" in page
    assert "updated_at is a date and time (ISO 8601), so it is never greater than &quot;soon&quot;." in page


def test_the_filter_step_lists_the_source_fields_with_their_units(client, personas, employee, account):
    employee.fields.filter(path="updated_at").update(unit="UTC")
    as_user(client, personas, "admin")
    walk_to(client, 3, employee, account)
    page = client.get(f"{reverse('flows-add')}?step=4").content.decode()
    assert '<code>updated_at</code> <span class="field-unit">— UTC</span>' in page
    url = reverse("flows-add") + "?partial=filter-echo&filter_text=updated_at+%3E+2026-01-01T00:00:00Z"
    echo = client.get(url, headers=HTMX).content.decode()
    assert "the others are skipped. Note: updated_at is UTC." in echo


def test_it_refuses_a_filter_with_an_unknown_field_in_the_wizard_and_on_the_edit_page(
    client, personas, employee, account, flow
):
    as_user(client, personas, "admin")
    walk_to(client, 3, employee, account)
    response = wizard(client, 4, filter_text="departmnt = Operations")
    assert response.status_code == 200  # the step again, not the next one
    assert "Did you mean department?" in response.content.decode()
    assert wizard(client, 4, filter_text="department = Operations").status_code == 302

    response = client.post(reverse("flows-edit", args=[flow.pk]), edit_data(filter_text="departmnt = Sales"))
    assert response.status_code == 200
    assert "Did you mean department?" in response.content.decode()
    flow.refresh_from_db()
    assert flow.filter is None


def test_it_refreshes_the_model_list_and_event_suggestions_when_a_system_is_picked(
    client, personas, employee, account, hr
):
    Event.objects.create(system=hr, event_type="employee.hired", idempotency_key="e1", payload={})
    Event.objects.create(system=hr, event_type="employee.left", idempotency_key="e2", payload={})
    as_user(client, personas, "admin")
    url = f"{reverse('flows-add')}?partial=source-options&source_system={hr.pk}"
    page = client.get(url, headers=HTMX).content.decode()
    assert page.strip().startswith('<div id="source-options">')
    assert ">Employee</option>" in page and "Account" not in page
    assert 'data-value="employee.hired"' in page and 'data-value="employee.left"' in page


def test_it_rejects_a_name_already_taken(client, personas, flow, employee, account):
    as_user(client, personas, "admin")
    page = walk_to(client, 5, employee, account, {5: {"name": "new hires get ACCOUNTS"}}).content.decode()
    assert "There is already a flow named" in page
    assert Flow.objects.count() == 1


def test_it_sends_an_admin_who_skips_ahead_back_to_the_first_unfinished_step(client, personas):
    as_user(client, personas, "admin")
    client.get(reverse("flows-add"))
    response = client.get(reverse("flows-add") + "?step=4")
    assert response.status_code == 302 and response["Location"].endswith("?step=1")


@pytest.mark.parametrize("who, status", [("ops", 403), ("auditor", 403), ("outsider", 403)])
def test_it_lets_only_admins_create_flows(client, personas, employee, account, who, status):
    as_user(client, personas, who)
    assert client.get(reverse("flows-add")).status_code == status
    assert wizard(client, 1, source_system=employee.system_id).status_code == status


@pytest.mark.parametrize("query", ["?step=abc", "?step=-3", "?step=99", "?partial=nonsense", "?partial=source-options",
                                   "?partial=source-options&source_system=x%00", "?partial=filter-echo&filter_text=%22",
                                   "?partial=schedule-preview&trigger=scheduled&preset=daily&at_time=25:99"])  # fmt: skip
def test_it_never_answers_odd_input_with_a_server_error(client, personas, flow, query):
    as_user(client, personas, "admin")
    response = client.get(reverse("flows-add") + query, headers=HTMX if "partial" in query else {})
    assert response.status_code in (200, 302)
    response = client.post(
        reverse("flows-add") + "?step=1", {"source_system": "1; drop", "source_model": "ü"}
    )
    assert response.status_code == 200
    assert client.get(reverse("flows-detail", args=[99999])).status_code == 404


# --------------------------------------------------------------------------------------------------
# Enable, pause, resume, poll, delete
# --------------------------------------------------------------------------------------------------


def test_it_refuses_to_enable_a_flow_while_its_mapping_has_errors(client, personas, employee, account):
    as_user(client, personas, "admin")
    walk_to(client, 5, employee, account)
    flow = Flow.objects.get(name="Hires to inventory")
    page = client.get(reverse("flows-detail", args=[flow.pk])).content.decode()
    assert "Before this flow can be enabled:" in page and "Its mapping has no rules." in page
    assert mapper_url(flow.mapping_id) in page
    response = client.post(reverse("flows-enable", args=[flow.pk]), follow=True)
    flow.refresh_from_db()
    assert flow.state == FlowState.DRAFT
    assert "cannot be enabled yet: its mapping has no rules" in response.content.decode()
    assert not AuditEntry.objects.filter(verb="enable").exists()


def test_it_names_the_required_target_fields_still_unmapped(client, personas, employee, account):
    flow = flow_with_mapping(source_model=employee, target_model=account, state=FlowState.DRAFT, name="Half done",
                             rules=[{"target": "name", "source": "first_name"}])  # fmt: skip
    c = as_user(client, personas, "admin")
    page = c.get(reverse("flows-detail", args=[flow.pk])).content.decode()
    assert "Required fields of the Account data model are not mapped: email." in page
    # The fix may be in the mapper, or in the data model where the field is marked required.
    assert f'<a href="{mapper_url(flow.mapping_id)}">Map it in the field mapper</a>' in page
    model_fields = reverse("mappings-model-detail", args=[account.pk]) + f"?flow={flow.pk}#fields"
    assert f'<a href="{model_fields}">mark it not required in the Account data model</a>' in page
    # There, the page names what the flow leaves unfilled and leads back to it.
    model_page = c.get(model_fields.split("#")[0]).content.decode()
    assert "The flow <strong>Half done</strong> does not fill email." in model_page
    assert f'<a href="{reverse("flows-detail", args=[flow.pk])}">go back to the flow</a>' in model_page
    refused = c.post(reverse("flows-enable", args=[flow.pk]), follow=True).content.decode()
    assert (
        "cannot be enabled yet: required fields of the Account data model are not mapped: email." in refused
    )
    flow.refresh_from_db()
    assert flow.state == FlowState.DRAFT

    # Marked not required in the data model, the flow can be enabled.
    field = account.fields.get(path="email")
    c.post(reverse("mappings-field-update", args=[field.pk]), {"type": "string", "description": ""})
    c.post(reverse("flows-enable", args=[flow.pk]))
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE


def test_it_enables_a_flow_whose_mapping_is_ready(client, personas, employee, account):
    flow = flow_with_mapping(source_model=employee, target_model=account, rules=RULES, state=FlowState.DRAFT)
    response = as_user(client, personas, "admin").post(reverse("flows-enable", args=[flow.pk]))
    assert response.status_code == 302
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE
    assert AuditEntry.objects.get(verb="enable").diff == {"state": ["draft", "active"]}


@pytest.mark.parametrize("who", ["admin", "ops"])
def test_it_lets_admins_and_ops_pause_and_resume_with_an_audit_trail(client, personas, flow, who):
    as_user(client, personas, who)
    client.post(reverse("flows-pause", args=[flow.pk]), {"reason": "Inventory maintenance"})
    flow.refresh_from_db()
    assert flow.state == FlowState.PAUSED and flow.paused_reason == "Inventory maintenance"
    client.post(reverse("flows-resume", args=[flow.pk]))
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE
    entries = list(
        AuditEntry.objects.filter(target_type="flow").order_by("id").values_list("verb", "actor_name")
    )
    assert entries == [("pause", personas[who].username), ("resume", personas[who].username)]


@pytest.mark.parametrize("name", ["flows-pause", "flows-resume", "flows-enable", "flows-delete", "flows-poll",
                                  "flows-edit"])  # fmt: skip
@pytest.mark.parametrize("who", ["auditor", "outsider"])
def test_it_answers_403_when_a_reader_posts_a_change(client, personas, flow, name, who):
    response = as_user(client, personas, who).post(reverse(name, args=[flow.pk]), {"reason": "x"})
    assert response.status_code == 403
    flow.refresh_from_db()
    assert flow.state == FlowState.ACTIVE


def test_it_shows_an_auditor_no_change_buttons(client, personas, flow):
    page = as_user(client, personas, "auditor").get(reverse("flows-detail", args=[flow.pk])).content.decode()
    for name in ("flows-pause", "flows-edit", "flows-delete", "flows-enable"):
        assert reverse(name, args=[flow.pk]) not in page


def test_it_asks_before_pausing_and_deleting(client, personas, flow):
    page = as_user(client, personas, "admin").get(reverse("flows-detail", args=[flow.pk])).content.decode()
    assert 'data-dialog="pause-dialog"' in page and '<dialog id="pause-dialog"' in page
    assert 'data-dialog="delete-dialog"' in page and "This cannot be undone" in page


def test_it_polls_a_scheduled_flow_now_through_a_worker(client, personas, employee, account, monkeypatch,
                                                       django_capture_on_commit_callbacks):  # fmt: skip
    import django_q.tasks

    queued = []
    monkeypatch.setattr(django_q.tasks, "async_task", lambda *args, **kwargs: queued.append(args))
    flow = flow_with_mapping(source_model=employee, target_model=account, rules=RULES, trigger=Trigger.SCHEDULED,
                             schedule_minutes=15)  # fmt: skip
    as_user(client, personas, "ops")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("flows-poll", args=[flow.pk]), follow=True)
    assert queued == [("hub.tasks.flow_poll_task", flow.pk)]
    assert "Asked a worker to look for changes now" in response.content.decode()
    assert AuditEntry.objects.filter(verb="poll", actor=personas["ops"]).exists()


def test_it_explains_that_a_real_time_flow_is_not_polled(client, personas, flow):
    response = as_user(client, personas, "ops").post(reverse("flows-poll", args=[flow.pk]), follow=True)
    assert "Only scheduled flows are polled" in response.content.decode()


def make_delivery(flow, n, status=DeliveryStatus.SUCCEEDED, **extra):
    event = Event.objects.create(system=flow.source_system, event_type="employee.hired", idempotency_key=f"k{n}",
                                 payload={"data": {"id": f"emp_{n}"}})  # fmt: skip
    return Delivery.objects.create(event=event, flow=flow, record_key=f"emp_{n}", status=status,
                                   finished_at=timezone.now(), **extra)  # fmt: skip


def test_it_refuses_to_delete_a_flow_with_unfinished_deliveries(client, personas, flow):
    make_delivery(flow, 1, status=DeliveryStatus.RETRYING)
    response = as_user(client, personas, "admin").post(reverse("flows-delete", args=[flow.pk]), follow=True)
    assert Flow.objects.filter(pk=flow.pk).exists()
    assert "1 deliveries are still being carried out" in response.content.decode()


def test_it_deletes_a_flow_with_its_history_and_mapping(client, personas, flow):
    make_delivery(flow, 1)
    mapping_id = flow.mapping_id
    response = as_user(client, personas, "admin").post(reverse("flows-delete", args=[flow.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("flows-list")
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert not Mapping.objects.filter(pk=mapping_id).exists()
    assert Event.objects.count() == 1  # events stay: other flows may use them
    entry = AuditEntry.objects.get(verb="delete", target_type="flow")
    assert entry.diff["deliveries_deleted"] == 1 and entry.target_label == "New hires get accounts"


# --------------------------------------------------------------------------------------------------
# Detail and its live deliveries
# --------------------------------------------------------------------------------------------------


def test_it_shows_deliveries_with_their_attempts(client, personas, flow):
    delivery = make_delivery(flow, 7, status=DeliveryStatus.DEAD, attempts=1, last_error_class="rejected",
                             last_error="email is invalid", target_id="")  # fmt: skip
    Attempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(), duration_ms=42, outcome="rejected",
                           error_class="rejected", request={"method": "POST", "headers": {"X-Api-Key": "***"}},
                           response={"status": 422, "body": "email is invalid"})  # fmt: skip
    page = as_user(client, personas, "auditor").get(reverse("flows-detail", args=[flow.pk])).content.decode()
    assert "Dead-lettered" in page and "emp_7" in page
    assert (
        "The system rejected the record (4xx). email is invalid" in page
    )  # the plain sentence, not "rejected:"
    assert "rejected: email" not in page
    assert (
        "What to do:</strong> Read the system&#x27;s answer, then correct the record (or the mapping) and replay it."
        in page
    )
    assert "Attempt 1" in page and "HTTP 422" in page and "***" in page


def test_it_refreshes_the_deliveries_region_alone(client, personas, flow):
    make_delivery(flow, 1)
    as_user(client, personas, "ops")
    page = client.get(reverse("flows-detail", args=[flow.pk])).content.decode()
    assert 'id="deliveries"' in page and 'hx-trigger="every 5s"' in page
    partial = client.get(reverse("flows-detail", args=[flow.pk]), headers={**HTMX, "HX-Target": "deliveries"})
    text = partial.content.decode()
    assert text.strip().startswith('<section id="deliveries"')
    assert "Succeeded" in text and "emp_1" in text and "<html" not in text


def test_it_shows_a_detail_page_in_a_fixed_number_of_queries(
    client, personas, flow, django_assert_max_num_queries
):
    as_user(client, personas, "admin")
    for n in range(3):
        make_delivery(flow, n)
    client.get(reverse("flows-detail", args=[flow.pk]))
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("flows-detail", args=[flow.pk]))
    for n in range(3, 20):
        make_delivery(flow, n)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("flows-detail", args=[flow.pk]))


# --------------------------------------------------------------------------------------------------
# Edit
# --------------------------------------------------------------------------------------------------


def edit_data(**overrides):
    """What the edit form posts, retry settings included (as the browser sends every input)."""
    data = {"name": "New hires get accounts", "description": "", "event_type": "employee.hired",
            "operation": "upsert", "trigger": "realtime", "filter_text": "", "max_attempts": "4",
            "max_age_seconds_0": "24", "max_age_seconds_1": "3600", "retry_base_seconds_0": "2",
            "retry_base_seconds_1": "1", "retry_max_seconds_0": "1", "retry_max_seconds_1": "3600",
            "retry_on": default_retry_classes()}  # fmt: skip
    data.update(overrides)
    return data


def test_it_edits_the_schedule_and_filter_with_an_audit_trail(client, personas, flow):
    as_user(client, personas, "admin")
    response = client.post(
        reverse("flows-edit", args=[flow.pk]),
        edit_data(
            trigger="scheduled",
            preset="60",
            cursor_field="updated_at",
            filter_text="department in Sales, Operations",
        ),
    )
    assert response.status_code == 302
    flow.refresh_from_db()
    assert flow.trigger == Trigger.SCHEDULED and flow.schedule_minutes == 60
    assert flow.filter == {"path": "department", "op": "in", "value": ["Sales", "Operations"]}
    diff = AuditEntry.objects.get(verb="update", target_type="flow").diff
    assert diff["trigger"] == ["realtime", "scheduled"] and diff["schedule_minutes"] == [None, 60]


def test_it_shows_edit_errors_beside_the_fields(client, personas, flow):
    as_user(client, personas, "admin")
    page = client.post(
        reverse("flows-edit", args=[flow.pk]),
        edit_data(name="", trigger="scheduled", preset="custom", cron="every day", filter_text="amount >"),
    ).content.decode()
    assert "Give the flow a name." in page
    assert "exactly 5 parts" in page
    assert "needs a value to compare with" in page
    flow.refresh_from_db()
    assert flow.trigger == Trigger.REALTIME


def test_it_prefills_the_edit_form_with_the_filter_as_text(client, personas, flow):
    flow.filter = {"all": [{"path": "department", "op": "eq", "value": "Operations"},
                           {"path": "salary", "op": "gt", "value": 100}]}  # fmt: skip
    flow.save()
    page = as_user(client, personas, "admin").get(reverse("flows-edit", args=[flow.pk])).content.decode()
    assert 'value="department = Operations and salary &gt; 100"' in page


def test_it_keeps_a_filter_the_text_box_cannot_show(client, personas, flow):
    flow.filter = {"path": "department", "op": "eq", "value": None}
    flow.save()
    as_user(client, personas, "admin")
    page = client.get(reverse("flows-edit", args=[flow.pk])).content.decode()
    assert "It is kept as it is unless you type a new one here" in page
    client.post(reverse("flows-edit", args=[flow.pk]), edit_data(description="changed"))
    flow.refresh_from_db()
    assert flow.filter == {"path": "department", "op": "eq", "value": None} and flow.description == "changed"


def test_it_refreshes_the_list_region_alone(client, personas, flow):
    as_user(client, personas, "auditor")
    page = client.get(reverse("flows-list")).content.decode()
    assert 'id="flow-table"' in page and 'hx-trigger="every 15s"' in page
    partial = client.get(reverse("flows-list"), headers={**HTMX, "HX-Target": "flow-table"}).content.decode()
    assert partial.strip().startswith('<div id="flow-table"') and "New hires get accounts" in partial
    assert "<html" not in partial
