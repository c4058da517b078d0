"""Ingest: verify, parse, deduplicate, and store each event with its deliveries in one transaction."""

import hashlib
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F

from common import strictjson
from common.paths import get_path
from connectors.crypto import is_unreadable
from connectors.models import SignatureScheme, System
from connectors.signatures import SignatureError, verify_signature
from connectors.vendors import vendor_template
from hub.metrics.recording import IngestTally
from hub.models import Delivery, DeliveryStatus, Event, record_of
from hub.pipeline import clock
from hub.pipeline.dispatch import kick_workers
from hub.pipeline.drift import DriftCheck
from hub.pipeline.outcomes import flows_pause_for_unreadable_secrets
from hub.pipeline.rows import insert_rows
from hub.pipeline.subscriptions import Subscription, subscriptions_for
from mappings.conditions import describe_condition

IDEMPOTENCY_CONSTRAINT = "uniq_event_idempotency_key"
EVENT_FIELDS = ("system", "type", "idempotency_key", "payload")
# The database is away (restarting, failing over, refusing connections): the request is answered
# 503 and may be sent again. The web server
# closes the broken connection when the request ends; the engine when the group fails.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = (
    "the database is unavailable for a moment: send the request again after Retry-After seconds "
    "(an event sent twice is stored once: its idempotency key is checked)"
)


class IngestError(Exception):
    """Bad input, answered with `status` and a message that says exactly what is wrong."""

    def __init__(self, status: int, message: str, *, errors: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


class HandshakeReply(Exception):  # noqa: N818 (an answer, not an error)
    """The request is a sender's check of its webhook address (a vendor template's handshake):
    answered 200 with `text`, and not stored as an event."""

    def __init__(self, text: str, handshake: str) -> None:
        super().__init__(handshake)
        self.text = text
        self.handshake = handshake


def _handshake_reply(
    system: System, *, method: str, payload: Any, headers: Mapping[str, str], query: Mapping[str, str]
) -> None:
    """Raise HandshakeReply when the request is one its vendor template declares."""
    template = vendor_template(system.vendor_template) if system.vendor_template else None
    for handshake in template.handshakes if template else ():
        text = handshake.reply_to(method=method, payload=payload, headers=headers, query=query)
        if text is not None:
            raise HandshakeReply(text, handshake.name)


def webhook_get(*, slug: str, headers: Mapping[str, str], query: Mapping[str, str]) -> None:
    """A GET to a webhook address: a handshake of the system's vendor template (raises
    HandshakeReply), else refused with a 405 that says webhooks are POSTed."""
    refused = IngestError(405, "webhooks are sent with POST, not GET")
    try:
        system = system_by_slug(slug)
    except IngestError:
        raise refused from None
    _handshake_reply(system, method="GET", payload=None, headers=headers, query=query)
    raise refused


@dataclass
class IncomingEvent:
    system: System
    event_type: str
    idempotency_key: str
    payload: Any
    origin: str = Event.Origin.WEBHOOK
    # None: every subscribed real-time flow; a list: exactly these (a scheduled flow's poll).
    subscriptions: list[Subscription] | None = None


@dataclass
class IngestResult:
    event_id: str
    duplicate: bool
    deliveries: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "duplicate": self.duplicate, "deliveries": self.deliveries}


_systems_lock = threading.Lock()
_systems: dict[str, tuple[float, System]] = {}


def system_by_slug(slug: str) -> System:
    """The system for a webhook URL, cached for two seconds per process (ingest is the hot path)."""
    now = time.monotonic()
    cached = _systems.get(slug)
    if cached and cached[0] > now:
        return cached[1]
    try:
        system = System.objects.get(slug=slug)
    except System.DoesNotExist:
        raise IngestError(404, f"unknown system {slug!r}: no system is registered with that slug") from None
    with _systems_lock:
        _systems[slug] = (now + 2.0, system)
    return system


def cached_system(slug: str) -> System | None:
    """The system for a webhook URL if this process read it within the last two seconds."""
    cached = _systems.get(slug)
    return cached[1] if cached and cached[0] > time.monotonic() else None


def forget_systems() -> None:
    with _systems_lock:
        _systems.clear()


def read_field(payload: Any, headers: Mapping[str, str], where: str) -> Any:
    """Read a configured location: a dotted path into the payload, or "header:<Name>"."""
    if where.startswith("header:"):
        return headers.get(where.removeprefix("header:").strip())
    return get_path(payload, where)


def parse_json(body: bytes) -> Any:
    """Read a request body with the strict JSON reader; a refusal is a 400 that says why."""
    try:
        return strictjson.loads(body)
    except strictjson.JSONInputError as exc:
        raise IngestError(400, exc.message) from None


def webhook_receive(*, slug: str, body: bytes, headers: Mapping[str, str]) -> IngestResult:
    """A vendor's webhook: check the signature over the raw body, then ingest."""
    return events_store([webhook_event(system_by_slug(slug), body=body, headers=headers)])[0]


def webhook_event(system: System, *, body: bytes, headers: Mapping[str, str]) -> IncomingEvent:
    """The event a webhook carries, once its signature and body are checked; an IngestError says
    what is wrong. Queries the database only when the system's signing secret is unreadable."""
    if len(body) > settings.HUB_MAX_WEBHOOK_BYTES:
        raise IngestError(413, f"body is {len(body)} bytes; the limit is {settings.HUB_MAX_WEBHOOK_BYTES}")
    if system.signature_scheme != SignatureScheme.NONE and is_unreadable(system.webhook_secret):
        # Not the sender's fault, and it will pass once the key is back: a 503 the vendor retries.
        flows_pause_for_unreadable_secrets(system)
        raise IngestError(
            503,
            f"the hub cannot check this webhook's signature: the signing secret of {system.name} cannot be "
            "decrypted with the hub's current encryption keys; send it again later",
        )
    try:
        verify_signature(system, body, headers)
    except SignatureError as exc:
        raise IngestError(401, str(exc)) from None
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise IngestError(400, f"expected a JSON object, got {type(payload).__name__}")
    if system.vendor_template:
        _handshake_reply(system, method="POST", payload=payload, headers=headers, query={})
    event_type = read_field(payload, headers, system.event_type_path)
    if event_type in (None, ""):
        raise IngestError(400, f"missing event type: expected it at {system.event_type_path!r}")
    if system.idempotency_key_path:
        key = read_field(payload, headers, system.idempotency_key_path)
        if key in (None, ""):
            raise IngestError(400, f"missing idempotency key: expected it at {system.idempotency_key_path!r}")
    else:
        key = "sha256:" + hashlib.sha256(body).hexdigest()
    for name, value, limit in (("event type", event_type, 200), ("idempotency key", key, 300)):
        if len(str(value)) > limit:
            raise IngestError(400, f"{name} is {len(str(value))} characters long; the limit is {limit}")
    return IncomingEvent(system, str(event_type), str(key), payload, origin=Event.Origin.WEBHOOK)


def events_publish(*, body: bytes, systems_allowed: Collection[str] | None = None) -> dict[str, Any]:
    """The publish API: one event, or {"events": [...]} up to the batch limit, all or nothing.

    `systems_allowed`: the slugs the caller may publish for (None: any system)."""
    if len(body) > settings.HUB_MAX_BATCH_BYTES:
        raise IngestError(413, f"body too large; the limit is {settings.HUB_MAX_BATCH_BYTES} bytes")
    raw_events, batch = _published_events(parse_json(body))
    slugs = {str(e.get("system")) for e in raw_events if isinstance(e, dict)}
    systems = {system.slug: system for system in System.objects.filter(slug__in=slugs)}
    _refuse_problems(raw_events, systems, batch=batch)
    if systems_allowed is not None:
        _refuse_unbound(raw_events, set(systems_allowed))
    results = events_store(
        [
            IncomingEvent(
                systems[raw["system"]],
                str(raw["type"]),
                str(raw["idempotency_key"]),
                raw["payload"],
                origin=Event.Origin.API,
            )
            for raw in raw_events
        ]
    )
    if not batch:
        return results[0].as_dict()
    duplicates = sum(1 for r in results if r.duplicate)
    return {
        "results": [r.as_dict() for r in results],
        "accepted": len(results) - duplicates,
        "duplicates": duplicates,
    }


def _refuse_unbound(raw_events: list, allowed: set[str]) -> None:
    """403 naming the systems outside the caller's binding (the events are valid by now)."""
    refused = sorted({str(raw["system"]) for raw in raw_events} - allowed)
    if not refused:
        return
    named = ("system " if len(refused) == 1 else "systems ") + ", ".join(repr(slug) for slug in refused)
    bound = ", ".join(sorted(allowed)) or "none"
    raise IngestError(
        403,
        f"not allowed to publish for {named}: this API token may publish only for the systems it is "
        f"bound to ({bound}); an admin can make a token for more systems on the Users page",
    )


def _refuse_problems(raw_events: list, systems: dict[str, System], *, batch: bool) -> None:
    """Refuse the whole request when any event is wrong, naming each one."""
    problems = {}
    for index, raw in enumerate(raw_events):
        if problem := _published_event_problem(raw, systems):
            problems[f"events[{index}]" if batch else "event"] = problem
    if not problems:
        return
    if not batch and problems["event"].startswith("unknown system"):
        raise IngestError(404, problems["event"])
    raise IngestError(400, "; ".join(f"{k}: {v}" for k, v in problems.items()), errors=problems)


def _published_events(data: Any) -> tuple[list, bool]:
    """(the events, whether they came as a batch) from a publish request's JSON."""
    if not isinstance(data, dict):
        raise IngestError(400, 'expected a JSON object: one event, or {"events": [...]}')
    if "events" not in data:
        return [data], False
    raw_events = data["events"]
    if not isinstance(raw_events, list):
        raise IngestError(400, "events must be a list")
    if not raw_events:
        raise IngestError(400, "events is empty: send at least one event")
    if len(raw_events) > settings.HUB_MAX_BATCH_EVENTS:
        raise IngestError(
            413, f"{len(raw_events)} events in one request; the limit is {settings.HUB_MAX_BATCH_EVENTS}"
        )
    return raw_events, True


def _published_event_problem(raw: Any, systems: dict[str, System]) -> str:
    if not isinstance(raw, dict):
        return "each event must be a JSON object"
    missing = [name for name in EVENT_FIELDS if raw.get(name) in (None, "")]
    if missing:
        return "missing " + ", ".join(missing)
    if not isinstance(raw["payload"], dict):
        return "payload must be a JSON object"
    for name in ("system", "type", "idempotency_key"):
        if not isinstance(raw[name], str | int) or isinstance(raw[name], bool):
            return f"{name} must be a string"
    for name, limit in (("idempotency_key", 300), ("type", 200)):
        if len(str(raw[name])) > limit:
            return f"{name} is longer than {limit} characters"
    if raw["system"] not in systems:
        return f"unknown system {raw['system']!r}"
    return ""


def events_store(items: list[IncomingEvent]) -> list[IngestResult]:
    """Store events and their deliveries in one transaction; repeats of a stored key are duplicates."""
    try:
        # No look-up of known keys first: the unique constraint catches a repeat (rare), and then
        # the whole group is stored again with the look-up.
        results = _store(items, look_up_known=False)
    except IntegrityError as exc:
        if not _is_repeated_key(exc):
            raise
        # A repeat, or another request stored one of these keys between our look-up and our
        # insert: this time the look-up sees it, so it is reported as a duplicate.
        results = _store(items, look_up_known=True)
    if any(r.deliveries for r in results):
        # Robust: the events are stored once this runs, so a failed wake-up (broker or cache
        # away) must not turn their 202 into an error; the minutely drain picks them up.
        transaction.on_commit(kick_workers, robust=True)
    return results


def _is_repeated_key(exc: IntegrityError) -> bool:
    """Whether the violation is the idempotency key's unique constraint, and nothing else."""
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:  # PostgreSQL names the constraint
        return diag.constraint_name == IDEMPOTENCY_CONSTRAINT
    text = str(exc)  # SQLite names the columns
    return "UNIQUE constraint failed" in text and "idempotency_key" in text


def _store(items: list[IncomingEvent], *, look_up_known: bool) -> list[IngestResult]:
    now = clock.now()
    with transaction.atomic():
        existing = _existing_events(items) if look_up_known else {}
        results: list[IngestResult] = []
        new_events: list[Event] = []
        new_deliveries: list[Delivery] = []
        seen_in_batch: dict[tuple[int, str, str], str] = {}
        duplicate_ids: list[str] = []
        tally = IngestTally(now)
        drift = DriftCheck(now)
        for item in items:
            key = (item.system.pk, item.origin, item.idempotency_key)
            known = existing.get(key) or seen_in_batch.get(key)
            if known:
                results.append(IngestResult(event_id=str(known), duplicate=True))
                duplicate_ids.append(known)
                tally.duplicate(item.system.pk)
                continue
            record = record_of(item.payload, item.system.record_path, item.origin)
            event = Event(
                system=item.system,
                event_type=item.event_type,
                idempotency_key=item.idempotency_key,
                payload=item.payload,
                origin=item.origin,
                received_at=now,
            )
            subs = item.subscriptions if item.subscriptions is not None else subscriptions_for(item.system.pk)
            matched = [sub for sub in subs if sub.matches(item.event_type)]
            deliveries = [_delivery_for(event, sub, record, now) for sub in matched]
            if matched:
                decisions = drift.decide(item.system, record, matched)
                for delivery in deliveries:
                    if delivery.status == DeliveryStatus.PENDING and delivery.flow_id in decisions:
                        drift.apply(delivery, decisions[delivery.flow_id])
            event.record_id = _record_id(record, subs)
            seen_in_batch[key] = str(event.id)
            new_events.append(event)
            new_deliveries.extend(deliveries)
            tally.stored(item.system.pk, deliveries)
            live = sum(1 for d in deliveries if d.status == DeliveryStatus.PENDING)
            results.append(IngestResult(event_id=str(event.id), duplicate=False, deliveries=live))
        if new_events:
            insert_rows(Event, new_events)
        if new_deliveries and drift.holds_deliveries:
            Delivery.objects.bulk_create(new_deliveries)  # in order, and with the ids the holds need
        elif new_deliveries:
            insert_rows(Delivery, new_deliveries)
        drift.save()
        if duplicate_ids:
            Event.objects.filter(pk__in=duplicate_ids).update(duplicates_seen=F("duplicates_seen") + 1)
        tally.save()  # last, so the rows it adds to stay locked only until the commit
    return results


def _existing_events(items: list[IncomingEvent]) -> dict[tuple[int, str, str], Any]:
    """Stored events with these keys, by (system, origin, key): a key is unique per system and
    channel, so a published key never matches a webhook's."""
    by_channel: dict[tuple[int, str], list[str]] = {}
    for item in items:
        by_channel.setdefault((item.system.pk, item.origin), []).append(item.idempotency_key)
    found: dict[tuple[int, str, str], Any] = {}
    for (system_id, origin), keys in by_channel.items():
        rows = Event.objects.filter(system_id=system_id, origin=origin, idempotency_key__in=keys).values_list(
            "idempotency_key", "id"
        )
        found.update({(system_id, origin, key): event_id for key, event_id in rows})
    return found


def _record_id(record: Any, subs: list[Subscription]) -> str:
    paths = [s.id_path for s in subs] or ["id"]
    for path in paths:
        value = get_path(record, path)
        if value not in (None, ""):
            return str(value)[:300]
    return ""


def _delivery_for(event: Event, sub: Subscription, record: Any, now) -> Delivery:
    record_id = get_path(record, sub.id_path)
    # No source id: nothing to order by, so each event is its own record.
    record_key = str(record_id)[:300] if record_id not in (None, "") else f"event:{event.id}"
    delivery = Delivery(
        event=event, flow_id=sub.flow_id, record_key=record_key, next_attempt_at=now, created_at=now
    )
    if not sub.accepts(record):
        delivery.status = DeliveryStatus.SKIPPED
        delivery.finished_at = now
        delivery.last_error = f"filtered out: the event does not match “{describe_condition(sub.filter)}”"
    return delivery
