"""The audit log, read-only."""

from rest_framework import serializers, viewsets

from hub.models import AuditEntry
from hub.roles import IsAdminRole


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor_name", "verb", "target_type", "target_id", "target_label", "diff"]


class AuditViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditEntrySerializer
    permission_classes = [IsAdminRole]
    queryset = AuditEntry.objects.order_by("-at", "-id")
