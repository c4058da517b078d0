"""The data-flow specification: export, import by natural keys, precise errors, secrets never included."""

import copy
from datetime import UTC, datetime
from functools import partial

import pytest
import yaml
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.urls import reverse

from connectors.models import AuthScheme, System
from hub.models import AuditEntry, Flow, FlowState, Trigger
from hub.pipeline.dispatch import kick_workers
from hub.services.errors import ConfigError
from hub.services.flows import flow_create, flow_enable
from hub.services.mappings import mapping_version_save
from hub.services.specification import spec_export, spec_import
from mappings.models import DataModel, Field, Mapping
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
        "id! stage amount:number lines:array lines[].sku updated_at:datetime",
        description="A sales deal\nwon or lost",
    )
    adjustment = model_with_fields(inventory, "Adjustment", "/adjustments", "reference! reason lines:array! lines[].sku")  # fmt: skip
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


def texts(report) -> list[str]:
    return [str(change) for change in report.changes]


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
    assert list(doc) == ["format", "systems", "models", "flows", "channels"]
    assert doc["channels"] == []
    assert [s["slug"] for s in doc["systems"]] == ["crm", "inventory"]
    assert doc["models"][0]["fields"][0] == {"path": "id", "type": "string", "required": True}
    assert "  - {path: id, type: string, required: true}" in text  # one line per field: small diffs
    assert spec_export(now=NOW) == text  # stable


def test_it_exports_flows_with_their_filters_schedules_and_rules():
    configuration()
    flows = {flow["name"]: flow for flow in yaml.safe_load(spec_export(now=NOW))["flows"]}
    won = flows["Won deals reduce stock"]
    assert won["filter"] == "stage = won and amount > 100"
    assert won["mapping"]["rules"] == RULES
    sweep = flows["Nightly sweep"]
    assert sweep["schedule_cron"] == "0 2 * * 1-5" and sweep["state"] == "paused"
    assert sweep["filter"] == {"path": "stage", "op": "eq", "value": None}  # no text form: kept as structure


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
    assert texts(report) == ["update flow 'Won deals reduce stock': event_type 'deal.won' → 'deal.closed'"]
    assert report.summary() == "1 item would change; 5 already up to date."
    assert not report.applied
    assert Flow.objects.get(name="Won deals reduce stock").event_type == "deal.won"


def test_it_updates_by_natural_keys_with_an_audit_trail(personas):
    parts = configuration()
    doc = yaml.safe_load(spec_export())
    doc["systems"][0]["base_url"] = "http://127.0.0.1:9/v2"
    doc["models"][0]["fields"].append({"path": "owner", "type": "string", "required": False})
    doc["flows"][1]["event_type"] = "deal.closed"
    seen = set(AuditEntry.objects.values_list("pk", flat=True))
    report = spec_import(text=yaml.safe_dump(doc), actor=personas["admin"])
    assert report.applied
    assert System.objects.get(slug="crm").base_url == "http://127.0.0.1:9/v2"
    assert parts["deal"].fields.filter(path="owner").exists()
    assert Flow.objects.get(pk=parts["won"].pk).event_type == "deal.closed"
    assert System.objects.count() == 2 and Flow.objects.count() == 2  # updated, not duplicated
    audited = set(AuditEntry.objects.filter(verb="import").values_list("target_type", "target_label"))
    assert audited == {("system", "CRM"), ("datamodel", "CRM · Deal"), ("flow", "Won deals reduce stock")}
    assert AuditEntry.objects.filter(verb="import").first().actor == personas["admin"]
    # Each change went through its service, which audited it with its own verb.
    by_services = AuditEntry.objects.exclude(verb="import").exclude(pk__in=seen)
    assert set(by_services.values_list("target_type", "verb")) == {
        ("system", "update"),
        ("datamodel", "add_field"),
        ("flow", "update"),
    }


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
    assert texts(report) == [
        "update flow 'Won deals reduce stock': mapping rule for 'reason' constant 'CRM deal won' → 'Deal won in the CRM'"
    ]
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
     "flows[0] 'Nightly sweep': \"0 25 * * *\" is not a valid schedule"),
    (lambda d: d["flows"][1].update(filter="stage = won and (amount > 1"), "flows[1].filter: a \"(\" is never closed."),
    (lambda d: d["flows"][1].update(operation="merge"),
     "flows[1] 'Won deals reduce stock': unknown operation \"merge\""),
    (lambda d: d["flows"][1]["mapping"]["rules"].append({"target": "reason", "constant": "x"}),
     "flows[1] 'Won deals reduce stock': Rule 4 (reason): rule 2 already writes this field"),
    (lambda d: d["flows"][1]["mapping"].update(rules=[{"target": "reason", "constant": "x"}]),
     "flows[1] 'Won deals reduce stock': This flow cannot stay active: "
     "required fields of the Adjustment data model are not mapped: reference, lines."),
    (lambda d: d["models"][0]["fields"].append({"path": "x", "type": "text"}),
     "models[0] 'crm/Deal': \"x\": unknown type \"text\""),
    (lambda d: d["systems"][0].update(base_url="not a url"), "systems[0] 'crm': base_url: Enter a valid URL."),
    (lambda d: d["systems"][1].update(slug="crm"), "systems[1].slug: system 'crm' appears twice in the document."),
    (lambda d: d["systems"][0].update(colour="blue"), "systems[0]: unknown setting colour"),
    (lambda d: d["flows"].append({"name": "Won deals reduce stock", "source_system": "crm", "source_model": "Deal",
                                  "target_system": "inventory", "target_model": "Adjustment"}),
     "flows[2].name: flow 'Won deals reduce stock' appears twice in the document."),
    (lambda d: d["flows"][1]["settings"].update(max_attempts="many"),
     "flows[1].settings.max_attempts: must be a whole number."),
    (lambda d: d.update(alert_rules=[{"name": "x"}]), "alert_rules: a flow's alert rules go in its own entry"),
    (lambda d: d["flows"][1].update(alert_rules=[{"threshold": 5}]), "flows[1].alert_rules[0].kind: is required."),
    (lambda d: d["flows"][1].update(alert_rules=[{"kind": "moonphase"}]),
     "flows[1] 'Won deals reduce stock': There is no kind of rule called “moonphase”."),
    (lambda d: d.update(channels=[{"name": "Ops chat", "kind": "webhook"}]),
     "channels[0] 'Ops chat': its webhook url is a secret, and secrets are never imported"),
    # The rest are refused by the configuration services, in their words.
    (lambda d: d["flows"][1].update(trigger="hourly"), "flows[1] 'Won deals reduce stock': unknown trigger \"hourly\""),
    (lambda d: d["flows"][1]["settings"].update(max_attempts=-1),
     "flows[1] 'Won deals reduce stock': max_attempts: Ensure this value is greater than or equal to 0."),
    (lambda d: d["flows"][1].update(filter={"path": "stage", "op": "near", "value": 1}),
     "flows[1] 'Won deals reduce stock': the filter is not valid:"),
    (lambda d: d["flows"][1].update(target_system="crm", target_model="Deal"),
     "flows[1] 'Won deals reduce stock': a flow's systems and data models cannot change"),
    (lambda d: d["flows"][1].update(state="draft"),
     "flows[1] 'Won deals reduce stock': a flow that has been enabled cannot go back to draft"),
    (lambda d: d["models"][1].update(id_path=""), "models[1] 'inventory/Adjustment': id_path: This field cannot be blank."),
    (lambda d: d["models"].append({"system": "crm", "name": "Invoice"}),
     "models[2] 'crm/Invoice': a data model needs at least one field"),
    (lambda d: d["flows"][1]["settings"].update(retry_on="timeout"), "flows[1].settings.retry_on: must be a list."),
    (lambda d: d["flows"][1]["settings"].update(retry_on=["timeout", "bogus"]),
     "flows[1] 'Won deals reduce stock': unknown error class bogus in retry_on"),
    (lambda d: d["flows"][1]["settings"].update(retry_base_seconds=60, retry_max_seconds=5),
     "flows[1] 'Won deals reduce stock': the longest wait must be at least the first wait (1 min)"),
    (lambda d: d["models"][1].update(create_by_key="yes"), "models[1].create_by_key: must be true or false."),
    (lambda d: d["models"][1].update(lookup_field="nickname"),
     "models[1] 'inventory/Adjustment': \"nickname\" is not one of the fields of this data model"),
    (lambda d: d["models"][1].update(lookup_field="reference", lookup_param="reference=1"),
     "models[1] 'inventory/Adjustment': write only the name of the query parameter"),
    (lambda d: d["models"].append({"system": "crm", "name": "Lead", "lookup_field": "lines",
                                   "fields": [{"path": "id"}, {"path": "lines", "type": "array"}]}),
     "models[2] 'crm/Lead': \"lines\" holds a list, not one value"),
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
    assert (
        "What would change" in page
        and "<code>event_type</code>: deal.won → <strong>deal.closed</strong>" in page
    )
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
    assert "No changes" in page
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


# --------------------------------------------------------------------------------------------------
# One write path: the import makes its changes through the configuration services
# --------------------------------------------------------------------------------------------------

BIG_DEALS = {
    "name": "Big deals", "source_system": "crm", "source_model": "Deal", "event_type": "deal.won",
    "target_system": "inventory", "target_model": "Adjustment", "operation": "create", "state": "active",
    "mapping": {"rules": RULES},
}  # fmt: skip


def with_flow(flow: dict) -> str:
    doc = yaml.safe_load(spec_export())
    doc["flows"].append(copy.deepcopy(flow))  # no shared objects: the YAML would hold aliases
    return yaml.safe_dump(doc, sort_keys=False)


def test_it_enables_an_imported_flow_as_the_enable_button_does(personas, django_capture_on_commit_callbacks):
    parts = configuration()
    admin = personas["admin"]
    by_hand = flow_create(
        actor=admin, name="By hand", source_model=parts["deal"], target_model=parts["adjustment"]
    )
    mapping_version_save(mapping=by_hand.mapping, rules=RULES, actor=admin)
    flow_enable(flow=by_hand, actor=admin)  # what the flow page's Enable button calls
    with django_capture_on_commit_callbacks() as callbacks:
        report = spec_import(text=with_flow(BIG_DEALS), actor=admin)
    assert report.applied, report.errors
    assert kick_workers in callbacks  # a worker wakes once the import commits
    imported = Flow.objects.get(name="Big deals")
    assert imported.state == FlowState.ACTIVE

    def enabling(flow: Flow) -> list:
        entries = AuditEntry.objects.filter(target_type="flow", target_id=str(flow.pk)).exclude(verb="import")
        return list(entries.order_by("pk").values_list("actor", "verb", "diff"))

    assert [verb for _, verb, _ in enabling(imported)] == ["create", "enable"]
    assert (
        enabling(imported)[-1]
        == enabling(by_hand)[-1]
        == (admin.pk, "enable", {"state": ["draft", "active"]})
    )


def test_it_pauses_an_imported_flow_as_the_pause_button_does(personas):
    configuration()
    doc = yaml.safe_load(spec_export())
    doc["flows"][1]["state"] = "paused"
    report = spec_import(text=yaml.safe_dump(doc), actor=personas["admin"])
    assert texts(report) == ["update flow 'Won deals reduce stock': state 'active' → 'paused'"]
    flow = Flow.objects.get(name="Won deals reduce stock")
    assert flow.paused_reason == "paused by a specification import"
    assert AuditEntry.objects.filter(target_type="flow", target_id=str(flow.pk), verb="pause").exists()


def refusal(calls) -> str:
    """What the flow services say when they are asked for the same flow by hand (then undone)."""
    with pytest.raises(ConfigError) as refused, transaction.atomic():
        calls()
    return str(refused.value)


@pytest.mark.parametrize("change", [
    {"mapping": {"rules": [{"target": "reason", "constant": "x"}]}},  # refused by enable
    {"trigger": "scheduled", "schedule_cron": "0 2 * *"},  # refused by create
])  # fmt: skip
def test_it_refuses_an_invalid_new_flow_in_the_words_of_the_flow_services(change):
    parts = configuration()
    flow = {**BIG_DEALS, **change}

    def by_hand() -> None:
        created = flow_create(
            actor=None, name=flow["name"], source_model=parts["deal"], target_model=parts["adjustment"],
            event_type=flow["event_type"], operation=flow["operation"], trigger=flow.get("trigger", "realtime"),
            schedule_cron=flow.get("schedule_cron", ""),
        )  # fmt: skip
        mapping_version_save(mapping=created.mapping, rules=flow["mapping"]["rules"], actor=None)
        flow_enable(flow=created, actor=None)

    said = refusal(by_hand)
    report = spec_import(text=with_flow(flow), actor=None)
    assert report.errors == [f"flows[2] 'Big deals': {said}"]
    assert not report.applied and not Flow.objects.filter(name="Big deals").exists()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def test_a_dry_run_changes_no_row_and_plans_what_the_real_run_does(
    personas, django_capture_on_commit_callbacks
):
    configuration()
    doc = yaml.safe_load(spec_export())
    doc["systems"][0]["base_url"] = "http://127.0.0.1:9/v2"
    doc["systems"].append({"slug": "hr", "name": "HR", "kind": "hr", "auth_scheme": "bearer"})
    doc["models"].append({"system": "hr", "name": "Person", "fields": [{"path": "id", "required": True}]})
    doc["models"][0]["fields"].reverse()
    doc["flows"][0]["state"] = "active"  # resume the paused sweep
    doc["flows"][1]["mapping"]["rules"] = [*copy.deepcopy(RULES[:2]), {"target": "lines", "constant": []}]
    doc["flows"].append(copy.deepcopy(BIG_DEALS))
    text = yaml.safe_dump(doc, sort_keys=False)
    before = row_counts()
    with django_capture_on_commit_callbacks() as callbacks:
        dry = spec_import(text=text, actor=personas["admin"], dry_run=True)
    assert dry.ok and not dry.applied, dry.errors
    assert row_counts() == before  # not one row written, not even an audit entry
    assert callbacks == []  # and no worker woken
    assert texts(dry) == [
        "update system 'crm': base_url 'http://127.0.0.1:9' → 'http://127.0.0.1:9/v2'",
        "create system 'hr' (HR)",
        "update model 'crm/Deal': order of fields 'id, stage, amount, lines, lines[].sku, updated_at' → "
        "'updated_at, lines[].sku, lines, amount, stage, id'",
        "create model 'hr/Person' (1 fields)",
        "update flow 'Nightly sweep': state 'paused' → 'active'",
        "update flow 'Won deals reduce stock': add mapping rule for 'lines', remove mapping rule for 'lines[].sku'",
        "create flow 'Big deals' (crm/Deal → inventory/Adjustment, active, 3 mapping rules)",
    ]
    assert dry.unchanged == 2
    real = spec_import(text=text, actor=personas["admin"])
    assert real.applied
    assert (real.changes, real.notes, real.unchanged) == (dry.changes, dry.notes, dry.unchanged)
    assert row_counts() != before
    assert spec_import(text=text, actor=None, dry_run=True).changes == []  # the hub now matches it


def test_a_dry_run_refuses_what_the_real_run_refuses():
    configuration()
    text = with_flow({**BIG_DEALS, "mapping": {"rules": []}})
    before = row_counts()
    dry = spec_import(text=text, actor=None, dry_run=True)
    real = spec_import(text=text, actor=None)
    assert (
        dry.errors
        == real.errors
        == ["flows[2] 'Big deals': This flow cannot be enabled yet: its mapping has no rules."]
    )
    assert row_counts() == before


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"a\\0b"', "NUL character"),
        (".nan", "NaN and Infinity"),
        ("123456789012345678901234567890", "64 bits"),
    ],
)
def test_it_refuses_values_no_database_can_store_with_a_plain_error(personas, value, reason):
    text = f"systems:\n  - slug: crm\n    name: {value}\n"
    report = spec_import(text=text, actor=personas["admin"])
    assert report.errors and reason in report.errors[0]


# -- the lookup by external id and the retry policy travel with the document -----------------------------


def test_it_exports_the_lookup_and_the_retry_policy():
    parts = configuration()
    DataModel.objects.filter(pk=parts["adjustment"].pk).update(
        lookup_field="reference", lookup_param="filter[reference]", create_by_key=True
    )
    Flow.objects.filter(pk=parts["won"].pk).update(retry_on=["timeout", "server_error"], max_attempts=5)
    text = spec_export(now=NOW)
    doc = yaml.safe_load(text)
    adjustment = doc["models"][1]
    assert (adjustment["lookup_field"], adjustment["lookup_param"], adjustment["create_by_key"]) == (
        "reference", "filter[reference]", True,
    )  # fmt: skip
    assert doc["models"][0]["lookup_field"] == "" and doc["models"][0]["create_by_key"] is False
    won = next(f for f in doc["flows"] if f["name"] == "Won deals reduce stock")
    assert won["settings"]["retry_on"] == ["server_error", "timeout"] and won["settings"]["max_attempts"] == 5
    assert "    retry_on: [server_error, timeout]\n" in text  # one line: small diffs


def test_the_lookup_and_the_retry_policy_round_trip_through_an_empty_hub():
    parts = configuration(secrets=False)
    DataModel.objects.filter(pk=parts["adjustment"].pk).update(lookup_field="reference", create_by_key=True)
    Flow.objects.filter(pk=parts["sweep"].pk).update(retry_on=[], retry_max_seconds=60.0)
    before = spec_export(now=NOW)
    wipe()
    report = spec_import(text=before, actor=None)
    assert report.ok and report.applied, report.errors
    assert spec_export(now=NOW) == before
    adjustment = DataModel.objects.get(name="Adjustment")
    assert adjustment.lookup_field == "reference" and adjustment.create_by_key
    sweep = Flow.objects.get(name="Nightly sweep")
    assert sweep.retry_on == [] and not sweep.retry_policy().retries("timeout")


def test_an_import_moves_the_lookup_to_a_field_it_adds_and_drops_the_old_one(personas):
    parts = configuration()
    DataModel.objects.filter(pk=parts["adjustment"].pk).update(lookup_field="reference")
    doc = yaml.safe_load(spec_export())
    adjustment = doc["models"][1]
    adjustment["fields"] = [f for f in adjustment["fields"] if f["path"] != "reference"]
    adjustment["fields"].append({"path": "external_ref", "type": "string", "required": True})
    adjustment.update(lookup_field="external_ref", lookup_param="ext")
    doc["flows"][1]["settings"]["retry_on"] = ["rate_limited"]
    doc["flows"][1]["mapping"]["rules"][0]["target"] = "external_ref"
    doc["flows"][0]["mapping"]["rules"][0]["target"] = "external_ref"
    report = spec_import(text=yaml.safe_dump(doc), actor=personas["admin"])
    assert report.applied, report.errors
    model = DataModel.objects.get(pk=parts["adjustment"].pk)
    assert (model.lookup_field, model.lookup_param) == ("external_ref", "ext")
    assert not model.fields.filter(path="reference").exists()
    assert Flow.objects.get(pk=parts["won"].pk).retry_on == ["rate_limited"]
    change = next(c for c in texts(report) if c.startswith("update model 'inventory/Adjustment'"))
    assert "lookup_field 'reference' → 'external_ref'" in change
    flow_change = next(c for c in texts(report) if c.startswith("update flow 'Won deals reduce stock'"))
    assert "retry_on" in flow_change


def test_it_round_trips_a_field_unit():
    configuration(secrets=False)
    Field.objects.filter(path="amount").update(unit="in euros")
    before = spec_export(now=NOW)
    assert "unit: in euros" in before
    wipe()
    report = spec_import(text=before, actor=None)
    assert report.ok and report.applied, report.errors
    assert Field.objects.get(path="amount").unit == "in euros"
    assert spec_export(now=NOW) == before
