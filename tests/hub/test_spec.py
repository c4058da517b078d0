"""The data-flow specification: export, import by natural keys, precise errors, secrets never included."""

import copy
from datetime import UTC, datetime
from functools import partial

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from connectors.models import AuthScheme, System
from hub.models import AuditEntry, Flow, FlowState, Trigger
from hub.services.specification import spec_export, spec_import
from mappings.models import DataModel, Mapping
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db


NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
API_KEY = "sk-live-0a1b2c3d4e5f-never-export"
HOOK_SECRET = "whsec-f5e4d3c2b1a0-never-export"
RULES = [
    {"target": "reference", "source": "id"},
    {"target": "reason", "constant": "CRM deal won"},
    {"target": "lines[].sku", "source": "lines[].sku", "transforms": [{"name": "upper"}]},
]


def configuration(*, secrets: bool = True) -> dict:
    """Two systems, their models, a real-time flow with a filter and a scheduled flow."""
    extra = (
        dict(credentials={"api_key": API_KEY}, webhook_secret={"secret": HOOK_SECRET})
        if secrets
        else dict(webhook_secret={})
    )
    crm = SystemFactory(name="CRM", slug="crm", kind="crm", auth_scheme=AuthScheme.API_KEY,
                        auth_config={"header": "X-Api-Key"}, rate_limit_per_second=5.0, **extra)  # fmt: skip
    inventory = SystemFactory(name="Inventory", slug="inventory", kind="inventory", webhook_secret={})
    deal = model_with_fields(
        crm,
        "Deal",
        "/deals",
        {
            "id": ("string", True),
            "stage": ("string", False),
            "amount": ("number", False),
            "lines": ("array", False),
            "lines[].sku": ("string", False),
            "updated_at": ("datetime", False),
        },
        description="A sales deal\nwon or lost",
    )
    adjustment = model_with_fields(inventory, "Adjustment", "/adjustments", {
        "reference": ("string", True), "reason": ("string", False), "lines": ("array", True),
        "lines[].sku": ("string", False)})  # fmt: skip
    won = flow_with_mapping(source_model=deal, target_model=adjustment, rules=RULES, event_type="deal.won",
                            operation="create", name="Won deals reduce stock",
                            filter={"all": [{"path": "stage", "op": "eq", "value": "won"},
                                            {"path": "amount", "op": "gt", "value": 100}]})  # fmt: skip
    sweep = flow_with_mapping(source_model=deal, target_model=adjustment, rules=RULES, name="Nightly sweep",
                              trigger=Trigger.SCHEDULED, schedule_cron="0 2 * * 1-5", state=FlowState.PAUSED,
                              filter={"path": "stage", "op": "eq", "value": None})  # fmt: skip
    return {
        "crm": crm,
        "inventory": inventory,
        "deal": deal,
        "adjustment": adjustment,
        "won": won,
        "sweep": sweep,
    }


def wipe(*, keep_systems: bool = False) -> None:
    Flow.objects.all().delete()
    Mapping.objects.all().delete()
    DataModel.objects.all().delete()
    if not keep_systems:
        System.objects.all().delete()


def test_it_exports_one_readable_document():
    configuration()
    text = spec_export(now=NOW)
    assert text.startswith(
        "# Integration hub: data-flow specification (format 1)\n# Exported 2026-11-23 10:00 UTC."
    )
    doc = yaml.safe_load(text)
    assert list(doc) == ["format", "systems", "models", "flows", "alert_rules"]
    assert doc["alert_rules"] == []
    assert [s["slug"] for s in doc["systems"]] == ["crm", "inventory"]
    assert doc["models"][0]["fields"][0] == {"path": "id", "type": "string", "required": True}
    won = next(f for f in doc["flows"] if f["name"] == "Won deals reduce stock")
    assert won["filter"] == "stage = won and amount > 100"
    assert won["mapping"]["rules"] == RULES
    sweep = next(f for f in doc["flows"] if f["name"] == "Nightly sweep")
    assert sweep["schedule_cron"] == "0 2 * * 1-5" and sweep["state"] == "paused"
    assert sweep["filter"] == {"path": "stage", "op": "eq", "value": None}  # no text form: kept as structure
    assert "  - {path: id, type: string, required: true}" in text  # one line per field: small diffs
    assert spec_export(now=NOW) == text  # stable


def test_it_never_exports_secrets():
    configuration()
    text = spec_export()
    assert API_KEY not in text and HOOK_SECRET not in text
    crm = yaml.safe_load(text)["systems"][0]
    assert crm["credentials"] == {"api_key": "set"} and crm["webhook_secret"] == "set"
    inventory = yaml.safe_load(text)["systems"][1]
    assert inventory["credentials"] == {} and inventory["webhook_secret"] == "not set"


def test_it_round_trips_through_an_empty_hub():
    configuration(secrets=False)
    before = spec_export(now=NOW)
    wipe()
    report = spec_import(text=before, actor=None)
    assert report.ok and report.applied, report.errors
    assert spec_export(now=NOW) == before


def test_it_round_trips_and_leaves_stored_secrets_alone():
    parts = configuration()
    before = spec_export(now=NOW)
    wipe(keep_systems=True)
    tampered = before.replace("api_key: set", "api_key: sk-attacker").replace(
        "webhook_secret: set", "webhook_secret: x"
    )
    report = spec_import(text=tampered, actor=None)
    assert report.ok, report.errors
    crm = System.objects.get(pk=parts["crm"].pk)
    assert crm.credentials == {"api_key": API_KEY} and crm.secret == HOOK_SECRET
    assert spec_export(now=NOW) == before


def test_it_reports_that_a_new_system_needs_its_secrets():
    configuration()
    text = spec_export()
    wipe()
    report = spec_import(text=text, actor=None, dry_run=True)
    assert any("System 'crm' is new: secrets are never imported" in note for note in report.notes)


def test_it_changes_nothing_on_a_dry_run():
    configuration()
    text = spec_export().replace("event_type: deal.won", "event_type: deal.closed")
    report = spec_import(text=text, actor=None, dry_run=True)
    assert report.changes == ["update flow 'Won deals reduce stock': event_type 'deal.won' → 'deal.closed'"]
    assert report.summary() == "1 item would change; 5 already up to date."
    assert not report.applied
    assert Flow.objects.get(name="Won deals reduce stock").event_type == "deal.won"


def test_it_updates_by_natural_keys_with_an_audit_trail(personas):
    parts = configuration()
    doc = yaml.safe_load(spec_export())
    doc["systems"][0]["base_url"] = "https://crm.example.com"
    doc["models"][0]["fields"].append({"path": "owner", "type": "string", "required": False})
    doc["flows"][1]["event_type"] = "deal.closed"
    report = spec_import(text=yaml.safe_dump(doc), actor=personas["admin"])
    assert report.applied
    assert System.objects.get(slug="crm").base_url == "https://crm.example.com"
    assert parts["deal"].fields.filter(path="owner").exists()
    assert Flow.objects.get(pk=parts["won"].pk).event_type == "deal.closed"
    assert System.objects.count() == 2 and Flow.objects.count() == 2  # updated, not duplicated
    audited = set(AuditEntry.objects.filter(verb="import").values_list("target_type", "target_label"))
    assert audited == {("system", "CRM"), ("datamodel", "CRM · Deal"), ("flow", "Won deals reduce stock")}
    assert AuditEntry.objects.filter(verb="import").first().actor == personas["admin"]


def test_it_makes_a_new_mapping_version_only_when_rules_change():
    parts = configuration()
    mapping = parts["won"].mapping
    text = spec_export()
    spec_import(text=text, actor=None)
    assert mapping.versions.count() == 1
    doc = yaml.safe_load(text)
    won = next(f for f in doc["flows"] if f["name"] == "Won deals reduce stock")
    won["mapping"]["rules"][1]["constant"] = "Deal won in the CRM"
    report = spec_import(text=yaml.safe_dump(doc), actor=None)
    assert "mapping.rules" in report.changes[0]
    mapping.refresh_from_db()
    assert mapping.versions.count() == 2 and mapping.current_version.number == 2
    assert mapping.rules[1]["constant"] == "Deal won in the CRM"
    assert mapping.current_version.comment == "specification import"


def broken(doc: dict, change) -> str:
    change(doc)
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.parametrize("change, error", [
    (lambda d: d["flows"][1].update(target_model="Invoice"),
     "flows[1].target_model: no model 'Invoice' in system 'inventory'."),
    (lambda d: d["flows"][0].update(source_system="erp"), "flows[0].source_system: no system 'erp'."),
    (lambda d: d["flows"][0].update(schedule_cron="0 25 * * *"),
     "flows[0].schedule_cron: \"0 25 * * *\" is not a valid schedule"),
    (lambda d: d["flows"][1].update(filter="stage = won and (amount > 1"), "flows[1].filter: a \"(\" is never closed."),
    (lambda d: d["flows"][1].update(operation="merge"), "flows[1].operation: unknown operation 'merge'"),
    (lambda d: d["flows"][1]["mapping"]["rules"].append({"target": "reason", "constant": "x"}),
     "flows[1].mapping.rules: Rule 4 (reason): rule 2 already writes this field"),
    (lambda d: d["flows"][1]["mapping"].update(rules=[{"target": "reason", "constant": "x"}]),
     "flows[1].state: the flow cannot be active: required target fields are not mapped: reference, lines."),
    (lambda d: d["models"][0]["fields"].append({"path": "x", "type": "text"}),
     "models[0].fields[6].type: unknown type 'text'"),
    (lambda d: d["systems"][0].update(base_url="not a url"), "systems[0].base_url: Enter a valid URL."),
    (lambda d: d["systems"][1].update(slug="crm"), "systems[1].slug: system 'crm' appears twice in the document."),
    (lambda d: d["systems"][0].update(colour="blue"), "systems[0]: unknown setting colour"),
    (lambda d: d["flows"].append({"name": "Won deals reduce stock", "source_system": "crm", "source_model": "Deal",
                                  "target_system": "inventory", "target_model": "Adjustment"}),
     "flows[2].name: flow 'Won deals reduce stock' appears twice in the document."),
    (lambda d: d["flows"][1]["settings"].update(max_attempts="many"), "flows[1].max_attempts:"),
    (lambda d: d.update(alert_rules=[{"name": "x"}]), "alert_rules: alert rules cannot be imported yet"),
])  # fmt: skip
def test_it_reports_precise_errors_and_applies_nothing(change, error):
    configuration()
    doc = yaml.safe_load(spec_export())
    doc["flows"][0]["description"] = "changed, but must not be applied"
    report = spec_import(text=broken(doc, change), actor=None)
    assert not report.applied and not report.changes
    assert any(e.startswith(error) for e in report.errors), report.errors
    assert not Flow.objects.filter(description="changed, but must not be applied").exists()
    assert not AuditEntry.objects.filter(verb="import").exists()


@pytest.mark.parametrize("text, error", [
    ("", "The document is empty."),
    ("flows: [\n  - name: x\n  bad", "The document cannot be read at line 2"),
    ("- just\n- a list", "The document must be a YAML mapping"),
    ("format: 2\n", "format: this hub reads format 1"),
    ("flows: {}\n", "flows: must be a list."),
    ("systems: []\nextras: 1\n", "Unknown section extras"),
])  # fmt: skip
def test_it_explains_documents_it_cannot_read(text, error):
    report = spec_import(text=text, actor=None)
    assert report.errors and report.errors[0].startswith(error), report.errors


def test_it_creates_new_flows_with_their_mapping_from_the_document():
    configuration()
    doc = yaml.safe_load(spec_export())
    doc["flows"].append({
        "name": "Big deals", "source_system": "crm", "source_model": "Deal", "event_type": "deal.won",
        "target_system": "inventory", "target_model": "Adjustment", "operation": "upsert", "trigger": "scheduled",
        "schedule_minutes": 30, "filter": "amount >= 1000", "state": "active",
        "mapping": {"rules": [{"target": "reference", "source": "id"}, {"target": "lines", "constant": []}]},
    })  # fmt: skip
    report = spec_import(text=yaml.safe_dump(doc), actor=None)
    assert report.applied, report.errors
    flow = Flow.objects.get(name="Big deals")
    assert flow.state == FlowState.ACTIVE and flow.schedule_minutes == 30
    assert flow.filter == {"path": "amount", "op": "gte", "value": 1000}
    assert flow.mapping.name == "Big deals" and len(flow.mapping.rules) == 2


def test_the_commands_export_and_import(tmp_path, capsys):
    configuration()
    target = tmp_path / "spec.yaml"
    call_command("spec_export", "-o", str(target))
    text = target.read_text()
    assert "Won deals reduce stock" in text and API_KEY not in text
    target.write_text(text.replace("event_type: deal.won", "event_type: deal.closed"))
    call_command("spec_import", str(target), "--dry-run")
    out = capsys.readouterr().out
    assert "would update flow 'Won deals reduce stock'" in out
    assert Flow.objects.get(name="Won deals reduce stock").event_type == "deal.won"
    call_command("spec_import", str(target))
    assert Flow.objects.get(name="Won deals reduce stock").event_type == "deal.closed"
    assert AuditEntry.objects.get(verb="import").actor_name == "manage.py spec_import"
    target.write_text("flows: [")
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("spec_import", str(target))


# --------------------------------------------------------------------------------------------------
# The web pages
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "ops", "auditor"])
def test_it_lets_every_reader_download_the_specification(client, personas, who):
    configuration()
    client.force_login(personas[who])
    response = client.get(reverse("flows-spec-export"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="hub-specification-')
    assert API_KEY not in response.content.decode()


@pytest.mark.parametrize("who", ["ops", "auditor", "outsider"])
def test_it_lets_only_admins_import(client, personas, who):
    client.force_login(personas[who])
    assert client.get(reverse("flows-spec-import")).status_code == 403
    assert client.post(reverse("flows-spec-import"), {"text": "format: 1"}).status_code == 403


def test_it_previews_then_applies_an_import_in_the_browser(client, personas):
    configuration()
    client.force_login(personas["admin"])
    text = spec_export().replace("event_type: deal.won", "event_type: deal.closed")
    page = client.post(reverse("flows-spec-import"), {"text": text, "action": "preview"}).content.decode()
    assert "What would change" in page and "event_type &#x27;deal.won&#x27; → &#x27;deal.closed&#x27;" in page
    assert Flow.objects.get(name="Won deals reduce stock").event_type == "deal.won"
    response = client.post(reverse("flows-spec-import"), {"text": text, "action": "apply"})
    assert response.status_code == 302
    assert Flow.objects.get(name="Won deals reduce stock").event_type == "deal.closed"


def test_it_shows_import_errors_in_the_browser(client, personas):
    configuration()
    client.force_login(personas["admin"])
    text = spec_export().replace("target_model: Adjustment", "target_model: Invoice", 1)
    page = client.post(reverse("flows-spec-import"), {"text": text, "action": "apply"}).content.decode()
    assert "Nothing was changed" in page
    assert "no model &#x27;Invoice&#x27; in system &#x27;inventory&#x27;" in page
    page = client.post(reverse("flows-spec-import"), {"text": "", "action": "preview"}).content.decode()
    assert "Upload the specification file or paste its text." in page


def test_it_accepts_an_uploaded_file(client, personas):
    from django.core.files.uploadedfile import SimpleUploadedFile

    configuration()
    client.force_login(personas["admin"])
    upload = SimpleUploadedFile("spec.yaml", spec_export().encode())
    page = client.post(
        reverse("flows-spec-import"), {"document": upload, "action": "preview"}
    ).content.decode()
    assert "Nothing to change" in page
    upload = SimpleUploadedFile("spec.yaml", b"\xff\xfe\x00binary")
    page = client.post(
        reverse("flows-spec-import"), {"document": upload, "action": "preview"}
    ).content.decode()
    assert "This file is not a text (UTF-8) file." in page


def test_it_refuses_yaml_aliases():
    report = spec_import(text="a: &x [1, 2]\nflows: *x\n", actor=None)
    assert report.errors[0].startswith("The document cannot be read at line 2")
    assert "aliases (*name) are not allowed" in report.errors[0]


ODD_VALUES = [None, -1.5, "x" * 400, [1, {"a": None}], {"a": [True]}]


def test_it_answers_any_odd_value_with_a_report_not_a_crash():
    configuration()
    original = yaml.safe_load(spec_export())
    dump = partial(yaml.dump, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    for section in ("systems", "models", "flows"):
        for key in list(original[section][0]):
            for value in ODD_VALUES:
                doc = copy.deepcopy(original)
                doc[section][0][key] = value
                report = spec_import(text=dump(doc), actor=None, dry_run=True)
                assert isinstance(report.errors, list) and isinstance(report.changes, list)
    for value in ODD_VALUES:
        for section in ("systems", "models", "flows", "alert_rules", "format"):
            spec_import(text=dump({**original, section: value}), actor=None, dry_run=True)
        spec_import(text=dump(value), actor=None, dry_run=True)
