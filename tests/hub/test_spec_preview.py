"""The specification import previews what it would add, change and remove, applies all or nothing,
and changes nothing the second time; alert rules, channels and vendor templates travel with it."""

import copy

import pytest
import yaml

from connectors.models import System
from hub.alerts.models import AlertRule, Channel
from hub.alerts.services import channel_create
from hub.demo import SYSTEMS, demo_seed
from hub.models import AuditEntry, Event, Flow
from hub.services.specification import spec_export, spec_import
from mappings.models import DataModel, Mapping, MappingVersion

pytestmark = pytest.mark.django_db
URLS = {slug: f"http://127.0.0.1:9/{slug}" for slug in SYSTEMS}


@pytest.fixture
def demo(personas):
    demo_seed(actor=personas["admin"], urls=URLS)
    System.objects.filter(slug="crm").update(vendor_template="hubspot")
    channel_create(kind="email", name="Ops mail", values={"to": "ops@example.com"}, actor=personas["admin"])
    return personas["admin"]


def exported() -> dict:
    return yaml.safe_load(spec_export())


def counts() -> tuple[int, int]:
    return AuditEntry.objects.count(), MappingVersion.objects.count()


def test_it_changes_nothing_when_the_same_document_is_imported_twice(demo):
    doc = exported()
    first_flow = doc["flows"][0]
    first_flow["description"] = "Changed in the document"
    first_flow["state"] = "paused"  # a flow missing a mapping rule cannot stay active
    first_flow["alert_rules"] = first_flow["alert_rules"][:1]
    first_flow["mapping"]["rules"] = first_flow["mapping"]["rules"][1:]
    text = yaml.safe_dump(doc, sort_keys=False)
    first = spec_import(text=text, actor=demo)
    assert first.applied and first.changes, first.errors
    before = counts()
    preview = spec_import(text=text, actor=demo, dry_run=True)
    assert preview.summary() == "No changes: the hub already matches this document."
    again = spec_import(text=text, actor=demo)
    assert again.ok and not again.applied and again.changes == []
    assert counts() == before  # not one audit entry, not one mapping version
    assert again.unchanged == len(doc["systems"]) + len(doc["models"]) + len(doc["flows"]) + 1


def test_the_demo_exports_and_imports_as_no_change(demo):
    before = counts()
    report = spec_import(text=spec_export(), actor=demo, dry_run=False)
    assert report.ok and report.changes == [] and counts() == before


def test_the_preview_names_each_item_with_its_values_before_and_after(demo):
    doc = exported()
    crm = next(s for s in doc["systems"] if s["slug"] == "crm")
    crm["api_version"] = "2026-01"
    model = doc["models"][0]
    dropped_field = model["fields"].pop()
    flow = doc["flows"][0]
    flow["settings"]["max_attempts"] = 3
    flow["state"] = "paused"
    dropped_rule = flow["mapping"]["rules"].pop()
    flow["alert_rules"] = [rule for rule in flow["alert_rules"] if rule["kind"] != "silence"]
    flow["alert_rules"].append({"kind": "dead_letters", "threshold": 5, "window_minutes": 30})
    doc["channels"][0]["settings"]["to"] = ["ops@example.com", "lead@example.com"]
    doc["flows"].append({**copy.deepcopy(flow), "name": "A copy", "alert_rules": []})
    report = spec_import(text=yaml.safe_dump(doc), actor=demo, dry_run=True)
    assert report.ok, report.errors
    assert [(c.section, c.name) for c in report.added] == [("flow", "A copy")]
    changed = {(c.section, c.name): c for c in report.changed}
    assert changed[("system", "crm")].values == [("api_version", "", "2026-01")]
    model_change = changed[("model", f"{model['system']}/{model['name']}")]
    assert model_change.removed == [f"field '{dropped_field['path']}'"]
    flow_change = changed[("flow", flow["name"])]
    assert ("max_attempts", exported()["flows"][0]["settings"]["max_attempts"], 3) in flow_change.values
    assert f"mapping rule for '{dropped_rule['target']}'" in flow_change.removed
    assert "alert rule 'silence'" in flow_change.removed
    assert "alert rule 'dead_letters #2'" in flow_change.added  # a second rule of that kind
    assert changed[("channel", "Ops mail")].values == [
        ("settings", {"to": ["ops@example.com"]}, {"to": ["ops@example.com", "lead@example.com"]})
    ]
    assert report.removed == []  # nothing whole goes unless asked
    assert not Flow.objects.filter(name="A copy").exists()  # a preview


def test_it_removes_whole_items_only_when_asked_and_shows_them_first(demo):
    doc = exported()
    gone = doc["flows"].pop()
    doc["channels"] = []
    text = yaml.safe_dump(doc)
    kept = spec_import(text=text, actor=demo)
    assert kept.ok and kept.changes == [] and Flow.objects.filter(name=gone["name"]).exists()
    preview = spec_import(text=text, actor=demo, dry_run=True, remove_unlisted=True)
    assert [(c.section, c.name) for c in preview.removed] == [("flow", gone["name"]), ("channel", "Ops mail")]
    assert Flow.objects.filter(name=gone["name"]).exists()
    applied = spec_import(text=text, actor=demo, remove_unlisted=True)
    assert applied.applied and not Flow.objects.filter(name=gone["name"]).exists()
    assert not Channel.objects.exists()


def test_a_section_the_document_lacks_is_never_emptied(demo):
    doc = exported()
    del doc["channels"], doc["flows"]
    report = spec_import(text=yaml.safe_dump(doc), actor=demo, remove_unlisted=True)
    assert report.ok and report.removed == []
    assert Flow.objects.count() == 7 and Channel.objects.count() == 1


def test_a_refusal_anywhere_applies_nothing_and_says_where(demo):
    crm = System.objects.get(slug="crm")
    Event.objects.create(system=crm, event_type="deal.won", idempotency_key="e1", payload={})
    doc = exported()
    doc["flows"][0]["description"] = "must not be applied"
    doc["systems"] = [s for s in doc["systems"] if s["slug"] != "crm"]
    doc["models"] = [m for m in doc["models"] if m["system"] != "crm"]
    doc["flows"] = [f for f in doc["flows"] if "crm" not in (f["source_system"], f["target_system"])]
    before = counts()
    report = spec_import(text=yaml.safe_dump(doc), actor=demo, remove_unlisted=True)
    assert not report.applied and report.changes == []
    assert any(
        e.startswith("system 'crm' (not in the document): ") and "sent events" in e for e in report.errors
    )
    assert counts() == before
    assert (
        System.objects.filter(slug="crm").exists() and DataModel.objects.filter(system__slug="crm").exists()
    )


def test_alert_rules_channels_and_templates_round_trip_through_an_empty_hub(demo):
    AlertRule.objects.filter(kind="silence").update(threshold=None, window_minutes=90, renotify_minutes=15)
    text = spec_export()
    doc = yaml.safe_load(text)
    assert next(s for s in doc["systems"] if s["slug"] == "crm")["vendor_template"] == "hubspot"
    assert doc["channels"] == [
        {
            "name": "Ops mail",
            "kind": "email",
            "enabled": True,
            "settings": {"to": ["ops@example.com"]},
            "secrets": {},
        }
    ]
    rules = {r["kind"]: r for r in doc["flows"][0]["alert_rules"]}
    assert rules["silence"]["window_minutes"] == 90 and rules["silence"]["renotify_minutes"] == 15
    Flow.objects.all().delete()
    Mapping.objects.all().delete()
    DataModel.objects.all().delete()
    System.objects.all().delete()
    Channel.objects.all().delete()
    report = spec_import(text=text, actor=demo)
    assert report.applied, report.errors
    assert System.objects.get(slug="crm").vendor_template == "hubspot"
    assert without_secrets(exported()) == without_secrets(doc)  # secrets stay to be entered again


def without_secrets(doc: dict) -> dict:
    for system in doc["systems"]:
        del system["credentials"], system["webhook_secret"]
    return doc


def test_channel_secrets_are_never_exported_nor_changed(demo):
    hook = channel_create(
        kind="webhook", name="Chat", values={"url": "https://chat.example.com/hooks/T0SECRET"}, actor=demo
    )
    text = spec_export()
    assert "T0SECRET" not in text and hook.secrets["signing_secret"] not in text
    assert {"name": "Chat", "kind": "webhook", "enabled": True, "settings": {},
            "secrets": {"url": "set", "signing_secret": "set"}} in yaml.safe_load(text)["channels"]  # fmt: skip
    doc = yaml.safe_load(text)
    next(c for c in doc["channels"] if c["name"] == "Chat")["enabled"] = False
    assert spec_import(text=yaml.safe_dump(doc), actor=demo).applied
    hook.refresh_from_db()
    assert not hook.enabled and hook.secrets["url"] == "https://chat.example.com/hooks/T0SECRET"


def test_the_command_removes_unlisted_items_only_when_told(demo, tmp_path, capsys):
    from django.core.management import call_command

    doc = exported()
    gone = doc["flows"].pop()["name"]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    call_command("spec_import", str(path))
    assert Flow.objects.filter(name=gone).exists()
    call_command("spec_import", str(path), "--remove-unlisted", "--dry-run")
    assert f"would remove flow '{gone}' (not in the document)" in capsys.readouterr().out
    call_command("spec_import", str(path), "--remove-unlisted")
    assert not Flow.objects.filter(name=gone).exists()


def test_what_a_listed_model_or_flow_refers_to_is_never_removed(demo):
    doc = exported()
    kept_flow = doc["flows"][0]
    doc["flows"] = [kept_flow]
    doc["models"] = []
    doc["systems"] = []
    report = spec_import(text=yaml.safe_dump(doc), actor=demo, dry_run=True, remove_unlisted=True)
    assert report.ok, report.errors
    removed = {(c.section, c.name) for c in report.removed}
    for end in ("source", "target"):
        assert ("system", kept_flow[f"{end}_system"]) not in removed
        assert ("model", f"{kept_flow[f'{end}_system']}/{kept_flow[f'{end}_model']}") not in removed
    assert ("flow", exported()["flows"][1]["name"]) in removed


def test_field_checks_and_where_the_api_version_goes_round_trip(demo):
    System.objects.filter(slug="crm").update(api_version="v3", api_version_in="path")
    System.objects.filter(slug="accounting").update(
        api_version="2", api_version_in="query", api_version_name="v"
    )
    model = DataModel.objects.filter(system__slug="accounting").first()
    field = model.fields.order_by("position").first()
    field.format, field.enum, field.min_length, field.max_length = "email", ["a@x.io", "b@x.io"], 3, 80
    field.save()
    doc = exported()
    accounting = next(s for s in doc["systems"] if s["slug"] == "accounting")
    assert (accounting["api_version"], accounting["api_version_in"], accounting["api_version_name"]) == (
        "2",
        "query",
        "v",
    )
    entry = next(m for m in doc["models"] if m["name"] == model.name and m["system"] == "accounting")
    assert entry["fields"][0] | {} == {
        **entry["fields"][0], "format": "email", "enum": ["a@x.io", "b@x.io"], "min_length": 3, "max_length": 80
    }  # fmt: skip
    assert spec_import(text=spec_export(), actor=demo).changes == []  # the round trip changes nothing
    entry["fields"][0]["format"], entry["fields"][0]["max_length"] = "uri", 200
    accounting["api_version_in"] = "header"
    accounting["api_version_name"] = "X-Accounting-Version"
    report = spec_import(text=yaml.safe_dump(doc, sort_keys=False), actor=demo)
    assert report.applied, report.errors
    field.refresh_from_db()
    assert (field.format, field.max_length, field.min_length) == ("uri", 200, 3)
    stored = System.objects.get(slug="accounting")
    assert (stored.api_version_in, stored.api_version_name) == ("header", "X-Accounting-Version")


def test_a_flows_drift_policy_is_in_the_document_and_imported(demo):
    doc = exported()
    assert {flow["settings"]["drift_policy"] for flow in doc["flows"]} == {"report"}
    doc["flows"][0]["settings"]["drift_policy"] = "hold"
    report = spec_import(text=yaml.safe_dump(doc, sort_keys=False), actor=demo)
    assert report.applied, report.errors
    assert Flow.objects.get(name=doc["flows"][0]["name"]).drift_policy == "hold"
    doc["flows"][0]["settings"]["drift_policy"] = "shrug"
    refused = spec_import(text=yaml.safe_dump(doc, sort_keys=False), actor=demo)
    assert not refused.applied and "shrug" in str(refused.errors)
