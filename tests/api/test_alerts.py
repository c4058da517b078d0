"""Alert rules and channels through the API: the Alerts pages' checks, roles and audit; a
channel's secrets never answered."""

import json

import pytest
from django.utils import timezone

from hub.alerts.models import Alert, AlertRule, Channel
from hub.models import AuditEntry, FlowState
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db

HOOK = "https://chat.example.com/hooks/T0KEN-very-secret"
SIGNING = "signing-secret-abcdef"


@pytest.fixture
def flow():
    source = model_with_fields(SystemFactory(), "Deal", "/deals", "id!")
    target = model_with_fields(SystemFactory(), "Invoice", "/invoices", "ref!")
    return flow_with_mapping(
        source_model=source, target_model=target, rules=[{"target": "ref", "source": "id"}]
    )


def test_it_creates_changes_and_deletes_a_rule(as_, flow):
    api = as_("admin")
    made = api.post(
        "/api/v1/alert-rules/", {"flow": flow.pk, "kind": "error_rate", "threshold": 25}, format="json"
    )
    assert made.status_code == 201, made.json()
    rule = made.json()
    assert rule["threshold"] == 25 and rule["sentence"]
    assert last_audit("create").target_type.endswith("alertrule")
    changed = api.patch(f"/api/v1/alert-rules/{rule['id']}/", {"enabled": False}, format="json")
    assert changed.json()["enabled"] is False and last_audit("update").diff["enabled"] == [True, False]
    listed = as_("auditor").get(f"/api/v1/alert-rules/?flow={flow.pk}&limit=100").json()["results"]
    assert rule["id"] in [r["id"] for r in listed] and {r["flow"] for r in listed} == {flow.pk}
    assert api.delete(f"/api/v1/alert-rules/{rule['id']}/").status_code == 204
    assert not AlertRule.objects.filter(pk=rule["id"]).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "no_such_kind"},
        {"kind": "error_rate", "threshold": 250},
        {"kind": "error_rate", "threshold": "25"},
        {"kind": "error_rate", "renotify_minutes": -1},
    ],
)
def test_bad_rules_are_400s(as_, flow, body):
    response = as_("admin").post("/api/v1/alert-rules/", {"flow": flow.pk, **body}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]


def test_a_draft_flow_cannot_be_watched(as_, flow):
    flow.state = FlowState.DRAFT
    flow.save()
    response = as_("admin").post(
        "/api/v1/alert-rules/", {"flow": flow.pk, "kind": "error_rate"}, format="json"
    )
    assert response.status_code == 400 and "draft" in response.json()["fields"]["flow"][0]


def test_a_webhook_channels_secrets_are_never_answered(as_):
    api = as_("admin")
    body = {"kind": "webhook", "name": "Chat", "secrets": {"url": HOOK, "signing_secret": SIGNING}}
    made = api.post("/api/v1/alert-channels/", body, format="json")
    assert made.status_code == 201, made.json()
    channel = made.json()
    assert channel["secrets_set"] == ["signing_secret", "url"]
    assert channel["destination"] == "https://chat.example.com/…"
    renamed = api.patch(f"/api/v1/alert-channels/{channel['id']}/", {"name": "Team chat"}, format="json")
    assert renamed.status_code == 200 and Channel.objects.get().secrets["url"] == HOOK
    texts = [
        made.content.decode(),
        renamed.content.decode(),
        api.get("/api/v1/alert-channels/").content.decode(),
        json.dumps(list(AuditEntry.objects.values_list("diff", flat=True))),
    ]
    assert not any("T0KEN" in text or SIGNING in text for text in texts)
    assert last_audit("update").diff["name"] == ["Chat", "Team chat"]


def test_an_email_channel_is_checked_as_on_the_page_and_can_be_tested(as_):
    api = as_("admin")
    bad = api.post(
        "/api/v1/alert-channels/", {"kind": "email", "name": "Ops", "settings": {"to": "nope"}}, format="json"
    )
    assert bad.status_code == 400 and "to" in bad.json()["fields"]
    wrong = api.post(
        "/api/v1/alert-channels/", {"kind": "email", "name": "Ops", "secrets": {"url": HOOK}}, format="json"
    )
    assert wrong.status_code == 400 and "secrets" in wrong.json()["fields"]
    made = api.post(
        "/api/v1/alert-channels/",
        {"kind": "email", "name": "Ops", "settings": {"to": "ops@example.com"}},
        format="json",
    )
    assert made.json()["settings"] == {"to": "ops@example.com"}
    tested = api.post(f"/api/v1/alert-channels/{made.json()['id']}/test/")
    assert tested.json() == {"ok": True, "result": "emailed ops@example.com"}
    assert last_audit("test").diff["ok"] is True
    taken = api.post(
        "/api/v1/alert-channels/",
        {"kind": "email", "name": "ops", "settings": {"to": "a@example.com"}},
        format="json",
    )
    assert taken.status_code == 400 and "name" in taken.json()["fields"]


def test_roles_match_the_alerts_pages(as_, flow):
    rule = AlertRule.objects.create(flow=flow, kind="error_rate", threshold=10, window_minutes=15)
    reads = {"anonymous": 401, "admin": 200, "ops": 200, "auditor": 200, "publisher": 403, "outsider": 403}
    writes = {"anonymous": 401, "admin": 200, "ops": 403, "auditor": 403, "publisher": 403, "outsider": 403}
    assert statuses(as_, "get", "/api/v1/alert-rules/") == reads
    assert statuses(as_, "get", "/api/v1/alert-channels/") == reads
    assert statuses(as_, "patch", f"/api/v1/alert-rules/{rule.pk}/", {"threshold": 20}) == writes


def test_operators_acknowledge_mute_and_unmute_an_alert(as_, flow):
    rule = AlertRule.objects.create(flow=flow, kind="error_rate", threshold=10, window_minutes=15)
    alert = Alert.objects.create(rule=rule, started_at=timezone.now(), summary="4 of 10 deliveries failed")
    firing = as_("auditor").get("/api/v1/alerts/?firing=true").json()["results"]
    assert [a["id"] for a in firing] == [alert.pk] and firing[0]["firing"] is True
    assert as_("auditor").post(f"/api/v1/alerts/{alert.pk}/acknowledge/").status_code == 403

    acknowledged = as_("ops").post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_by"] == "oscar-ops"
    assert as_("ops").post(f"/api/v1/alerts/{alert.pk}/acknowledge/").status_code == 409
    assert (
        as_("ops").post(f"/api/v1/alerts/{alert.pk}/mute/", {"minutes": 7}, format="json").status_code == 400
    )
    muted = as_("ops").post(f"/api/v1/alerts/{alert.pk}/mute/", {"minutes": 60}, format="json")
    assert muted.status_code == 200 and muted.json()["muted_until"]
    assert as_("ops").post(f"/api/v1/alerts/{alert.pk}/unmute/").json()["muted_until"] is None
    assert as_("ops").post(f"/api/v1/alerts/{alert.pk}/unmute/").status_code == 409
    assert as_("ops").get("/api/v1/alerts/?firing=maybe").status_code == 400
