"""Scheduled consistency: page through a source model from the flow's cursor.

The source is asked for records changed at or after the cursor (inclusive), so records that
share the cursor's value are never missed; re-read records are dropped by their idempotency
key (flow, record id, cursor value, content hash), so none is processed twice. The cursor
moves only in the transaction that stores the page's events, so a poll may stop after any page
(an error, or the worker being stopped) and the next one carries on from there.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dateutil import parser as dateparser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.paths import get_path
from connectors.base import ConnectorError
from connectors.crypto import is_unreadable
from connectors.registry import connector_for
from hub.models import Cursor, Event, Flow, FlowState, Trigger
from hub.pipeline import clock
from hub.pipeline.dispatch import stop_requested
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.pipeline.outcomes import flows_pause_for_unreadable_secrets
from hub.pipeline.subscriptions import Subscription, subscription_of

log = logging.getLogger("hub.polling")
POLL_LEASE = timedelta(minutes=10)
MAX_PAGES_PER_RUN = 1000


@dataclass
class PollResult:
    pages: int = 0
    records: int = 0
    new_events: int = 0
    skipped: str = ""
    error: str = ""

    def summary(self) -> str:
        if self.skipped:
            return self.skipped
        text = f"{self.records} records read in {self.pages} pages, {self.new_events} new"
        return f"{text}; stopped: {self.error}" if self.error else text


def cursor_order(value: Any) -> tuple:
    """A sort key that orders timestamps by time, numbers by size and anything else as text."""
    if isinstance(value, bool) or value is None:
        return (2, str(value))
    if isinstance(value, int | float):
        return (0, float(value))
    text = str(value)
    try:
        return (0, float(text))
    except ValueError:
        pass
    try:
        moment: datetime = dateparser.isoparse(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.UTC)
        return (0, moment.timestamp())
    except ValueError:
        return (1, text)


def _poll_key(flow: Flow, record: dict, record_id: str, cursor_value: Any) -> str:
    content = hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"poll:{flow.pk}:{record_id}:{cursor_value}:{content}"


def flow_poll(*, flow: Flow) -> PollResult:
    """Read everything new since the cursor; safe to call concurrently (one poll runs at a time)."""
    result = PollResult()
    if flow.trigger != Trigger.SCHEDULED or flow.state != FlowState.ACTIVE:
        result.skipped = (
            f"not polled: flow is {flow.get_state_display().lower()} / {flow.get_trigger_display()}"
        )
        return result
    if is_unreadable(flow.source_system.credentials):
        result.error = flow.source_system.unreadable_problem()
        flows_pause_for_unreadable_secrets(flow.source_system)
        return result
    Cursor.objects.get_or_create(flow=flow)
    now = clock.now()
    claimed = (
        Cursor.objects.filter(pk=flow.pk)
        .filter(Q(polling_until__isnull=True) | Q(polling_until__lt=now))
        .update(polling_until=now + POLL_LEASE)
    )
    if not claimed:
        result.skipped = "not polled: another poll of this flow is running"
        return result
    try:
        _poll_pages(flow, result)
    except ConnectorError as exc:
        result.error = f"{exc.error_class}: {exc.message}"
        log.warning("poll of flow %s stopped: %s", flow.pk, result.error)
    finally:
        Cursor.objects.filter(pk=flow.pk).update(
            polling_until=None, last_polled_at=clock.now(), last_result=result.summary()[:300]
        )
    return result


def _poll_pages(flow: Flow, result: PollResult) -> None:
    connector = connector_for(flow.source_system)
    source = _Source.of(flow)
    since = Cursor.objects.get(pk=flow.pk).value or None
    page_token = None
    while result.pages < MAX_PAGES_PER_RUN:
        if stop_requested():
            result.error = "the worker is stopping; the next poll carries on from here"
            return
        page = connector.fetch(
            resource=flow.source_model.resource_path,
            since=since,
            page_token=page_token,
            limit=flow.poll_page_size,
        )
        result.pages += 1
        result.records += len(page.records)
        incoming, newest = source.events(page.records)
        result.new_events += _store_page(flow, incoming, newest)
        if not page.next_token or not page.records:
            break
        page_token = page.next_token


@dataclass
class _Source:
    """How a flow's source records become events: where their id and cursor value are."""

    flow: Flow
    cursor_field: str
    id_path: str
    event_type: str
    subscription: Subscription

    @classmethod
    def of(cls, flow: Flow) -> "_Source":
        model = flow.source_model
        return cls(
            flow=flow,
            cursor_field=model.cursor_field or "updated_at",
            id_path=model.id_path or "id",
            event_type=flow.event_type
            if flow.event_type not in ("", "*")
            else f"{model.name.lower()}.changed",
            subscription=subscription_of(flow),
        )

    def events(self, records: list) -> tuple[list[IncomingEvent], Any]:
        """One event per usable record, and the newest cursor value among them (None: none)."""
        incoming: list[IncomingEvent] = []
        newest = None
        for record in records:
            if not isinstance(record, dict):
                continue
            value = get_path(record, self.cursor_field)
            record_id = get_path(record, self.id_path)
            if record_id in (None, ""):
                continue
            # A record without its cursor field is stored all the same (it does not move the
            # cursor): the drift check holds it and tells, where skipping it would lose it unseen.
            if value is not None and (newest is None or cursor_order(value) > cursor_order(newest)):
                newest = value
            incoming.append(
                IncomingEvent(
                    system=self.flow.source_system,
                    event_type=self.event_type,
                    idempotency_key=_poll_key(self.flow, record, str(record_id), value),
                    payload=record,
                    origin=Event.Origin.POLL,
                    subscriptions=[self.subscription],
                )
            )
        return incoming, newest


def _store_page(flow: Flow, incoming: list[IncomingEvent], newest: Any) -> int:
    """Store a page's events and move the cursor forward, in one transaction; returns how many
    events were new."""
    with transaction.atomic():
        stored = events_store(incoming) if incoming else []
        cursor = Cursor.objects.select_for_update().get(pk=flow.pk)
        if newest is not None and (not cursor.value or cursor_order(newest) > cursor_order(cursor.value)):
            cursor.value = str(newest)
            cursor.save(update_fields=["value"])
    return sum(1 for r in stored if not r.duplicate)
