"""The audit log page: every change, action and sign-in, filtered by object type, actor, action
and time, with readable diffs (field: before → after; mapping rules side by side; a fixed
record beside the original), paged without a silent cap, for readers only."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hub.models import AuditEntry
from hub.pipeline import clock
from hub.selectors.audit import PAGE_SIZE
from hub.services.audit import audit_append
from hub.services.flows import flow_pause
from hub.services.mappings import mapping_version_save
from hub.services.users import user_role_set
from tests.history_helpers import order_1042_story

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def audit_page(user, **params):
    return client_for(user).get(reverse("hub-audit"), params)


@pytest.fixture
def story(fresh_sandbox, personas):
    story = order_1042_story(fresh_sandbox, personas["ops"])
    mapping = story["invoices"].mapping
    rules = [*mapping.current_version.rules]
    rules[0] = {**rules[0], "transforms": [{"name": "lower"}]}
    rules.append({"target": "status", "constant": "open"})
    mapping_version_save(mapping=mapping, rules=rules, actor=personas["admin"], comment="lower-case emails")
    flow_pause(flow=story["accounts"], actor=personas["ops"], reason="inventory maintenance")
    user_role_set(user=personas["auditor"], role="ops", actor=personas["admin"])
    return story


def rows(response) -> list[AuditEntry]:
    return [row.entry for row in response.context["page"].rows]


def test_it_lists_changes_actions_and_sign_ins_newest_first(story, personas):
    response = audit_page(personas["auditor"])
    verbs = [entry.verb for entry in rows(response)]
    assert verbs[:3] == ["sign_in", "change_role", "pause"]
    assert {"replay", "save"} <= set(verbs)
    page = response.content.decode()
    assert "alice-admin" in page and "oscar-ops" in page and "change role" in page


def test_it_shows_a_field_change_as_before_and_after(story, personas):
    page = audit_page(personas["auditor"], verb="change_role").content.decode()
    assert '<th scope="row">role</th><td class="before">auditor</td><td class="after">ops</td>' in page


def test_it_shows_mapping_rules_side_by_side_from_the_versions_diff(story, personas):
    response = audit_page(personas["auditor"], target_type="mapping", actor="alice-admin")
    (entry,) = rows(response)
    assert entry.diff["version"] == 2
    page = response.content.decode()
    assert "Mapping rules, version 2" in page
    assert "customer_email ← customer.email</td>" in page
    assert "customer_email ← customer.email, then Lower case</td>" in page
    assert "status ← &quot;open&quot;</td>" in page


def test_a_fix_and_replay_shows_the_original_record_beside_the_correction(story, personas):
    page = audit_page(personas["auditor"], verb="replay").content.decode()
    assert "Record as it was" in page and "Correction sent instead" in page
    original, correction = page.split("Record as it was", 1)[1].split("Correction sent instead", 1)
    assert "not an email" in original and "buyer1043@example.com" not in original
    assert "buyer1043@example.com" in correction
    assert (
        '<span class="removed">    &quot;email&quot;: &quot;not an email&quot;</span>' in original
    )  # the line that changed
    assert '<span class="added">    &quot;email&quot;: &quot;buyer1043@example.com&quot;</span>' in correction
    assert "<span>  &quot;id&quot;: &quot;ord_1043&quot;,</span>" in original  # unchanged lines unmarked
    assert "typo in the email" in page


@pytest.mark.parametrize(
    ("params", "verbs"),
    [
        ({"target_type": "flow"}, {"pause"}),
        ({"actor": "oscar-ops"}, {"replay", "pause"}),
        ({"verb": "pause"}, {"pause"}),
        ({"verb": "pause", "actor": "alice-admin"}, set()),
    ],
)
def test_it_filters_by_object_type_actor_and_action(story, personas, params, verbs):
    assert {entry.verb for entry in rows(audit_page(personas["auditor"], **params))} == verbs


def test_it_filters_by_time(story, personas):
    with clock.travelled(-3 * 86400):
        audit_append(
            actor=None, verb="rename", target_type="flow", label="old one", diff={"name": ["a", "b"]}
        )
    cutoff = timezone.localtime(timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    older = rows(audit_page(personas["auditor"], until=cutoff))
    assert [entry.target_label for entry in older] == ["old one"]
    assert "old one" not in {
        entry.target_label for entry in rows(audit_page(personas["auditor"], since=cutoff))
    }


def test_it_pages_through_every_entry(personas):
    for n in range(PAGE_SIZE + 7):
        audit_append(actor=None, verb="poll", target_type="flow", label=f"flow {n}")
    client = client_for(personas["auditor"])
    first = client.get(reverse("hub-audit"), {"verb": "poll"})
    assert len(first.context["page"].rows) == PAGE_SIZE and "Older entries →" in first.content.decode()
    second = client.get(reverse("hub-audit"), {"verb": "poll", "below": first.context["page"].older})
    assert len(second.context["page"].rows) == 7 and "No older entries." in second.content.decode()
    labels = {row.entry.target_label for row in first.context["page"].rows + second.context["page"].rows}
    assert labels == {f"flow {n}" for n in range(PAGE_SIZE + 7)}


def test_the_page_costs_a_fixed_number_of_queries(story, personas, django_assert_max_num_queries):
    client = client_for(personas["auditor"])
    with django_assert_max_num_queries(12):
        assert client.get(reverse("hub-audit")).status_code == 200


@pytest.mark.parametrize("who", ["publisher", "outsider"])
def test_only_readers_see_the_audit_log(personas, who):
    client = client_for(personas[who])
    assert client.get(reverse("hub-audit")).status_code == 403
    assert client.get(reverse("hub-audit-export"), {"format": "json"}).status_code == 403


def test_the_page_offers_no_way_to_change_an_entry(story, personas):
    client = client_for(personas["admin"])
    for method in (client.post, client.put, client.delete):
        assert method(reverse("hub-audit")).status_code == 405
