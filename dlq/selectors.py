"""Reads of the dead-letter inbox: one page of letters (keyset, so a page costs the same however
deep it is), the causes the open letters share, and a letter's correction beside its original."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Q

from dlq.models import BulkJob, DeadLetter, DeadLetterQuerySet
from hub.models import AuditEntry, Flow
from hub.selectors.audit import marked_lines
from hub.templatetags.hub_format import error_text

PAGE_SIZE = 50
CAUSES_SHOWN = 12
# Grouping reads at most this many (class, flow, pattern) rows, the largest first: enough for
# every cause worth a line, whatever number of letters stands behind them.
CAUSE_ROWS_READ = 500


@dataclass
class InboxPage:
    letters: list[DeadLetter]
    older: int | None = None  # the letter id the next (older) page starts below
    at_start: bool = True


def inbox_page(
    letters: DeadLetterQuerySet, *, resolved: bool, before: int | None = None, size: int = PAGE_SIZE
) -> InboxPage:
    """Open letters newest first (or resolved ones, latest resolved first), `size` at a time,
    starting below the letter `before`."""
    when = "resolved_at" if resolved else "created_at"
    letters = letters.filter(resolved_at__isnull=not resolved).order_by(f"-{when}", "-id")
    position = DeadLetter.objects.filter(pk=before).values_list(when, flat=True).first() if before else None
    if position is not None:
        letters = letters.filter(Q(**{f"{when}__lt": position}) | Q(**{when: position, "id__lt": before}))
    rows = list(letters.select_related("flow", "delivery", "resolved_by")[: size + 1])
    for letter in rows:
        letter.error_text = error_text(letter.error_class)
    page = InboxPage(letters=rows[:size], at_start=position is None)
    if len(rows) > size:
        page.older = rows[size - 1].pk
    return page


@dataclass
class Cause:
    """Open letters that failed the same way: the same class, target system and message pattern."""

    error_class: str
    target_id: int
    target_name: str
    pattern: str
    count: int = 0
    newest: datetime | None = None
    flows: list[str] = field(default_factory=list)

    @property
    def error_text(self) -> str:
        return error_text(self.error_class)


def inbox_causes(letters: DeadLetterQuerySet, *, limit: int = CAUSES_SHOWN) -> tuple[list[Cause], int]:
    """The largest causes among the open `letters`, and how many causes there are in all (of
    those read). Grouped in SQL by class, flow and pattern (the cause index), then by target."""
    rows = (
        letters.unresolved()
        .order_by()
        .values("error_class", "flow_id", "pattern")
        .annotate(n=Count("id"), newest=Max("created_at"))
        .order_by("-n")[:CAUSE_ROWS_READ]
    )
    rows = list(rows)
    flows = Flow.objects.select_related("target_system").in_bulk({row["flow_id"] for row in rows})
    causes: dict[tuple[str, int, str], Cause] = {}
    for row in rows:
        flow = flows[row["flow_id"]]
        key = (row["error_class"], flow.target_system_id, row["pattern"])
        cause = causes.get(key) or causes.setdefault(
            key, Cause(row["error_class"], flow.target_system_id, flow.target_system.name, row["pattern"])
        )
        cause.count += row["n"]
        cause.newest = max(filter(None, (cause.newest, row["newest"])))
        cause.flows.append(flow.name)
    ranked = sorted(causes.values(), key=lambda c: (-c.count, c.error_class, c.pattern))
    return ranked[:limit], len(ranked)


def recent_jobs(limit: int = 3) -> list[BulkJob]:
    return list(BulkJob.objects.select_related("created_by").order_by("-created_at", "-id")[:limit])


def _as_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def letter_correction(letter: DeadLetter) -> tuple[list, list] | None:
    """The record as it was and the correction sent instead, lines marked where they differ, from
    the audit entry of the letter's fix and replay (None when it was not corrected)."""
    entry = (
        AuditEntry.objects.filter(target_type="deadletter", target_id=str(letter.pk), verb="replay")
        .order_by("-seq")
        .only("diff")
        .first()
    )
    diff = entry.diff if entry and isinstance(entry.diff, dict) else {}
    if "original_record" not in diff or "corrected_record" not in diff:
        return None
    return marked_lines(_as_text(diff["original_record"]), _as_text(diff["corrected_record"]))
