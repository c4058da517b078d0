import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from connectors.base import ErrorClass
from hub.models import Delivery, DeliveryStatus, Flow

PATTERN_LENGTH = 300

# What varies between letters of one cause, replaced so that they share a pattern: quoted values,
# e-mail addresses, ids (`emp_000123`, `ord-42`, UUIDs, hex strings) and numbers.
_FIELD_NAME = re.compile(r"[a-z_][\w.\[\]-]*")


def _quoted_value(match: re.Match) -> str:
    """A quoted value is replaced, unless it reads as a field name ("email", "lines[].sku"): the
    field is part of the cause."""
    text = match.group(0)
    inner = text[1:-1]
    return text if _FIELD_NAME.fullmatch(inner) and not any(c.isdigit() for c in inner) else "'…'"


_VARYING = [
    (re.compile(r"(?<!\w)'[^']*'|\"[^\"]*\"|“[^”]*”"), _quoted_value),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    # A word with both letters and digits: an id (emp_000123, ord-42, 3f2a9c…, a UUID's parts).
    (re.compile(r"\b(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[\w-]+"), "<id>"),
    # A number, but not an HTTP status ("answered 422"): that tells one cause from another.
    (re.compile(r"(?<!answered )(?<!HTTP )\b\d+(?:[.,:]\d+)*|\b\d+(?:[.,:]\d+)+"), "#"),
    (re.compile(r"(?:<id>-?)+"), "<id>"),
    (re.compile(r"\s+"), " "),
]


def without_description(reason: str, error_class: str) -> str:
    """A reason without the error class's own description in front ("The system rejected the
    record (4xx).: POST /accounts answered 422"), which the page shows beside it already."""
    try:
        description = ErrorClass(error_class).description
    except ValueError:
        return reason
    for lead in (description, description.rstrip(".")):  # "….: detail" as stored before, "…: detail" now
        if reason.startswith(lead):
            return reason.removeprefix(lead).removeprefix(":").strip() or reason
    return reason


def reason_pattern(reason: str, error_class: str = "") -> str:
    """The cause of a failure without what differs per record (nor the error's description in
    front): letters sharing it are grouped."""
    text = without_description(reason, error_class)
    for expression, replacement in _VARYING:
        text = expression.sub(replacement, text)
    return text.strip()[:PATTERN_LENGTH]


class DeadLetterQuerySet(models.QuerySet):
    def unresolved(self) -> "DeadLetterQuerySet":
        return self.filter(resolved_at__isnull=True)

    def matching(
        self,
        *,
        flow: int | None = None,
        system: int | None = None,
        error_class: str = "",
        pattern: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        record: str = "",
        text: str = "",
        **unused: Any,
    ) -> "DeadLetterQuerySet":
        """The inbox's filters, shared by its pages, the API and the bulk jobs.

        A system matches the letters of every flow from or to it (a short list of flow ids, so the
        letter indexes that lead with the flow still serve)."""
        letters = self
        if flow:
            letters = letters.filter(flow_id=flow)
        if system:
            flows = Flow.objects.filter(Q(source_system_id=system) | Q(target_system_id=system))
            letters = letters.filter(flow_id__in=list(flows.values_list("pk", flat=True)))
        if error_class:
            letters = letters.filter(error_class=error_class)
        if pattern:
            letters = letters.filter(pattern=pattern)
        if since:
            letters = letters.filter(created_at__gte=since)
        if until:
            letters = letters.filter(created_at__lt=until)
        if record:
            letters = letters.filter(record_key=record)
        if text:
            letters = letters.filter(Q(reason__icontains=text) | Q(record_key__icontains=text))
        return letters


class DeadLetter(models.Model):
    """A delivery that could not complete; ops replay or discard it, never silently."""

    class Resolution(models.TextChoices):
        REPLAYED = "replayed", "Replayed"
        DISCARDED = "discarded", "Discarded"
        ARRIVED = "arrived", "Arrived"

    delivery = models.ForeignKey(Delivery, on_delete=models.PROTECT, related_name="dead_letters")
    flow = models.ForeignKey("hub.Flow", on_delete=models.PROTECT, related_name="dead_letters")
    error_class = models.CharField(max_length=30)
    reason = models.TextField()
    # The reason without what differs per record (see reason_pattern): the inbox groups by it.
    # Database defaults too: rows written by raw SQL (history_fill) need not name the columns.
    pattern = models.CharField(max_length=PATTERN_LENGTH, blank=True, default="", db_default="")
    # The source record id, copied from the delivery so the inbox finds a record without a join.
    record_key = models.CharField(max_length=300, blank=True, default="", db_default="")
    last_response = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=10, choices=Resolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    resolution_note = models.TextField(blank=True)

    objects = DeadLetterQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Read by the dead-letter inbox and the dead-letter depth metric: only open letters.
            models.Index(
                fields=["flow", "created_at"],
                name="deadletter_open_idx",
                condition=Q(resolved_at__isnull=True),
            ),
            # Read by the inbox's pages (newest first, keyset) and its time filter, for all flows.
            models.Index(
                fields=["created_at", "id"],
                name="deadletter_open_recent_idx",
                condition=Q(resolved_at__isnull=True),
            ),
            # Read by the inbox's causes (group by class, flow and pattern; newest from the index alone)
            # and the cause filter.
            models.Index(
                fields=["error_class", "flow", "pattern", "created_at"],
                name="deadletter_open_cause_idx",
                condition=Q(resolved_at__isnull=True),
            ),
            # Read by the inbox's record filter, open or resolved.
            models.Index(fields=["record_key"], name="deadletter_record_idx"),
            # Read by the inbox's resolved history, newest first.
            models.Index(
                fields=["resolved_at"],
                name="deadletter_resolved_idx",
                condition=Q(resolved_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"dead letter {self.pk}: {self.error_class}"

    @property
    def message(self) -> str:
        """The reason, without the error's description the page shows beside it already."""
        return without_description(self.reason, self.error_class)

    @property
    def outcome_unknown(self) -> bool:
        """The worker could not tell whether the create reached the target: an operator decides."""
        return (
            self.error_class == ErrorClass.OUTCOME_UNKNOWN or self.delivery.status == DeliveryStatus.UNKNOWN
        )


class BulkJob(models.Model):
    """Replay or discard every open letter matching a filter, in the background, with progress."""

    class Action(models.TextChoices):
        REPLAY = "replay", "Replay"
        DISCARD = "discard", "Discard"

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Running"
        DONE = "done", "Finished"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Stopped by an error"

    action = models.CharField(max_length=10, choices=Action.choices)
    filters = models.JSONField(default=dict, blank=True, help_text="The inbox filters, as ids and text.")
    description = models.CharField(max_length=500, blank=True, help_text="The filters in plain words.")
    reason = models.TextField(blank=True, help_text="Why discard them (kept with each letter).")
    # Letters that arrive after the job was started are not part of it: the operator saw `total`.
    upto_id = models.BigIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0, help_text="Replayed into a paused flow: they wait for it.")
    skipped = models.PositiveIntegerField(default=0, help_text="Already resolved by someone else.")
    failed = models.PositiveIntegerField(default=0)
    last_id = models.BigIntegerField(default=0, help_text="The last letter worked; a rerun goes on after it.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"bulk {self.action} {self.pk} ({self.state})"

    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.CANCELLED, self.State.FAILED)

    @property
    def processed(self) -> int:
        return self.done + self.held + self.skipped + self.failed

    @property
    def percent(self) -> int:
        if self.is_finished() and self.state == self.State.DONE:
            return 100
        return min(100, round(100 * self.processed / self.total)) if self.total else 0
