from typing import Any

from hub.models import AuditEntry


def audit_record(*, actor, verb: str, target: Any, label: str = "", diff: dict | None = None) -> AuditEntry:
    """Append an audit entry; call inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "username", "") or "hub",
        verb=verb,
        target_type=target._meta.model_name,
        target_id=str(target.pk),
        target_label=(label or str(target))[:300],
        diff=diff or {},
    )
