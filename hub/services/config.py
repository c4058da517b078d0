"""Configuration changes: each writes its audit entry in the same transaction."""

from typing import Any

from django.db import transaction

from hub.models import Flow, FlowState
from hub.services.audit import audit_record
from mappings.engine import diff_rules, validate_rules
from mappings.models import Mapping, MappingVersion


class ConfigError(Exception):
    """A configuration change that cannot be made, with the reason in plain words."""


def flow_pause(*, flow: Flow, actor, reason: str = "") -> Flow:
    with transaction.atomic():
        before = flow.state
        flow.state = FlowState.PAUSED
        flow.paused_reason = (reason or f"paused by {getattr(actor, 'username', 'hub')}")[:300]
        flow.save(update_fields=["state", "paused_reason", "updated_at"])
        audit_record(
            actor=actor, verb="pause", target=flow, diff={"state": [before, flow.state], "reason": reason}
        )
    return flow


def flow_resume(*, flow: Flow, actor, verb: str = "resume") -> Flow:
    """Switch a paused (or draft) flow on; refused with the reasons while its mapping has problems."""
    problems = flow_problems(flow)
    if problems:
        raise ConfigError("This flow cannot be enabled yet: " + "; ".join(problems) + ".")
    with transaction.atomic():
        before = flow.state
        flow.state = FlowState.ACTIVE
        flow.paused_reason = ""
        flow.save(update_fields=["state", "paused_reason", "updated_at"])
        audit_record(actor=actor, verb=verb, target=flow, diff={"state": [before, flow.state]})
    from hub.services.dispatch import kick_workers

    transaction.on_commit(kick_workers)
    return flow


def flow_problems(flow: Flow) -> list[str]:
    """What keeps a flow from being enabled (an empty list when it is ready)."""
    problems = []
    version = flow.mapping.current_version
    if version is None or not version.rules:
        if flow.operation != "delete":
            problems.append("its mapping has no rules")
    else:
        problems.extend(error.message for error in validate_rules(version.rules))
        mapped_targets = {rule.get("target") for rule in version.rules}
        required = flow.target_model.fields.filter(required=True).values_list("path", flat=True)
        missing = [
            path
            for path in required
            if path not in mapped_targets
            and "[]" not in path
            and not any(t and t.startswith((path + ".", path + "[")) for t in mapped_targets)
        ]
        if missing and flow.operation in ("create", "upsert"):
            problems.append("required target fields are not mapped: " + ", ".join(missing))
    return problems


def mapping_version_save(
    *, mapping: Mapping, rules: list[dict[str, Any]], actor, comment: str = ""
) -> MappingVersion:
    """Save rules as the mapping's next version, with its diff against the current one."""
    errors = validate_rules(rules)
    if errors:
        raise ConfigError("; ".join(e.message for e in errors))
    given = mapping
    with transaction.atomic():
        mapping = Mapping.objects.select_for_update().get(pk=mapping.pk)
        previous = mapping.current_version
        number = (previous.number + 1) if previous else 1
        diff = diff_rules(previous.rules if previous else [], rules)
        version = MappingVersion.objects.create(
            mapping=mapping,
            number=number,
            rules=rules,
            diff=diff,
            comment=comment,
            author=actor if getattr(actor, "pk", None) else None,
        )
        mapping.current_version = version
        mapping.save(update_fields=["current_version"])
        audit_record(
            actor=actor,
            verb="save",
            target=mapping,
            label=f"{mapping.name} v{number}",
            diff={"version": number, "changes": diff, "comment": comment},
        )
    given.current_version = version
    return version


def mapping_version_restore(*, mapping: Mapping, version: MappingVersion, actor) -> MappingVersion:
    return mapping_version_save(
        mapping=mapping, rules=version.rules, actor=actor, comment=f"restored version {version.number}"
    )
