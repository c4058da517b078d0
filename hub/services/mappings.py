"""Mappings: every save is a new version with its author and diff."""

from typing import Any

from django.db import transaction

from hub.services.audit import audit_record
from hub.services.errors import ConfigError, values_check
from mappings.engine import diff_rules, validate_rules
from mappings.models import Mapping, MappingVersion


class MappingVersionConflict(ConfigError):
    """Someone saved another version after the one the editor started from."""

    def __init__(self, *, number: int, author) -> None:
        self.number = number
        self.author = author
        who = author.get_username() if author is not None else "someone"
        super().__init__(f"{who} saved version {number} while you were editing")


def mapping_version_save(
    *,
    mapping: Mapping,
    rules: list[dict[str, Any]],
    actor,
    comment: str = "",
    expected_version: int | None = None,
) -> MappingVersion:
    """Save rules as the mapping's next version, with its diff against the current one.

    With `expected_version` (the number the editor started from; 0 for none yet), refuse with
    MappingVersionConflict when another version was saved meanwhile, so nobody's work is
    overwritten unseen.
    """
    errors = validate_rules(rules)
    if errors:
        raise ConfigError("; ".join(e.message for e in errors))
    given = mapping
    with transaction.atomic():
        # The row lock makes concurrent saves of one mapping take turns: the second one sees
        # the first one's version below and is refused instead of writing over it.
        mapping = Mapping.objects.select_for_update().get(pk=mapping.pk)
        previous = mapping.current_version
        current = previous.number if previous else 0
        if expected_version is not None and expected_version != current:
            raise MappingVersionConflict(number=current, author=previous.author if previous else None)
        number = current + 1
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
