from django.conf import settings
from django.db import models
from django.db.models import Q

from hub.models import Delivery


class DeadLetterQuerySet(models.QuerySet):
    def unresolved(self) -> "DeadLetterQuerySet":
        return self.filter(resolved_at__isnull=True)


class DeadLetter(models.Model):
    """A delivery that could not complete; ops replay or discard it, never silently."""

    class Resolution(models.TextChoices):
        REPLAYED = "replayed", "Replayed"
        DISCARDED = "discarded", "Discarded"

    delivery = models.ForeignKey(Delivery, on_delete=models.PROTECT, related_name="dead_letters")
    flow = models.ForeignKey("hub.Flow", on_delete=models.PROTECT, related_name="dead_letters")
    error_class = models.CharField(max_length=30)
    reason = models.TextField()
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
        ]

    def __str__(self) -> str:
        return f"dead letter {self.pk}: {self.error_class}"
