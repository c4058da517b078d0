"""Key rotation: re-encrypt every stored secret under the first of HUB_ENCRYPTION_KEYS.

Every encrypted value in the hub is an `EncryptedJSONField` (system credentials and webhook
secrets, alert channel secrets), found here through the app registry, so a new one is rotated
without being named. Rows go in keyset batches, each in its own transaction with its rows locked;
a value no key opens is counted and named, never a reason to stop. A second run rewrites nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Cast

from connectors.crypto import EncryptedJSONField, KeyRing, legacy_key
from hub.services.audit import audit_append


@dataclass
class ColumnCount:
    """What happened to one encrypted column."""

    label: str  # app_label.Model.field
    dry_run: bool = False
    reencrypted: int = 0
    current: int = 0  # already under the first key
    unreadable: list[str] = field(default_factory=list)  # "System 3 “CRM”"

    def summary(self) -> str:
        verb = "to re-encrypt" if self.dry_run else "re-encrypted"
        return (
            f"{self.label}: {self.reencrypted} {verb}, {self.current} already under the first key, "
            f"{len(self.unreadable)} unreadable"
        )


def encrypted_columns() -> list[tuple[type[models.Model], list[str]]]:
    """Each model with encrypted columns, and their names."""
    found = []
    for model in apps.get_models():
        names = [
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, EncryptedJSONField) and model._meta.managed and not model._meta.proxy
        ]
        if names:
            found.append((model, names))
    return found


def secrets_reencrypt(
    *,
    old_secret_keys: list[str] = (),
    batch_size: int = 200,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> list[ColumnCount]:
    """Re-encrypt every encrypted value under the first of HUB_ENCRYPTION_KEYS, opening it with any
    of those keys or with the key earlier versions derived from an old SECRET_KEY."""
    ring = KeyRing(list(settings.HUB_ENCRYPTION_KEYS), extra=[legacy_key(k) for k in old_secret_keys])
    counts = []
    for model, names in encrypted_columns():
        columns = {name: ColumnCount(f"{model._meta.label}.{name}", dry_run=dry_run) for name in names}
        last_pk = None
        while True:
            with transaction.atomic():
                batch = _batch(model, names, after=last_pk, size=batch_size)
                for pk, *tokens in batch:
                    changed = {}
                    for name, token in zip(names, tokens, strict=True):
                        rotated = _rotate(ring, token, columns[name], partial(_row_name, model, pk))
                        if rotated:
                            changed[name] = models.Value(rotated, output_field=models.TextField())
                    if changed and not dry_run:
                        model._default_manager.filter(pk=pk).update(**changed)
            if not batch:
                break
            last_pk = batch[-1][0]
            progress(f"{model._meta.label}: {sum(c.reencrypted for c in columns.values())} so far")
        counts.extend(columns.values())
    if not dry_run:
        with transaction.atomic():
            audit_append(
                actor=None,
                verb="rotate_keys",
                target_type="encryption keys",
                label="stored secrets re-encrypted under the first key",
                diff={
                    c.label: {"reencrypted": c.reencrypted, "unreadable": len(c.unreadable)} for c in counts
                },
            )
    return counts


def _batch(model: type[models.Model], names: list[str], *, after, size: int) -> list[tuple]:
    """The next rows by primary key, locked, with each encrypted column as its stored text."""
    rows = model._default_manager.select_for_update().order_by("pk")
    if after is not None:
        rows = rows.filter(pk__gt=after)
    raw = {f"raw_{name}": Cast(name, output_field=models.TextField()) for name in names}
    return list(rows.annotate(**raw).values_list("pk", *raw)[:size])


def _rotate(ring: KeyRing, token: str | None, count: ColumnCount, row: Callable[[], str]) -> str | None:
    """The token re-encrypted under the first key; None when there is nothing to write."""
    if not token:
        return None
    if ring.is_current(token):
        count.current += 1
        return None
    rotated = ring.rotate(token)
    if rotated is None:
        count.unreadable.append(row())
        return None
    count.reencrypted += 1
    return rotated


def _row_name(model: type[models.Model], pk) -> str:
    """How a report names a row: "System 3 “CRM”" (its str() never needs the secret)."""
    return f"{model._meta.object_name} {pk} “{model._default_manager.get(pk=pk)}”"
