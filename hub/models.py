import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from common.paths import get_path
from connectors.apiversion import VersionIn
from connectors.models import System
from hub.pipeline import clock
from hub.pipeline.retry import RetryPolicy, default_retry_classes
from mappings.models import DataModel, Mapping


class Operation(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    UPSERT = "upsert", "Create or update"
    DELETE = "delete", "Delete"


class Trigger(models.TextChoices):
    REALTIME = "realtime", "Real-time (webhook or publish API)"
    SCHEDULED = "scheduled", "Scheduled (poll the source)"


class FlowState(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class DriftPolicy(models.TextChoices):
    """What a flow does with an event whose record no longer has its source model's shape."""

    REPORT = "report", "Carry on and tell me"
    EXTEND = "extend", "Add new fields to the model"
    HOLD = "hold", "Hold them until I approve"
    DEAD_LETTER = "dead_letter", "Send them to the dead-letter inbox"


class Flow(models.Model):
    """When `event` happens to `source_model` in `source_system`, do `operation` on `target_model`."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source_system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="outgoing_flows")
    source_model = models.ForeignKey(DataModel, on_delete=models.PROTECT, related_name="+")
    event_type = models.CharField(
        max_length=200, default="*", help_text='Event type to react to, e.g. "deal.won"; "*" for any.'
    )
    target_system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="incoming_flows")
    target_model = models.ForeignKey(DataModel, on_delete=models.PROTECT, related_name="+")
    operation = models.CharField(max_length=10, choices=Operation.choices, default=Operation.UPSERT)
    mapping = models.ForeignKey(Mapping, on_delete=models.PROTECT, related_name="flows")
    filter = models.JSONField(null=True, blank=True)

    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.REALTIME)
    schedule_minutes = models.PositiveIntegerField(null=True, blank=True)
    schedule_cron = models.CharField(max_length=100, blank=True)
    poll_page_size = models.PositiveIntegerField(default=100)

    state = models.CharField(max_length=10, choices=FlowState.choices, default=FlowState.ACTIVE)
    paused_reason = models.CharField(max_length=300, blank=True)
    max_attempts = models.PositiveIntegerField(default=8)
    max_age_seconds = models.PositiveIntegerField(default=24 * 3600)
    retry_base_seconds = models.FloatField(default=2.0)
    retry_max_seconds = models.FloatField(default=3600.0)
    retry_on = models.JSONField(
        default=default_retry_classes,
        blank=True,
        help_text="The error classes that are tried again; any other failure goes to the dead-letter inbox.",
    )
    silence_after_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Call the flow silent when no event arrives for this long."
    )
    drift_policy = models.CharField(
        max_length=12,
        choices=DriftPolicy.choices,
        default=DriftPolicy.REPORT,
        db_default=DriftPolicy.REPORT,
        help_text="When the source's records change shape. A change that takes away a field the "
        "mapping uses (or the polling cursor) always holds the events, whatever is chosen here.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.state == FlowState.ACTIVE

    def matches_event(self, event_type: str) -> bool:
        return self.event_type in ("*", "", event_type)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.retry_base_seconds,
            max_seconds=self.retry_max_seconds,
            max_attempts=self.max_attempts,
            max_age_seconds=self.max_age_seconds,
            retry_on=frozenset(self.retry_on or ()),
        )


class EventQuerySet(models.QuerySet):
    def for_system(self, system: System) -> "EventQuerySet":
        return self.filter(system=system)


class Event(models.Model):
    """A message from a source system, stored durably before it is acknowledged."""

    class Origin(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        API = "api", "Publish API"
        POLL = "poll", "Scheduled poll"
        REPLAY = "replay", "Replay"
        TEST = "test", "Test event (sent from the flow's page)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="events", db_index=False)
    event_type = models.CharField(max_length=200)
    idempotency_key = models.CharField(max_length=300)
    record_id = models.CharField(max_length=300, blank=True)
    payload = models.JSONField()
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEBHOOK)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    duplicates_seen = models.PositiveIntegerField(default=0)
    purged_at = models.DateTimeField(
        null=True, blank=True, help_text="When retention emptied the payload; the outcomes stay."
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            # The key's namespace is the system and how the event arrived: a key published through
            # the API can never take the place of a webhook's (or a poll's) own key.
            models.UniqueConstraint(
                fields=["system", "origin", "idempotency_key"], name="uniq_event_idempotency_key"
            )
        ]
        indexes = [
            # Read by the sync history's record search ("what happened to order 1042?").
            models.Index(fields=["record_id"], name="event_record_idx", condition=~Q(record_id="")),
            # Read by the retention purge: only payloads still to purge, oldest first.
            models.Index(
                fields=["received_at"], name="event_unpurged_idx", condition=Q(purged_at__isnull=True)
            ),
        ]
        # The sync history's free-text search has a trigram GIN index on PostgreSQL, made by a
        # migration (0004) because SQLite cannot hold it: see hub/selectors/history.py.

    def __str__(self) -> str:
        return f"{self.event_type} {self.idempotency_key}"

    def record(self) -> Any:
        """The business record this event is about (a polled event's payload is the record)."""
        return record_of(self.payload, self.system.record_path, self.origin)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_FLIGHT = "in_flight", "In flight"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    DEAD = "dead", "Dead-lettered"
    SKIPPED = "skipped", "Filtered out"
    UNKNOWN = "unknown", "Outcome unknown"
    HELD = "held", "Held for review"


WAITING = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT, DeliveryStatus.RETRYING)
# A delivery whose create may or may not have reached the target holds back later changes to the
# same record until an operator says what happened: sent on, they could create it a second time.
# A delivery held because its record changed shape (hub/pipeline/drift.py) holds them back too.
HOLDS_RECORD = (*UNFINISHED, DeliveryStatus.UNKNOWN, DeliveryStatus.HELD)


class DeliveryQuerySet(models.QuerySet):
    def unfinished(self) -> "DeliveryQuerySet":
        return self.filter(status__in=UNFINISHED)

    def for_flow(self, flow: Flow) -> "DeliveryQuerySet":
        return self.filter(flow=flow)

    def due(self, now: datetime | None = None) -> "DeliveryQuerySet":
        """Deliveries a worker may claim now.

        Waiting ones whose time has come, and in-flight ones whose lease expired (their worker
        died). A delivery waits while an earlier unfinished delivery of the same flow and source
        record exists, so changes to one record reach the target in order and never race to
        create it twice. Deliveries of paused flows wait. The claim reads the same set flow by
        flow (waiting_due, lease_expired, not_held), so each read is an index range.
        """
        now = now or clock.now()
        return self.filter(
            Q(status__in=WAITING, next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.IN_FLIGHT, lease_expires_at__lt=now),
            flow__state=FlowState.ACTIVE,
        ).not_held()

    def waiting_due(self, now: datetime) -> "DeliveryQuerySet":
        """Waiting deliveries whose time has come (per flow, an index range: delivery_due_idx).
        The claim adds `not_held()` and takes only active flows."""
        return self.filter(status__in=WAITING, next_attempt_at__lte=now)

    def lease_expired(self, now: datetime) -> "DeliveryQuerySet":
        """In-flight deliveries whose worker died (its lease ran out)."""
        return self.filter(status=DeliveryStatus.IN_FLIGHT, lease_expires_at__lt=now)

    def not_held(self) -> "DeliveryQuerySet":
        """Without those behind an earlier delivery of the same flow and record that is unfinished
        or of unknown outcome (HOLDS_RECORD): one record's changes go out one at a time, in order.
        For unfinished deliveries (themselves in HOLDS_RECORD): kept when each is the first of its
        record. A scalar subquery, not NOT EXISTS: PostgreSQL keeps it as one probe of
        delivery_unfinished_record_idx per row read, where an anti-join was at times planned as
        a comparison of every waiting delivery of the flow with every other."""
        first_of_record = (
            Delivery.objects.filter(
                flow_id=OuterRef("flow_id"), record_key=OuterRef("record_key"), status__in=HOLDS_RECORD
            )
            .order_by("id")
            .values("id")[:1]
        )
        return self.filter(id=Subquery(first_of_record))


class Delivery(models.Model):
    """One event carried out by one flow."""

    # No single-column indexes: (event, flow) is unique and the partial indexes below lead with
    # flow, so those serve every lookup; each index less is work saved on the hottest table.
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries", db_index=False)
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="deliveries", db_index=False)
    record_key = models.CharField(max_length=300, help_text="Source record id; orders deliveries per record.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    payload_override = models.JSONField(
        null=True, blank=True, help_text="A corrected source record an operator supplied before a replay."
    )
    last_error_class = models.CharField(max_length=30, blank=True)
    last_error = models.TextField(blank=True)
    target_id = models.CharField(max_length=300, blank=True)
    maybe_sent = models.BooleanField(
        default=False,
        db_default=False,
        help_text="A create for this delivery may have reached the target: find out before creating again.",
    )
    # Replaying a dead letter starts a fresh retry budget: attempts and age count from here.
    budget_attempts = models.PositiveIntegerField(default=0, db_default=0)
    budget_started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "flow"], name="uniq_delivery_per_event_flow")]
        indexes = [
            # Read by the claim (DeliveryQuerySet.waiting_due per flow): each flow's due deliveries
            # in order, so a claim reads a few index entries per flow whatever the queue's length.
            models.Index(
                fields=["flow", "next_attempt_at", "id"],
                name="delivery_due_idx",
                condition=Q(status__in=WAITING),
            ),
            # Read by the drain's next_due_in_seconds: the soonest waiting delivery of any flow.
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_waiting_idx",
                condition=Q(status__in=UNFINISHED),
            ),
            # Read by DeliveryQuerySet.not_held(): the per-record ordering check.
            models.Index(
                fields=["flow", "record_key", "id"],
                name="delivery_unfinished_record_idx",
                condition=Q(status__in=HOLDS_RECORD),
            ),
            models.Index(fields=["flow", "status", "created_at"], name="delivery_flow_status_idx"),
            # Read by the home page and flow health: what finished in the last 24 hours.
            models.Index(fields=["finished_at"], name="delivery_finished_idx"),
            # Read by the sync history's record search: the id a record got in the target.
            models.Index(fields=["target_id"], name="delivery_target_idx", condition=~Q(target_id="")),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        """Sent to the target with every attempt, so a repeated call has one effect."""
        return f"hub-{self.event_id}-{self.flow_id}"

    def source_record(self) -> Any:
        if self.payload_override is not None:
            return self.payload_override
        return self.event.record()

    def is_finished(self) -> bool:
        return self.status not in UNFINISHED


def record_of(payload: Any, record_path: str, origin: str) -> Any:
    if not record_path or origin == Event.Origin.POLL:
        return payload
    record = get_path(payload, record_path)
    return payload if record is None else record


class Attempt(models.Model):
    """One try at carrying out a delivery, with a redacted summary of the exchange."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    outcome = models.CharField(max_length=20)
    error_class = models.CharField(max_length=30, blank=True)
    message = models.TextField(blank=True)
    request = models.JSONField(default=dict, blank=True)
    response = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=100, blank=True)
    mapping_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The number of the flow's mapping version this attempt used."
    )

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"


class RecordLink(models.Model):
    """Per flow: which target record a source record became."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="record_links", db_index=False)
    source_id = models.CharField(max_length=300)
    target_id = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "source_id"], name="uniq_record_link")]

    def __str__(self) -> str:
        return f"{self.source_id} -> {self.target_id}"


class Cursor(models.Model):
    """Per scheduled flow: how far the source has been read."""

    flow = models.OneToOneField(Flow, on_delete=models.CASCADE, primary_key=True, related_name="cursor")
    value = models.CharField(max_length=300, blank=True)
    last_id = models.CharField(
        max_length=300, blank=True, help_text="Tie-breaker among records sharing `value`."
    )
    polling_until = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_result = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"cursor of flow {self.flow_id}: {self.value or 'start'}"


class AppendOnlyError(Exception):
    """An audit entry may be added, never changed or deleted."""


class AuditEntryQuerySet(models.QuerySet):
    """Refuses bulk changes: audit entries are append-only (the retention purge, when configured,
    deletes the oldest through `audit_purge`, which records what it removed)."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries are append-only")


class AuditEntry(models.Model):
    """Append-only, hash-chained record of configuration changes, operator actions and sign-ins.

    `seq` numbers the entries without gaps and `hash` is sha256 over the previous entry's hash and
    this entry's canonical JSON (hub/services/audit.py), so `manage.py audit_verify` names the
    first entry that was edited or removed behind the application's back.
    """

    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # Not part of the hash: deleting a user sets it to NULL; `actor_name` is what is vouched for.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    verb = models.CharField(max_length=50)
    target_type = models.CharField(max_length=50)
    target_id = models.CharField(max_length=100, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    diff = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.verb} {self.target_type} {self.target_label}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk:
            raise AppendOnlyError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("audit entries are append-only")


class ApiTokenQuerySet(models.QuerySet):
    def active(self, now: datetime | None = None) -> "ApiTokenQuerySet":
        now = now or clock.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ApiToken(models.Model):
    """A machine account's API key. Only its SHA-256 is stored: the key itself is shown once, when
    it is made. `prefix` (the key's first characters) tells tokens apart on the Users page.

    A token publishes only for the systems it is bound to."""

    # How long a new token lasts unless another choice is made, and the choices offered.
    DEFAULT_DAYS = 90
    DAYS_CHOICES = (30, 90, 180, 365)
    # last_used_at is written at most this often, so a busy client does not turn every call into
    # a write.
    LAST_USED_PRECISION_SECONDS = 60

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    systems = models.ManyToManyField(System, blank=True, related_name="api_tokens")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or 'token'} ({self.prefix}…)"

    @staticmethod
    def hash_of(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def refusal(self, now: datetime) -> str:
        """Why this token may not be used now, in plain words; "" when it may."""
        if self.revoked_at is not None:
            return f"this API token ({self.prefix}…) was revoked on {self.revoked_at:%Y-%m-%d %H:%M} UTC"
        if self.expires_at <= now:
            return f"this API token ({self.prefix}…) expired on {self.expires_at:%Y-%m-%d %H:%M} UTC"
        if not self.user.is_active:
            return f"the account of this API token ({self.user.get_username()}) is deactivated"
        return ""

    def mark_used(self, now: datetime) -> None:
        """Record a use, writing at most once a minute per token (a conditional update)."""
        stale = now - timedelta(seconds=self.LAST_USED_PRECISION_SECONDS)
        ApiToken.objects.filter(pk=self.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)


class VersionMoveState(models.TextChoices):
    PREPARED = "prepared", "Copies made, not switched yet"
    SWITCHED = "switched", "Switched over"
    SWITCHED_BACK = "switched_back", "Switched back"
    DISCARDED = "discarded", "New version's copies removed"
    FINISHED = "finished", "Old version's models removed"


class VersionMove(models.Model):
    """A system's move from one API version to another (hub/services/versions.py): the copies of
    its data models and of the mappings using them made for the new version, and which of the two
    its flows use. Both stay until an admin discards one side."""

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="version_moves")
    state = models.CharField(
        max_length=15, choices=VersionMoveState.choices, default=VersionMoveState.PREPARED
    )
    # Where the version went before and goes after: (version, header|path|query, header/parameter name).
    from_version = models.CharField(max_length=40, blank=True)
    from_in = models.CharField(max_length=10, choices=VersionIn.choices)
    from_name = models.CharField(max_length=100, blank=True)
    to_version = models.CharField(max_length=40)
    to_in = models.CharField(max_length=10, choices=VersionIn.choices)
    to_name = models.CharField(max_length=100, blank=True)
    # {"<old id>": <new id>} for data models and for mappings.
    model_pairs = models.JSONField(default=dict, blank=True)
    mapping_pairs = models.JSONField(default=dict, blank=True)
    # Per copied model, what the vendor's new API description changed: {"<model name>": {"added":
    # [...], "removed": [...], "changed": [[path, old type, new type]], "schema": name}}.
    differences = models.JSONField(default=dict, blank=True)
    dry_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    switched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.system}: API version {self.from_version or '(none)'} → {self.to_version}"

    @property
    def is_open(self) -> bool:
        """Still to be switched over, or back: another move waits until this one is settled."""
        return self.state in (VersionMoveState.PREPARED, VersionMoveState.SWITCHED_BACK)


class SchemaDrift(models.Model):
    """One change in the shape of a source model's records (a field added, gone, renamed, of
    another type, newly null), seen in real events: when, how often, and a few redacted values.

    Found by hub/pipeline/drift.py; worked through on the drift report (hub/services/drift.py)."""

    class Kind(models.TextChoices):
        ADDED = "added", "New field"
        REMOVED = "removed", "Field gone"
        RENAMED = "renamed", "Field renamed"
        TYPE_CHANGED = "type_changed", "Type changed"
        NEWLY_NULL = "newly_null", "Now empty (null)"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        APPLIED = "applied", "Model updated"
        DISMISSED = "dismissed", "Dismissed"

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="schema_drifts")
    data_model = models.ForeignKey(DataModel, on_delete=models.CASCADE, related_name="drifts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    path = models.CharField(max_length=300)
    new_path = models.CharField(max_length=300, blank=True)
    expected_type = models.CharField(max_length=20, blank=True)
    seen_type = models.CharField(max_length=20, blank=True)
    samples = models.JSONField(
        default=list, blank=True, help_text="A few values seen, redacted and cut short."
    )
    events = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-last_seen_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["data_model", "kind", "path", "new_path"], name="uniq_drift_per_model_change"
            )
        ]

    def __str__(self) -> str:
        return f"{self.data_model}: {self.describe()}"

    def describe(self) -> str:
        """The change in plain words."""
        if self.kind == self.Kind.ADDED:
            return f"new field “{self.path}” ({self.seen_type})"
        if self.kind == self.Kind.REMOVED:
            return f"field “{self.path}” is no longer sent"
        if self.kind == self.Kind.RENAMED:
            return f"field “{self.path}” now arrives as “{self.new_path}”"
        if self.kind == self.Kind.TYPE_CHANGED:
            return f"field “{self.path}” was {self.expected_type}, now arrives as {self.seen_type}"
        return f"field “{self.path}” now arrives empty (null)"


class ShapeFingerprint(models.Model):
    """A record shape already compared with a source model (as the model and the flows' mappings
    were then), and the drifts it showed: read once per process, so a restart compares only
    shapes it has never seen."""

    data_model = models.ForeignKey(DataModel, on_delete=models.CASCADE, related_name="+")
    context = models.CharField(max_length=40, help_text="The model's fields and the mappings' needs, hashed.")
    fingerprint = models.CharField(max_length=40)
    drifts = models.JSONField(default=list, blank=True)
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["data_model", "context", "fingerprint"], name="uniq_shape_fingerprint"
            )
        ]

    def __str__(self) -> str:
        return f"shape {self.fingerprint} of model {self.data_model_id}"


class DriftHold(models.Model):
    """A delivery held (or dead-lettered) because its record showed this drift."""

    drift = models.ForeignKey(SchemaDrift, on_delete=models.CASCADE, related_name="holds")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="drift_holds")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+")
    dead_lettered = models.BooleanField(default=False)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["drift", "delivery"], name="uniq_drift_hold")]
        indexes = [
            # Read by the drift report and the schema_drift alert: what is still held, per flow.
            models.Index(
                fields=["flow", "drift"], name="drift_hold_open_idx", condition=Q(released_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"delivery {self.delivery_id} held for drift {self.drift_id}"
