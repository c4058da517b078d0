"""The audit trail: append-only and hash-chained.

Every entry carries `hash = sha256(previous entry's hash + canonical JSON of the entry)` and a
gapless `seq`, written in the transaction of the change it records. Writers take turns at the
head of the chain (a PostgreSQL advisory lock held to the end of the transaction; on SQLite the
hub's transactions are IMMEDIATE, so the write lock is already held from BEGIN), so two
concurrent changes can never both link to the same entry; the unique `seq` is the backstop.
`audit_verify` walks the chain and names the first entry that was edited or removed.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

from hub.clientip import client_address
from hub.models import AuditEntry
from hub.pipeline import clock

# pg_advisory_xact_lock key of the chain's head ("HUB_AUDI" as a 64-bit integer).
CHAIN_LOCK = 0x4855425F41554449
PURGE_VERB = "purge_audit"


def audit_record(*, actor, verb: str, target: Any, label: str = "", diff: dict | None = None) -> AuditEntry:
    """Append an audit entry about a model instance; call inside the transaction of the change."""
    return audit_append(
        actor=actor,
        verb=verb,
        target_type=target._meta.model_name,
        target_id=str(target.pk),
        label=label or str(target),
        diff=diff,
    )


def audit_append(
    *,
    actor,
    verb: str,
    target_type: str,
    target_id: str = "",
    label: str = "",
    diff: dict | None = None,
    actor_name: str | None = None,
) -> AuditEntry:
    """Link a new entry to the head of the chain. `actor_name` overrides the name shown (a failed
    sign-in has no actor)."""
    if actor_name is None:
        actor_name = getattr(actor, "username", "") or "hub"
    with transaction.atomic():
        _lock_head()
        head = AuditEntry.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (head[0] + 1, head[1]) if head else (1, "")
        entry = AuditEntry(
            seq=seq,
            at=clock.now(),
            actor=actor if getattr(actor, "pk", None) else None,
            actor_name=actor_name[:150],
            verb=verb,
            target_type=target_type,
            target_id=target_id[:100],
            target_label=label[:300],
            # Stored as it reads back, so the hash computed now is the one recomputed later.
            diff=_plain(json.loads(json.dumps(diff or {}, default=str))),
            prev_hash=prev_hash,
        )
        entry.hash = entry_hash(prev_hash, entry)
        entry.save(force_insert=True)
    return entry


def _lock_head() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])


def _plain(value: Any) -> Any:
    """JSON values in one spelling: a whole float is an int (PostgreSQL's jsonb gives 1e20 back
    as 100000000000000000000), keys sorted later by the canonical dump."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def entry_canonical(entry: AuditEntry) -> str:
    """The entry's content as one canonical JSON text: what its hash vouches for."""
    at = entry.at.astimezone(UTC) if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    body = {
        "seq": entry.seq,
        "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": entry.actor_name,
        "verb": entry.verb,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_label": entry.target_label,
        "diff": _plain(entry.diff),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256((prev_hash + entry_canonical(entry)).encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------------


@dataclass
class ChainReport:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = ""
    problem: str = ""  # the first break, in words; "" when the chain is whole

    @property
    def ok(self) -> bool:
        return not self.problem


def _describe(entry: AuditEntry) -> str:
    return (
        f"entry #{entry.seq} (id {entry.pk}, {entry.at:%Y-%m-%d %H:%M:%S}, {entry.actor_name} "
        f"{entry.verb} {entry.target_type} {entry.target_label!r})"
    )


def _start_problem(first: AuditEntry) -> str:
    """A chain may start after 1 only where a recorded purge says it ends."""
    if first.seq == 1 and first.prev_hash == "":
        return ""
    purge = (
        AuditEntry.objects.filter(verb=PURGE_VERB, diff__through_seq=first.seq - 1)
        .values_list("diff", flat=True)
        .first()
    )
    if purge and purge.get("through_hash") == first.prev_hash:
        return ""
    if first.seq == 1:
        return f"{_describe(first)} was edited: the first entry links to a previous one"
    missing = "entry #1 is" if first.seq == 2 else f"entries #1 to #{first.seq - 1} are"
    return f"{missing} missing: the log starts at {_describe(first)} and no purge removed them"


def _link_problem(entry: AuditEntry, previous: AuditEntry | None) -> str:
    if previous is not None and entry.seq != previous.seq + 1:
        gap = (
            f"entry #{previous.seq + 1} is"
            if entry.seq == previous.seq + 2
            else f"entries #{previous.seq + 1} to #{entry.seq - 1} are"
        )
        return f"{gap} missing: the log jumps from #{previous.seq} to {_describe(entry)}"
    if previous is not None and entry.prev_hash != previous.hash:
        return (
            f"{_describe(entry)} no longer links to entry #{previous.seq}: "
            f"entry #{previous.seq} was replaced, or this entry's link was edited"
        )
    if entry.hash != entry_hash(entry.prev_hash, entry):
        return f"{_describe(entry)} was edited: its content no longer matches its hash"
    return ""


def audit_verify(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the chain from its start and stop at the first edited or missing entry."""
    report = ChainReport()
    previous: AuditEntry | None = None
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=chunk_size):
        problem = _start_problem(entry) if previous is None else ""
        report.problem = problem or _link_problem(entry, previous)
        if report.problem:
            return report
        report.checked += 1
        report.head_seq, report.head_hash = entry.seq, entry.hash
        previous = entry
    return report


def audit_head_check(*, seq: int, hash: str) -> str:
    """An anchor kept outside the database (`seq:hash` from an earlier verify) is still there:
    catches entries cut off the end of the log, which the chain alone cannot."""
    stored = AuditEntry.objects.filter(seq=seq).values_list("hash", flat=True).first()
    if stored is None:
        return f"entry #{seq}, recorded earlier as the head, is missing: the log was cut short"
    if stored != hash:
        return f"entry #{seq} differs from the head recorded earlier: it was replaced"
    return ""


# --------------------------------------------------------------------------------------------------
# Sign-ins
# --------------------------------------------------------------------------------------------------


def _client_address(request) -> str:
    return client_address(request) if request is not None else ""


def audit_sign_in(*, user, request) -> AuditEntry:
    return audit_record(actor=user, verb="sign_in", target=user, diff={"address": _client_address(request)})


def audit_sign_in_failed(*, username: str, user, request) -> AuditEntry:
    """A refused sign-in: nobody is signed in, so the actor is anonymous; the target is the
    account tried (when it exists) and the name typed."""
    return _anonymous_sign_in_entry("sign_in_failed", username, user, {"address": _client_address(request)})


def audit_sign_in_paused(*, username: str, user, address: str, failures: int) -> AuditEntry:
    """Sign-in throttling paused an account or an address after too many wrong passwords."""
    return _anonymous_sign_in_entry(
        "sign_in_paused", username, user, {"address": address, "wrong_passwords": failures}
    )


def _anonymous_sign_in_entry(verb: str, username: str, user, details: dict) -> AuditEntry:
    return audit_append(
        actor=None,
        actor_name="",
        verb=verb,
        target_type="user",
        target_id=str(user.pk) if user is not None else "",
        label=username,
        diff={"username": username[:150], **details},
    )


# --------------------------------------------------------------------------------------------------
# Retention (the audit trail is kept forever unless HUB_AUDIT_RETENTION_DAYS is set)
# --------------------------------------------------------------------------------------------------


def audit_purge(*, before: datetime, batch_size: int = 1000) -> int:
    """Delete the entries older than `before` from the start of the chain, never the newest. Each
    batch records,
    in its own transaction, where the chain now starts, so `audit_verify` tells this purge from a
    deletion behind the hub's back."""
    removed = 0
    while True:
        with transaction.atomic():
            _lock_head()
            # Only a prefix of the chain goes, up to the first entry that is not old (or the
            # newest, which always stays), so the rest still links up from where it starts.
            head_seq = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
            young = AuditEntry.objects.filter(at__gte=before).order_by("seq").values_list("seq", flat=True)
            stop = min(young.first() or head_seq, head_seq)
            batch = list(
                AuditEntry.objects.filter(seq__lt=stop)
                .order_by("seq")
                .values_list("pk", "seq", "hash")[:batch_size]
            )
            if not batch:
                return removed
            # The queryset refuses deletes; this is the one sanctioned path.
            AuditEntry.objects.filter(pk__in=[pk for pk, _, _ in batch])._raw_delete(using="default")
            removed += len(batch)
            _, through_seq, through_hash = batch[-1]
            audit_append(
                actor=None,
                verb=PURGE_VERB,
                target_type="auditentry",
                label=f"entries through #{through_seq}",
                diff={
                    "through_seq": through_seq,
                    "through_hash": through_hash,
                    "entries": len(batch),
                    "older_than": before.isoformat(),
                },
            )
