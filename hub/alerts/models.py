"""Alert rules (one condition on one flow, read as a sentence), the alerts they raise with their
history, and the channels that tell people."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q

from connectors.crypto import EncryptedJSONField
from hub.alerts.channels import CHANNELS, ChannelKind, validate_channel_kind
from hub.alerts.conditions import CONDITIONS, Condition, validate_condition_kind
from hub.models import Flow


class AlertRule(models.Model):
    """ "Tell me when <flow> <condition>": one condition on one flow's health."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=30, validators=[validate_condition_kind])
    threshold = models.FloatField(null=True, blank=True, help_text="Percent, seconds or deliveries, by kind.")
    window_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="The window looked at; for silence, empty means learned."
    )
    renotify_minutes = models.PositiveIntegerField(
        default=60, help_text="Tell again this often while it fires and nobody acknowledged it; 0: once."
    )
    enabled = models.BooleanField(default=True)
    muted_until = models.DateTimeField(null=True, blank=True)
    # What a learned silence rule expects: events per hour by hour of the week (hub/alerts/volume.py).
    # Who made or changed the rule, and when, is in the audit log.
    baseline = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.flow}: {self.describe()}"

    @property
    def condition(self) -> Condition:
        return CONDITIONS[self.kind]

    def describe(self) -> str:
        """The rule's sentence after "Tell me when <flow>"."""
        if self.kind not in CONDITIONS:
            return f"(a kind of rule this version does not know: {self.kind})"
        return self.condition.describe(self)

    def is_muted(self, now: datetime) -> bool:
        return self.muted_until is not None and self.muted_until > now


class AlertQuerySet(models.QuerySet):
    def firing(self) -> "AlertQuerySet":
        return self.filter(resolved_at__isnull=True)


class Alert(models.Model):
    """One stretch of time during which a rule's condition held."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    summary = models.CharField(max_length=500, help_text="The latest reading, in words.")
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notifications = models.PositiveIntegerField(default=0)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # Fired once: a second evaluator running at the same moment cannot open a twin.
            models.UniqueConstraint(
                fields=["rule"], condition=Q(resolved_at__isnull=True), name="alerts_one_firing_per_rule"
            )
        ]
        indexes = [models.Index(fields=["started_at"], name="alerts_started_idx")]

    def __str__(self) -> str:
        return f"alert {self.pk} ({'firing' if self.is_firing else 'resolved'})"

    @property
    def is_firing(self) -> bool:
        return self.resolved_at is None


# What can happen to an alert: its label, and the tone of its badge in the history. The
# evaluation writes the first five (actor "hub"), people the others (and the evaluation an unmute
# when a mute runs out).
EVENT_KINDS: dict[str, tuple[str, str]] = {
    "fired": ("Fired", "failing"),
    "notified": ("Notified", "info"),
    "reminded": ("Reminded", "info"),
    "not_delivered": ("Notification failed", "failing"),
    "resolved": ("Resolved", "ok"),
    "acknowledged": ("Acknowledged", "info"),
    "muted": ("Muted", "paused"),
    "unmuted": ("Unmuted", "info"),
}


class AlertEvent(models.Model):
    """One change in an alert's life: fired, told, reminded, acknowledged, muted, resolved."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField()
    kind = models.CharField(
        max_length=20, choices=[(kind, label) for kind, (label, _) in EVENT_KINDS.items()]
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, default="hub")
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}: {self.message}"

    @property
    def tone(self) -> str:
        return EVENT_KINDS[self.kind][1]


class Channel(models.Model):
    """Where notifications go: an email list or a webhook. Its secrets are encrypted at rest and
    never shown again; its last result is shown on the alerts page."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, validators=[validate_channel_kind])
    settings = models.JSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_ok = models.BooleanField(null=True, blank=True)
    last_result = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def sender(self) -> ChannelKind:
        return CHANNELS[self.kind](self.settings, self.secrets)

    @property
    def kind_label(self) -> str:
        return CHANNELS[self.kind].label if self.kind in CHANNELS else self.kind
