"""Mappings: every save is a new version with its author and diff."""

from typing import Any

from django.db import transaction

from hub.services.audit import audit_record
from hub.services.errors import ConfigError, values_check
from mappings.engine import diff_rules, validate_rules
from mappings.models import Mapping, MappingVersion


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


def mapping_rename(*, mapping: Mapping, name: str, actor) -> Mapping:
    """Give a mapping a new name; its versions and the flows using it stay as they are."""
    name = name.strip()
    if not name:
        raise ConfigError("the mapping needs a name")
    before = mapping.name
    if name == before:
        return mapping
    values_check(Mapping(name=name), exclude=("source_model", "target_model"))
    with transaction.atomic():
        mapping.name = name
        mapping.save(update_fields=["name"])
        audit_record(actor=actor, verb="rename", target=mapping, diff={"name": [before, name]})
    return mapping
