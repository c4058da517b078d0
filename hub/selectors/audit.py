"""The audit log: entries filtered by object type, actor, verb and time, newest first, a page at
a time (keyset on the gapless `seq`), each with its diff in readable parts."""

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from common.limits import row_id
from hub.models import AuditEntry
from hub.selectors.history import within
from mappings.engine import describe_rule
from mappings.models import MappingVersion

PAGE_SIZE = 50
# Verbs whose diff is a snapshot of the object, not [before, after] pairs.
SNAPSHOT_VERBS = {"create", "delete", "admin_add", "admin_delete"}
RECORD_KEYS = ("original_record", "corrected_record")


@dataclass(frozen=True)
class AuditFilters:
    target_type: str = ""
    actor: str = ""
    verb: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_entries(filters: AuditFilters) -> QuerySet[AuditEntry]:
    wanted = {"target_type": filters.target_type, "actor_name": filters.actor, "verb": filters.verb}
    entries = AuditEntry.objects.filter(**{column: value for column, value in wanted.items() if value})
    return within(entries, "at", filters.since, filters.until)


def audit_choices() -> dict[str, list[str]]:
    """The object types, actors and verbs that occur, for the filter lists."""
    return {
        name: list(
            AuditEntry.objects.exclude(**{column: ""})
            .order_by(column)
            .values_list(column, flat=True)
            .distinct()
        )
        for name, column in (("target_type", "target_type"), ("actor", "actor_name"), ("verb", "verb"))
    }


# --------------------------------------------------------------------------------------------------
# Readable diffs
# --------------------------------------------------------------------------------------------------


@dataclass
class RuleChange:
    target: str
    change: str
    before: str
    after: str


@dataclass
class ReadableDiff:
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)  # field, before, after
    values: list[tuple[str, Any]] = field(default_factory=list)  # field, value
    rules: list[RuleChange] = field(default_factory=list)  # a mapping version's rules, side by side
    # A fix-and-replay: the record as it was and the correction, line by line, changed lines marked.
    records: tuple[list[tuple[str, bool]], list[tuple[str, bool]]] | None = None

    def is_empty(self) -> bool:
        return not (self.changes or self.values or self.rules or self.records)


def _shown(value: Any) -> Any:
    """A value as text for the page: structures as indented JSON, the rest as they are."""
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return "—" if value in (None, "") else value


def marked_lines(before: str, after: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Both texts as (line, changed) pairs: the lines a line diff finds changed are marked."""
    old, new = str(before).splitlines(), str(after).splitlines()
    changed_old, changed_new = set(), set()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            changed_old.update(range(i1, i2))
            changed_new.update(range(j1, j2))
    return (
        [(line, n in changed_old) for n, line in enumerate(old)],
        [(line, n in changed_new) for n, line in enumerate(new)],
    )


def rule_changes(changes: list) -> list[RuleChange]:
    return [
        RuleChange(
            target=str(change.get("target", "")),
            change=str(change.get("change", "")),
            before=describe_rule(change["before"]) if change.get("before") else "",
            after=describe_rule(change["after"]) if change.get("after") else "",
        )
        for change in changes
        if isinstance(change, dict)
    ]


def _field_parts(entry: AuditEntry, diff: dict) -> tuple[list, list]:
    """Field changes ([before, after] pairs) and plain values; a snapshot's objects spread out."""
    changes, values = [], []
    snapshot = entry.verb in SNAPSHOT_VERBS
    for name, value in diff.items():
        label = name.replace("_", " ")
        if isinstance(value, list) and len(value) == 2 and not snapshot:
            changes.append((label, _shown(value[0]), _shown(value[1])))
        elif isinstance(value, dict) and snapshot:
            values.extend((key.replace("_", " "), _shown(item)) for key, item in value.items())
        else:
            values.append((label, _shown(value)))
    return changes, values


def readable_diff(entry: AuditEntry, *, version_diff: list | None = None) -> ReadableDiff:
    """Split an entry's diff into field changes (before → after), plain values, a mapping's
    rule changes (from the diff its version stores) and a fix-and-replay's two records."""
    diff = dict(entry.diff) if isinstance(entry.diff, dict) else {"value": entry.diff}
    readable = ReadableDiff()
    if entry.target_type == "mapping" and isinstance(diff.get("changes"), list):
        stored = diff.pop("changes")
        readable.rules = rule_changes(stored if version_diff is None else version_diff)
    if all(key in diff for key in RECORD_KEYS):
        readable.records = marked_lines(_shown(diff.pop(RECORD_KEYS[0])), _shown(diff.pop(RECORD_KEYS[1])))
        diff.pop("corrected", None)  # said by the two records
    readable.changes, readable.values = _field_parts(entry, diff)
    return readable


@dataclass
class AuditRow:
    entry: AuditEntry
    diff: ReadableDiff

    @property
    def action(self) -> str:
        return self.entry.verb.replace("_", " ")


@dataclass
class AuditPage:
    rows: list[AuditRow]
    older: int | None = None  # the seq the next (older) page starts below; None on the last page
    at_start: bool = True


def _saved_version(entry: AuditEntry) -> tuple[int, int] | None:
    """(mapping id, version number) when the entry records a mapping version being saved."""
    diff = entry.diff if isinstance(entry.diff, dict) else {}
    if entry.target_type == "mapping" and entry.target_id.isdigit() and isinstance(diff.get("version"), int):
        return int(entry.target_id), diff["version"]
    return None


def _version_diffs(entries: list[AuditEntry]) -> dict[int, list]:
    """Per entry that saved a mapping version, the diff that version stores; one query."""
    wanted = {entry.pk: key for entry in entries if (key := _saved_version(entry))}
    if not wanted:
        return {}
    rows = MappingVersion.objects.filter(
        mapping_id__in={mapping for mapping, _ in wanted.values()},
        number__in={number for _, number in wanted.values()},
    ).values_list("mapping_id", "number", "diff")
    stored = {(mapping, number): diff for mapping, number, diff in rows}
    return {pk: stored[key] for pk, key in wanted.items() if key in stored}


def audit_page(filters: AuditFilters, *, below: str = "", size: int = PAGE_SIZE) -> AuditPage:
    """One page of matching entries, newest first, below the entry number `below`."""
    entries = audit_entries(filters)
    cursor = row_id(below)
    if cursor is not None:
        entries = entries.filter(seq__lt=cursor)
    found = list(entries.order_by("-seq")[: size + 1])
    shown = found[:size]
    diffs = _version_diffs(shown)
    rows = [
        AuditRow(entry=entry, diff=readable_diff(entry, version_diff=diffs.get(entry.pk))) for entry in shown
    ]
    return AuditPage(rows=rows, older=shown[-1].seq if len(found) > size else None, at_start=cursor is None)


# --------------------------------------------------------------------------------------------------
# Export rows
# --------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "seq", "at", "actor", "verb", "target_type", "target_id", "target_label", "diff", "prev_hash", "hash",
)  # fmt: skip


def audit_export_rows(filters: AuditFilters, *, chunk_size: int = 2000) -> Iterator[dict[str, Any]]:
    """Oldest first, read in chunks; with the hashes, so an export can be checked on its own."""
    for entry in audit_entries(filters).order_by("seq").iterator(chunk_size=chunk_size):
        yield {
            "seq": entry.seq,
            "at": entry.at.isoformat(),
            "actor": entry.actor_name,
            "verb": entry.verb,
            "target_type": entry.target_type,
            "target_id": entry.target_id,
            "target_label": entry.target_label,
            "diff": entry.diff,
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        }
