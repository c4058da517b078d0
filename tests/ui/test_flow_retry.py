"""A flow's retry policy: in plain words on its page, edited by admins (tries, how long, the waits,
which failures retry), read by everyone else; and the "Outcome unknown" status badge."""

import pytest
from django.urls import reverse
from django.utils import timezone

from hub.models import Attempt, AuditEntry, Delivery, DeliveryStatus, Event, Flow
from hub.pipeline.retry import default_retry_classes
from hub.services.errors import ConfigError
from hub.services.flows import RETRY_CHOICES, flow_update
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
# The retried classes as the page lists their checkboxes (and a browser posts them).
IN_PAGE_ORDER = [str(c) for c in RETRY_CHOICES if str(c) in default_retry_classes()]
DEFAULTS = dict(max_attempts=8, max_age_seconds=24 * 3600, retry_base_seconds=2.0, retry_max_seconds=3600.0)


@pytest.fixture
def flow():
    employee = model_with_fields(SystemFactory(name="HR"), "Employee", "/employees", "id! email")
    account = model_with_fields(
        SystemFactory(name="Inventory"), "Account", "/accounts", "id! email external_id"
    )
    return flow_with_mapping(
        source_model=employee, target_model=account, rules=[{"target": "email", "source": "email"}],
        name="New hires get accounts", **DEFAULTS,
    )  # fmt: skip


def page(client, personas, who, flow, view="flows-detail"):
    client.force_login(personas[who])
    return client.get(reverse(view, args=[flow.pk])).content.decode()


def retry_form(**overrides):
    """What the edit form posts: every input, as a browser sends them."""
    data = {"name": "New hires get accounts", "description": "", "event_type": "*", "operation": "upsert",
            "trigger": "realtime", "filter_text": "", "max_attempts": "8",
            "max_age_seconds_0": "24", "max_age_seconds_1": "3600",
            "retry_base_seconds_0": "2", "retry_base_seconds_1": "1",
            "retry_max_seconds_0": "1", "retry_max_seconds_1": "3600",
            "retry_on": IN_PAGE_ORDER}  # fmt: skip
    data.update(overrides)
    return data


# -- the flow page -------------------------------------------------------------------------------


def test_the_flow_page_tells_the_retry_policy_in_plain_words(client, personas, flow):
    html = page(client, personas, "auditor", flow)
    assert "If a delivery fails" in html
    assert (
        "<strong>Tries up to 8 times over at most 24 h</strong>, waiting up to 2 s, 4 s, 8 s … 2 min 8 s"
        in html
    )
    assert "(capped at 1 h), with random spread." in html
    assert "a Retry-After with a 429 or 503 answer" in html
    tried, never = html.split("Tried again")[1].split("Never tried again")
    assert "Timeouts" in tried and "Server errors (5xx)" in tried and "Rejected records (4xx)" not in tried
    assert "Rejected records (4xx)" in never.split("</ul>")[0] and "Timeouts" not in never.split("</ul>")[0]
    assert "Refused credentials pause the flow instead" in html


def test_the_words_follow_the_settings(client, personas, flow):
    Flow.objects.filter(pk=flow.pk).update(max_attempts=20, max_age_seconds=3 * 86400, retry_max_seconds=600)
    assert (
        "Tries up to 20 times over at most 3 days</strong>, waiting up to 2 s, 4 s, 8 s … capped at 10 min"
        in (page(client, personas, "ops", flow))
    )
    Flow.objects.filter(pk=flow.pk).update(max_attempts=1)
    assert "Tries once: a failure goes to the dead-letter inbox at once" in page(
        client, personas, "ops", flow
    )
    Flow.objects.filter(pk=flow.pk).update(max_attempts=5, retry_on=[])
    assert "Tries once: a failure goes to the dead-letter inbox at once" in page(
        client, personas, "ops", flow
    )


def test_the_flow_page_says_what_happens_to_a_create_whose_answer_is_lost(client, personas, flow):
    html = page(client, personas, "admin", flow)
    assert "Account declares no lookup: when the answer to a create is lost, the delivery waits" in html
    assert reverse("mappings-model-detail", args=[flow.target_model_id]) + "#model-lookup" in html
    flow.target_model.lookup_field = "external_id"
    flow.target_model.save()
    html = page(client, personas, "admin", flow)
    assert "the hub first looks for the record by <code>external_id</code>" in html


# -- editing ---------------------------------------------------------------------------------------


def test_the_edit_form_shows_the_policy_with_a_checkbox_and_meaning_per_failure(client, personas, flow):
    html = page(client, personas, "admin", flow, "flows-edit")
    assert 'name="max_attempts" value="8"' in html
    assert (
        'name="max_age_seconds_0" value="24"' in html
        and '<option value="3600" selected>hours</option>' in html
    )
    assert 'name="retry_base_seconds_0" value="2"' in html
    assert 'name="retry_on" value="timeout"' in html and "The system did not answer in time." in html
    assert 'value="outcome_unknown"' in html and "it may or may not have taken effect" in html
    assert 'value="auth_failure"' not in html  # refused credentials pause the flow; never a retry
    boxes = html.split('id="field-retry_on"')[1].split("</fieldset>")[0]
    assert boxes.count("checked") == len(default_retry_classes())
    assert "<strong>In short:</strong> Tries up to 8 times" in html


def test_an_admin_changes_the_retry_policy_with_an_audit_trail(client, personas, flow):
    client.force_login(personas["admin"])
    response = client.post(
        reverse("flows-edit", args=[flow.pk]),
        retry_form(max_attempts="5", max_age_seconds_0="2", retry_base_seconds_0="10",
                   retry_max_seconds_0="10", retry_max_seconds_1="60", retry_on=["timeout", "server_error"]),
    )  # fmt: skip
    assert response.status_code == 302
    flow.refresh_from_db()
    assert (flow.max_attempts, flow.max_age_seconds, flow.retry_base_seconds, flow.retry_max_seconds) == (
        5, 7200, 10.0, 600.0,
    )  # fmt: skip
    assert sorted(flow.retry_on) == ["server_error", "timeout"]
    assert flow.retry_policy().retries("timeout") and not flow.retry_policy().retries("rate_limited")
    diff = AuditEntry.objects.get(verb="update", target_type="flow").diff
    assert diff["max_attempts"] == [8, 5] and diff["max_age_seconds"] == [86400, 7200]
    assert sorted(diff["retry_on"][1]) == ["server_error", "timeout"]
    html = page(client, personas, "admin", flow)
    assert (
        "Tries up to 5 times over at most 2 h</strong>, waiting up to 10 s, 20 s, 40 s … 1 min 20 s" in html
    )


def test_saving_the_form_unchanged_changes_nothing(client, personas, flow):
    client.force_login(personas["admin"])
    assert client.post(reverse("flows-edit", args=[flow.pk]), retry_form()).status_code == 302
    assert not AuditEntry.objects.filter(verb="update", target_type="flow").exists()


@pytest.mark.parametrize(
    "change, field, error",
    [
        ({"retry_max_seconds_0": "1", "retry_max_seconds_1": "1", "retry_base_seconds_0": "10"},
         "retry_max_seconds", "The longest wait cannot be shorter than the first wait (10 s)."),
        ({"max_age_seconds_0": "soon"}, "max_age_seconds", "Enter a number, e.g. 24."),
        ({"max_age_seconds_0": "0"}, "max_age_seconds", "Enter between 1 s and 30 days."),
        ({"max_age_seconds_0": "31", "max_age_seconds_1": "86400"}, "max_age_seconds", "Enter between 1 s and 30 days."),
        ({"max_age_seconds_0": ""}, "max_age_seconds", "Enter a number and choose a unit, e.g. 24 hours."),
        ({"retry_base_seconds_1": "7"}, "retry_base_seconds", "Choose a unit."),
        ({"retry_max_seconds_0": "inf"}, "retry_max_seconds", "Enter a number, e.g. 24."),
        ({"max_attempts": "0"}, "max_attempts", "A delivery is tried at least once."),
        ({"max_attempts": "500"}, "max_attempts", "Try at most 50 times"),
        ({"retry_on": ["timeout", "auth_failure"]}, "retry_on", "“auth_failure” is not a kind of failure the hub knows."),
    ],
)  # fmt: skip
def test_it_refuses_a_policy_it_cannot_use_beside_the_field(client, personas, flow, change, field, error):
    client.force_login(personas["admin"])
    response = client.post(reverse("flows-edit", args=[flow.pk]), retry_form(**change))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="field-{field}"' in html
    section = html.split(f'id="field-{field}"')[1].split("</div>")[0]
    assert error in section
    assert "Fix the settings marked below to see what they mean." in html  # not the saved policy
    assert not AuditEntry.objects.filter(verb="update", target_type="flow").exists()
    assert Flow.objects.get(pk=flow.pk).max_attempts == 8


def test_the_policy_preview_follows_the_form(client, personas, flow):
    client.force_login(personas["admin"])
    url = reverse("flows-edit", args=[flow.pk])
    html = client.get(
        url, {"partial": "retry-preview", **retry_form(max_attempts="3")}, headers=HTMX
    ).content.decode()
    assert html.lstrip().startswith('<div id="retry-preview"')
    assert "Tries up to 3 times over at most 24 h, waiting up to 2 s, then 4 s" in html
    html = client.get(
        url, {"partial": "retry-preview", **retry_form(max_attempts="x")}, headers=HTMX
    ).content.decode()
    assert "Enter a whole number." in html


def test_the_services_refuse_retry_settings_they_cannot_use(flow, personas):
    for changes, words in [
        ({"retry_on": ["bogus"]}, "unknown error class bogus"),
        ({"retry_on": ["auth_failure"]}, "refused credentials always pause the flow"),
        ({"retry_on": "timeout"}, "must be a list"),
        ({"retry_max_seconds": 1.0}, "the longest wait must be at least the first wait (2 s)"),
        ({"retry_base_seconds": float("inf")}, "must be numbers"),
        ({"max_attempts": 0}, "tries at least once"),
    ]:
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
            flow_update(flow=flow, actor=personas["admin"], **changes)
        flow.refresh_from_db()
        assert flow.retry_on == default_retry_classes() and flow.max_attempts == 8


@pytest.mark.parametrize("who", ["ops", "auditor"])
def test_others_read_the_policy_but_cannot_change_it(client, personas, flow, who):
    html = page(client, personas, who, flow)
    assert "Tries up to 8 times" in html and reverse("flows-edit", args=[flow.pk]) not in html
    assert client.get(reverse("flows-edit", args=[flow.pk])).status_code == 403
    assert client.post(reverse("flows-edit", args=[flow.pk]), retry_form(max_attempts="2")).status_code == 403
    assert Flow.objects.get(pk=flow.pk).max_attempts == 8


# -- the "Outcome unknown" status ----------------------------------------------------------------------


def test_a_delivery_whose_outcome_is_unknown_has_its_own_badge(client, personas, flow):
    event = Event.objects.create(system=flow.source_system, event_type="employee.hired", idempotency_key="k1",
                                 payload={"data": {"id": "emp_1"}})  # fmt: skip
    delivery = Delivery.objects.create(event=event, flow=flow, record_key="emp_1", status=DeliveryStatus.UNKNOWN,
                                       finished_at=timezone.now(), last_error_class="outcome_unknown",
                                       last_error="sent, but the connection dropped")  # fmt: skip
    Attempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(), duration_ms=5.0,
                           outcome="unknown", error_class="outcome_unknown")  # fmt: skip
    badge = '<span class="badge unknown">Outcome unknown</span>'
    attempt_badge = '<span class="badge unknown">outcome unknown</span>'
    html = page(client, personas, "ops", flow)
    assert badge in html and attempt_badge in html
    html = client.get(reverse("hub-history-event", args=[event.pk])).content.decode()
    assert badge in html and attempt_badge in html
    assert badge in client.get(reverse("hub-history")).content.decode()
