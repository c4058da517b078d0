"""Sync history: every event, where it went and how each attempt ended.

One search answers "what happened to order 1042?": events filtered by flow, system, delivery
status, time range, source or target record id and free text in the payload, newest first, a
page at a time (keyset pagination: a page costs the same however deep it is, and "older" says
when there is more). Free text is `UPPER(payload::text) LIKE UPPER('%…%')`, served on PostgreSQL
by the trigram GIN index of migration 0004; SQLite scans the payload text.
"""

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import batched
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils.dateparse import parse_datetime

from hub.models import Attempt, Delivery, Event, Flow

PAGE_SIZE = 50
MIN_TEXT = 3  # a trigram index needs three characters to narrow anything down


@dataclass(frozen=True)
class HistoryFilters:
    flow_id: int | None = None
    system_id: int | None = None  # the source of the event or the target of one of its flows
    status: str = ""  # a delivery status
    since: datetime | None = None
    until: datetime | None = None
    record: str = ""  # a source record id (the event's) or a target record id (a delivery's)
    text: str = ""  # free text in the payload: an order number, an email address


def within(queryset: QuerySet, field: str, since: datetime | None, until: datetime | None) -> QuerySet:
    """Rows whose `field` is in [since, until); either end may be open."""
    bounds = {f"{field}__gte": since, f"{field}__lt": until}
    return queryset.filter(**{lookup: value for lookup, value in bounds.items() if value})


def history_events(filters: HistoryFilters) -> QuerySet[Event]:
    """The events that match, unordered."""
    events = within(Event.objects.all(), "received_at", filters.since, filters.until)
    if filters.text:
        found = Q(payload_text__icontains=filters.text)
        if not filters.text.isascii():
            # SQLite keeps JSON as json.dumps wrote it, other letters as \u escapes, and its LIKE
            # ignores case in ASCII only: look for the escaped lower and upper case too.
            for variant in {filters.text.lower(), filters.text.upper()}:
                found |= Q(payload_text__icontains=json.dumps(variant)[1:-1])
        events = events.alias(payload_text=Cast("payload", TextField())).filter(found)
    if filters.record:
        # One IN over a UNION of two indexed lookups (event_record_idx, delivery_target_idx):
        # an OR of the two would make PostgreSQL scan every event.
        by_source = Event.objects.filter(record_id=filters.record).values("pk")
        by_target = Delivery.objects.filter(target_id=filters.record).values("event_id")
        events = events.filter(pk__in=by_source.union(by_target, all=True))
    if filters.system_id:
        targeting = list(Flow.objects.filter(target_system_id=filters.system_id).values_list("pk", flat=True))
        to_system = Delivery.objects.filter(event_id=OuterRef("pk"), flow_id__in=targeting)
        events = events.filter(Q(system_id=filters.system_id) | Q(Exists(to_system)))
    delivery_filter = {}
    if filters.flow_id:
        delivery_filter["flow_id"] = filters.flow_id
    if filters.status:
        delivery_filter["status"] = filters.status
    if delivery_filter:
        events = events.filter(Exists(Delivery.objects.filter(event_id=OuterRef("pk"), **delivery_filter)))
    return events


# --------------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------------


def cursor_encode(event: Event) -> str:
    raw = f"{event.received_at.isoformat()}|{event.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(token: str) -> tuple[datetime, UUID] | None:
    """The position a page ends at; None for a token that is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at_text, _, pk_text = raw.partition("|")
        at = parse_datetime(at_text)
        return (at, UUID(pk_text)) if at else None
    except ValueError:
        return None


@dataclass
class HistoryPage:
    events: list[Event]
    older: str = ""  # the cursor of the next (older) page; "" when this is the last
    at_start: bool = True


def delivery_rows() -> Prefetch:
    """An event's deliveries with their flow (and its systems), for a results row."""
    return Prefetch(
        "deliveries",
        queryset=Delivery.objects.select_related("flow__target_system").order_by("id"),
    )


def history_page_events(filters: HistoryFilters, *, after: str = "") -> QuerySet[Event]:
    """The matching events newest first, starting after the cursor `after` (unsliced)."""
    events = history_events(filters)
    position = cursor_decode(after) if after else None
    if position:
        at, pk = position
        # The first condition bounds the index scan; the second breaks ties inside one instant
        # (a batch of events shares its received_at).
        events = events.filter(received_at__lte=at).exclude(received_at=at, pk__gte=pk)
    return events.select_related("system").order_by("-received_at", "-pk")


def history_page(filters: HistoryFilters, *, after: str = "", size: int = PAGE_SIZE) -> HistoryPage:
    """One page of matching events, newest first, starting after the cursor `after`."""
    rows = list(history_page_events(filters, after=after).prefetch_related(delivery_rows())[: size + 1])
    page = HistoryPage(events=rows[:size], at_start=not (after and cursor_decode(after)))
    if len(rows) > size:
        page.older = cursor_encode(rows[size - 1])
    return page


# --------------------------------------------------------------------------------------------------
# One event, all of it
# --------------------------------------------------------------------------------------------------


def event_history(pk: UUID) -> Event | None:
    """An event with its system, every delivery (flow, systems, mapping), every attempt in order
    and any dead letter with who resolved it; a fixed number of queries."""
    return (
        Event.objects.select_related("system")
        .prefetch_related(
            Prefetch(
                "deliveries",
                queryset=Delivery.objects.select_related(
                    "flow__source_system", "flow__target_system", "flow__mapping"
                ).order_by("id"),
            ),
            Prefetch("deliveries__attempt_log", queryset=Attempt.objects.order_by("number")),
            "deliveries__dead_letters__resolved_by",
        )
        .filter(pk=pk)
        .first()
    )


# --------------------------------------------------------------------------------------------------
# Export rows
# --------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "event_id", "received_at", "source_system", "event_type", "record_id", "origin", "payload_purged",
    "flow", "target_system", "status", "attempts", "target_id", "mapping_version", "last_error_class",
    "last_error", "finished_at", "dead_letter", "resolved_by", "resolution_note", "payload",
)  # fmt: skip
EVENT_VALUES = {
    "event_id": "pk", "received_at": "received_at", "source_system": "system__name",
    "event_type": "event_type", "record_id": "record_id", "origin": "origin", "payload_purged": "purged_at",
    "payload": "payload",
}  # fmt: skip
DELIVERY_VALUES = {
    "id": "id", "event_id": "event_id", "flow": "flow__name", "target_system": "flow__target_system__name",
    "status": "status", "attempts": "attempts", "target_id": "target_id",
    "last_error_class": "last_error_class", "last_error": "last_error", "finished_at": "finished_at",
}  # fmt: skip
NO_DELIVERY = dict.fromkeys(EXPORT_COLUMNS[7:-1], "") | {"status": "no flow", "mapping_version": None}


def _deliveries_of(event_ids: list) -> dict[Any, list[dict[str, Any]]]:
    """The export columns of these events' deliveries, in plain dicts (no model instances: they
    hold references to each other that only the cyclic garbage collector frees, so memory would
    grow with the export)."""
    deliveries = list(
        Delivery.objects.filter(event_id__in=event_ids).order_by("id").values(*DELIVERY_VALUES.values())
    )
    ids = [d["id"] for d in deliveries]
    versions = dict(
        Attempt.objects.filter(delivery_id__in=ids)
        .order_by("number")
        .values_list("delivery_id", "mapping_version")
    )
    letters = {
        pk: {"dead_letter": resolution or "open", "resolved_by": by or "", "resolution_note": note}
        for pk, resolution, by, note in Delivery.objects.filter(id__in=ids, dead_letters__isnull=False)
        .order_by("dead_letters__id")
        .values_list(
            "id",
            "dead_letters__resolution",
            "dead_letters__resolved_by__username",
            "dead_letters__resolution_note",
        )
    }
    by_event: dict[Any, list[dict[str, Any]]] = {}
    for found in deliveries:
        row = {column: found[name] for column, name in DELIVERY_VALUES.items()}
        pk, finished = row.pop("id"), row["finished_at"]
        row["finished_at"] = finished.isoformat() if finished else ""
        row["mapping_version"] = versions.get(pk)
        row |= letters.get(pk, {"dead_letter": "", "resolved_by": "", "resolution_note": ""})
        by_event.setdefault(row.pop("event_id"), []).append(row)
    return by_event


def history_export_rows(filters: HistoryFilters, *, chunk_size: int = 500) -> Iterator[dict[str, Any]]:
    """One row per delivery (and one for an event no flow took), oldest first. Events are read
    with `.iterator(chunk_size=...)` and each chunk's deliveries in three queries, so memory stays
    flat however many rows there are."""
    events = (
        history_events(filters)
        .order_by("received_at", "pk")
        .values(*EVENT_VALUES.values())
        .iterator(chunk_size=chunk_size)
    )
    for chunk in batched(events, chunk_size):
        deliveries = _deliveries_of([event["pk"] for event in chunk])
        for event in chunk:
            head = {column: event[name] for column, name in EVENT_VALUES.items()}
            head["event_id"] = str(event["pk"])
            head["received_at"] = event["received_at"].isoformat()
            head["payload_purged"] = event["purged_at"] is not None
            for delivery in deliveries.get(event["pk"]) or [NO_DELIVERY]:
                yield head | delivery
