from rest_framework import serializers

from dlq.models import DeadLetter
from hub.models import Attempt, AuditEntry, Delivery, Event, Flow


class EventSerializer(serializers.ModelSerializer):
    system = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "system",
            "event_type",
            "idempotency_key",
            "record_id",
            "origin",
            "received_at",
            "duplicates_seen",
            "payload",
        ]


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "outcome",
            "error_class",
            "message",
            "request",
            "response",
            "worker",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    flow = serializers.StringRelatedField()
    flow_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "flow",
            "flow_id",
            "record_key",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error_class",
            "last_error",
            "target_id",
            "created_at",
            "finished_at",
        ]


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempt_log"]


class FlowSerializer(serializers.ModelSerializer):
    source_system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target_system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    source_model = serializers.StringRelatedField()
    target_model = serializers.StringRelatedField()

    class Meta:
        model = Flow
        fields = [
            "id",
            "name",
            "description",
            "source_system",
            "source_model",
            "event_type",
            "target_system",
            "target_model",
            "operation",
            "filter",
            "trigger",
            "schedule_minutes",
            "schedule_cron",
            "state",
            "paused_reason",
            "max_attempts",
            "max_age_seconds",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DeadLetterSerializer(serializers.ModelSerializer):
    flow = serializers.StringRelatedField()
    event_id = serializers.UUIDField(source="delivery.event_id", read_only=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "delivery",
            "event_id",
            "flow",
            "error_class",
            "reason",
            "last_response",
            "attempts",
            "created_at",
            "resolved_at",
            "resolution",
            "resolution_note",
        ]


class ReplaySerializer(serializers.Serializer):
    corrected_record = serializers.JSONField(
        required=False, help_text="A fixed source record to send instead."
    )
    note = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_corrected_record(self, value):
        from hub.services.ingest import has_nul

        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object: the corrected source record")
        if has_nul(value):
            raise serializers.ValidationError("contains a NUL character (\\u0000), which cannot be stored")
        return value


class DiscardSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why this dead letter needs no delivery; kept in the audit log.")


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor_name", "verb", "target_type", "target_id", "target_label", "diff"]


class PublishEventSerializer(serializers.Serializer):
    system = serializers.SlugField(help_text="The source system's slug.")
    type = serializers.CharField(max_length=200, help_text='Event type, e.g. "deal.won".')
    idempotency_key = serializers.CharField(max_length=300, help_text="Repeats of a key are stored once.")
    payload = serializers.JSONField()


class PublishBatchSerializer(serializers.Serializer):
    events = PublishEventSerializer(many=True)


class PublishResultSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    duplicate = serializers.BooleanField()
    deliveries = serializers.IntegerField()
