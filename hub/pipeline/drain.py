"""Draining the queue: claim a batch, attempt each delivery, record the outcomes; repeat."""

import logging
import os
import queue
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Min

from hub.metrics.recording import worker_heartbeat
from hub.models import Delivery, DeliveryStatus
from hub.pipeline import clock
from hub.pipeline.attempt import FlowCache, Outcome, delivery_attempt
from hub.pipeline.claim import deliveries_claim, leases_release, leases_renew
from hub.pipeline.concurrency import call_windows
from hub.pipeline.dispatch import (
    ask_for_help,
    become_lingerer,
    drain_started,
    engine_is_running,
    engine_running,
    still_lingering,
    stop_lingering,
    stop_requested,
    wait_for_work,
    wait_unless_stopped,
    work_arrived,
)
from hub.pipeline.outcomes import outcomes_record, worker_name

log = logging.getLogger("hub.delivery")


def close_old_connections_now() -> None:
    """Drop this thread's database connection if it broke, so the next query opens a fresh one."""
    connection.close_if_unusable_or_obsolete()


def deliveries_process_batch(*, limit: int | None = None, deadline: float | None = None) -> int:
    """Claim one batch and carry it out, many calls at once; returns how many were claimed.

    Asked to stop midway, or past `deadline` (a time.monotonic() value), it starts no more calls,
    hands the deliveries it has not tried back to the queue at once (instead of leaving them to
    wait for their lease to expire, or being killed mid-call by the task queue), and records the
    outcomes of the calls already under way.
    """
    run = DeliveryRun(deadline=deadline)
    claimed = run.claim(limit or settings.HUB_CLAIM_BATCH)
    while run.busy():
        run.step()
    run.finish()
    return claimed


_calls: ThreadPoolExecutor | None = None
_calls_pid = 0


def call_pool() -> ThreadPoolExecutor:
    """This process's threads for calls to targets (made after a fork, never inherited)."""
    global _calls, _calls_pid
    if _calls is None or _calls_pid != os.getpid():
        _calls = ThreadPoolExecutor(max_workers=settings.HUB_MAX_IN_FLIGHT, thread_name_prefix="hub-call")
        _calls_pid = os.getpid()
    return _calls


def _attempt_on_call_thread(delivery: Delivery, flows: FlowCache) -> Outcome:
    try:
        return delivery_attempt(delivery=delivery, flows=flows)
    finally:
        # A call thread lives on: a connection the breaker or the pace broke must not stay broken.
        close_old_connections_now()


def _result(future: Future) -> Outcome:
    return future.result()  # delivery_attempt never raises


class ThreadCalls:
    """Each try on one of this process's call threads, whole."""

    def start(self, delivery: Delivery, flows: FlowCache) -> tuple[Future, Callable[[Future], Outcome]]:
        """The call under way, and how to turn it into its outcome once done (on the drain's thread)."""
        return call_pool().submit(_attempt_on_call_thread, delivery, flows), _result


# How long a run keeps using the flows and mappings it loaded (a mapping saved meanwhile is seen
# after at most this long, in every process).
FLOWS_FRESH_SECONDS = 2.0


class DeliveryRun:
    """Deliveries under way in this process: claimed in batches, up to HUB_MAX_IN_FLIGHT calls at
    once and per target at most its `calls_at_once`, topped up with new claims as calls finish,
    while this thread keeps every lease alive and writes outcomes as they come in.

    Order per record holds because no claim holds a delivery while an earlier one of the same
    record is unfinished (Delivery.objects.not_held): the later is claimable once the earlier's
    outcome is written."""

    # Outcomes are written at least this often while calls go on, and this soon once none does;
    # a record's next delivery waits for its previous outcome to be written.
    FLUSH_SECONDS = 0.25
    FLUSH_IDLE_SECONDS = 0.05
    FLUSH_OUTCOMES = 200
    # Claims within this long share loaded flows: a flow changed since is seen by the next claims
    # after (as ingest sees subscriptions), a paused one is not claimed for at all.
    FLOWS_FRESH_SECONDS = FLOWS_FRESH_SECONDS

    def __init__(self, *, deadline: float | None = None, calls=None) -> None:
        self.deadline = deadline
        self.calls = calls or ThreadCalls()  # or the engine's: calls on its event loop
        self.max_in_flight = getattr(self.calls, "max_in_flight", settings.HUB_MAX_IN_FLIGHT)
        self.waiting: deque[tuple[Delivery, FlowCache]] = deque()
        self.running: dict[Future, tuple[Delivery, FlowCache, Callable[[Future], Outcome]]] = {}
        self.per_target: Counter[int] = Counter()
        self.ended: queue.SimpleQueue[Future] = queue.SimpleQueue()  # calls that ended, in order
        self.longest_call = 0.0
        self.abandoned_checked_at = float("-inf")  # deliveries whose worker died: looked for once a second
        self.lease_ends: dict = {}  # claim token -> when its lease runs out (monotonic)
        self.open: Counter = Counter()  # claim token -> its deliveries not yet finished here
        self.outcomes: list[Outcome] = []
        self.flows = FlowCache()
        self.flows_loaded_at = float("-inf")
        self.last_flush = time.monotonic()

    def room(self) -> int:
        """How many more deliveries this run can take on now."""
        return max(0, self.max_in_flight - len(self.running) - len(self.waiting))

    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def claim(self, limit: int) -> int:
        """Lease up to `limit` more deliveries to this run; returns how many it got."""
        abandoned_due = time.monotonic() - self.abandoned_checked_at >= 1.0
        token, batch = deliveries_claim(limit=limit, look_for_abandoned=abandoned_due)
        if abandoned_due:
            self.abandoned_checked_at = time.monotonic()
        if not batch:
            return 0
        if time.monotonic() - self.flows_loaded_at > self.FLOWS_FRESH_SECONDS:
            self.flows, self.flows_loaded_at = FlowCache(), time.monotonic()
        flows = self.flows
        flows.prepare(batch)
        self.lease_ends[token] = time.monotonic() + settings.HUB_LEASE_SECONDS
        self.open[token] = len(batch)
        self.waiting.extend((delivery, flows) for delivery in batch)
        return len(batch)

    def step(self, wait_seconds: float = 0.25) -> None:
        """Start what may start, keep the leases, take in what finished (waiting up to
        `wait_seconds` for a call to end), and write outcomes when due."""
        if self.waiting and self.stopping():
            self.hand_back()
        self.start_calls()
        self.keep_leases()
        self.collect(wait_seconds)
        # Outcomes are written often, so progress is visible and little is redone if this worker
        # dies: what it did not write is still in flight under its lease, and the next worker
        # looks before creating again (or, with no lookup, asks an operator).
        if self.outcomes and (
            time.monotonic() - self.last_flush > self.FLUSH_SECONDS
            or len(self.outcomes) >= self.FLUSH_OUTCOMES
        ):
            self.flush()

    def flush_due_in(self) -> float | None:
        """With no call under way: seconds until the outcomes held should be written (0: now;
        None: none held). Written together when they come close together: a transaction each
        cost more than the calls."""
        if not self.outcomes:
            return None
        return max(0.0, self.last_flush + self.FLUSH_IDLE_SECONDS - time.monotonic())

    def finish(self) -> None:
        """Start nothing more: hand back what waits, wait for the calls under way, write all."""
        self.hand_back()
        while self.running:
            self.collect(0.25)
            self.keep_leases()
        self.flush()

    def stopping(self) -> bool:
        return stop_requested() or (self.deadline is not None and time.monotonic() > self.deadline)

    def hand_back(self) -> None:
        by_token: dict = {}
        for delivery, _ in self.waiting:
            by_token.setdefault(delivery.lease_token, []).append(delivery.pk)
        for token, ids in by_token.items():
            leases_release(token=token, delivery_ids=ids)
            self._closed(token, len(ids))
        self.waiting.clear()

    def _closed(self, token, count: int) -> None:
        self.open[token] -= count
        if self.open[token] <= 0:
            del self.open[token]
            self.lease_ends.pop(token, None)

    def start_calls(self) -> None:
        # Calls run on other threads only where those threads' database connections see what
        # this one sees: not inside a transaction (a caller's, or a test's).
        inline = self.max_in_flight == 1 or connection.in_atomic_block
        held_back: list[tuple[Delivery, FlowCache]] = []
        while self.waiting and len(self.running) < self.max_in_flight:
            delivery, flows = self.waiting.popleft()
            target = flows.flow(delivery.flow_id).target_system
            if self.per_target[target.pk] >= call_windows.allowed(target):
                held_back.append((delivery, flows))
                continue
            self.keep_leases(starting=target)
            if inline:
                self._finished(delivery, flows, delivery_attempt(delivery=delivery, flows=flows))
                continue
            self.per_target[target.pk] += 1
            future, finish = self.calls.start(delivery, flows)
            self.running[future] = (delivery, flows, finish)
            future.add_done_callback(self.ended.put)
        self.waiting.extendleft(reversed(held_back))

    def keep_leases(self, starting=None) -> None:
        """Every lease must outlast the calls under way and about to start: a worker that lost its
        lease mid-call would see the delivery taken by another while its own request may still
        create the record. Deliveries waiting their turn keep theirs too. The longest call is
        that of the slowest target this run has called (it only grows, which errs on the safe side)."""
        if starting is not None:
            self.longest_call = max(self.longest_call, call_seconds(starting))
        for token, ends in list(self.lease_ends.items()):
            if time.monotonic() + self.longest_call + 2.0 > ends:
                seconds = max(settings.HUB_LEASE_SECONDS, self.longest_call * 2)
                leases_renew(token=token, seconds=seconds)
                self.lease_ends[token] = time.monotonic() + seconds

    def collect(self, wait_seconds: float) -> None:
        """Take in the calls that ended, waiting up to `wait_seconds` for the first. Calls report
        to a queue as they end, so taking one in costs the same with 5 or 500 under way."""
        if not self.running:
            return
        try:
            ended = [self.ended.get(timeout=wait_seconds)]
        except queue.Empty:
            return
        while True:
            try:
                ended.append(self.ended.get_nowait())
            except queue.Empty:
                break
        for future in ended:
            delivery, flows, finish = self.running.pop(future)
            self.per_target[flows.flow(delivery.flow_id).target_system_id] -= 1
            self._finished(delivery, flows, finish(future))

    def _finished(self, delivery: Delivery, flows: FlowCache, outcome: Outcome) -> None:
        outcome.token = delivery.lease_token
        if outcome.deferred_until is None:
            target = flows.flow(delivery.flow_id).target_system
            call_windows.record(target, succeeded=outcome.succeeded, error_class=outcome.error_class)
        self.outcomes.append(outcome)

    def flush(self) -> None:
        if not self.outcomes:
            return
        outcomes, self.outcomes = self.outcomes, []
        try:
            outcomes_record_durably(outcomes, flows=self.flows)
        except Exception:
            self.outcomes = outcomes + self.outcomes  # written by the next flush, or lost with the lease
            raise
        for outcome in outcomes:
            self._closed(outcome.token, 1)
        self.last_flush = time.monotonic()


def outcomes_record_durably(outcomes: list[Outcome], *, flows: FlowCache, patience: float = 30.0) -> None:
    """Write outcomes, waiting out a database that went away for a moment: an outcome lost here
    would turn a finished call into an ambiguous one for the next worker."""
    waited, pause = 0.0, 0.25
    while True:
        try:
            outcomes_record(outcomes, flows=flows)
            return
        except (OperationalError, InterfaceError):
            if waited >= patience:
                raise
            log.warning("could not write %d outcomes; the database may be restarting", len(outcomes))
            close_old_connections_now()
            time.sleep(pause)
            waited, pause = waited + pause, min(pause * 2, 5.0)


def call_seconds(system) -> float:
    """The longest one delivery's calls to `system` can take: a lookup and a write."""
    return 2 * (system.connect_timeout + system.read_timeout) + 1.0


def next_due_in_seconds() -> float | None:
    """Seconds until a delivery may be claimed: a waiting one comes due, or an in-flight lease
    runs out (None: nothing will). Deliveries queued behind another of the same record wait for
    it, not for their own time."""
    claimable = Delivery.objects.due(clock.now() + timedelta(days=3650))
    moments = [
        claimable.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING)).aggregate(
            at=Min("next_attempt_at")
        )["at"],
        claimable.filter(status=DeliveryStatus.IN_FLIGHT).aggregate(at=Min("lease_expires_at"))["at"],
    ]
    moments = [m for m in moments if m is not None]
    if not moments:
        return None
    return max(0.0, (min(moments) - clock.now()).total_seconds())


# The least time between two claims of one drain while calls are under way, and while none is
# (see deliveries_drain): under load a claim takes what arrived meanwhile; at a steady trickle an
# event waits at most a few milliseconds for its claim.
CLAIM_SPACING_SECONDS = 0.02
IDLE_CLAIM_SPACING_SECONDS = 0.01


def deliveries_drain(
    *,
    max_seconds: float | None = None,
    linger: float | None = None,
    poll: float = 0.05,
    calls=None,
    in_engine: bool = False,
) -> int:
    """Carry out deliveries until the queue is dry, then leave, unless this drain becomes the one
    lingerer: it keeps polling for `linger` seconds after the last work, and stays (polling less
    often) while a retry or an expired lease is due within the next minute. New claims top the
    run up as calls finish, so a slow call never holds the next ones back. A stop request or the
    deadline ends it: calls under way finish and are recorded, the rest go back to the queue.

    The engine's drain (`in_engine`, with `calls` on its event loop) says it is there each turn and
    asks no task worker for help; a task worker's drain leaves new work to a running engine."""
    drain_started()
    max_seconds = settings.HUB_DRAIN_SECONDS if max_seconds is None else max_seconds
    linger = settings.HUB_DRAIN_LINGER_SECONDS if linger is None else linger
    deadline = time.monotonic() + max_seconds
    run = DeliveryRun(deadline=deadline, calls=calls)
    # A claim takes at least a quarter of what the run can hold, so a busy run does not pay a
    # claim per finished call; an empty claim is not repeated within `poll`.
    smallest_claim = max(1, min(settings.HUB_CLAIM_BATCH, run.max_in_flight) // 4)
    last_work = time.monotonic()
    last_claim_at = float("-inf")
    next_poll_at = 0.0
    claim_wanted = True
    engine_checked_at = 0.0
    done = 0
    lingering = False
    outages = 0
    try:
        while not run.stopping():
            try:
                if not in_engine and time.monotonic() - engine_checked_at >= 1.0:
                    # A task worker's drain leaves the work to a running engine, whose calls
                    # cost less, and stays only to finish what it has under way.
                    engine_checked_at = time.monotonic()
                    if engine_is_running():
                        break
                worker_heartbeat(worker_name())
                if in_engine:
                    engine_running()
                now = time.monotonic()
                if work_arrived() or now >= next_poll_at:
                    claim_wanted = True
                room = min(run.room(), settings.HUB_CLAIM_BATCH)
                # Claims come at most every CLAIM_SPACING_SECONDS: one claim of the work that
                # arrived meanwhile costs less than a claim per event.
                spacing = CLAIM_SPACING_SECONDS if run.busy() else IDLE_CLAIM_SPACING_SECONDS
                if (
                    claim_wanted
                    and now - last_claim_at >= spacing
                    and room >= (smallest_claim if run.busy() else 1)
                ):
                    claimed = run.claim(room)
                    last_claim_at, claim_wanted = now, claimed >= room  # a full claim: more may wait
                    done += claimed
                    if claimed:
                        last_work = now
                        if claimed >= settings.HUB_CLAIM_BATCH and not in_engine:
                            ask_for_help()
                    else:
                        next_poll_at = now + poll
                outages = 0
                if run.busy():
                    run.step(min(poll, 0.02))
                    last_work = time.monotonic()
                    continue
                flush_in = run.flush_due_in()
                if flush_in == 0:
                    run.flush()
                if claim_wanted or flush_in:
                    # Work waits for the next claim, or outcomes for their write: soon.
                    soonest = last_claim_at + IDLE_CLAIM_SPACING_SECONDS - time.monotonic()
                    wait_for_work(min(x for x in (max(soonest, 0.001), flush_in or poll, poll)))
                    continue
                if not lingering:
                    lingering = become_lingerer(worker_name())
                    if not lingering:
                        break  # another drain is polling already
                still_lingering()
                idle_for = time.monotonic() - last_work
                if not _linger(idle_for=idle_for, linger=linger, poll=poll, deadline=deadline):
                    break
                claim_wanted = True
            except (OperationalError, InterfaceError) as exc:
                # The database went away (a restart, a failover): drop the broken connection,
                # wait a little longer each time, and carry on with a fresh one. What this drain
                # had claimed stays leased and is claimed again when its lease runs out.
                outages += 1
                pause = min(0.25 * 2**outages, 5.0, max(0.0, deadline - time.monotonic()))
                log.warning("the database is unavailable (%s); draining again in %.1fs", exc, pause)
                close_old_connections_now()
                wait_unless_stopped(pause)
        run.finish()
    finally:
        if lingering:
            stop_lingering()
    return done


def _linger(*, idle_for: float, linger: float, poll: float, deadline: float) -> bool:
    """The lingerer's wait before it looks again; False when there is no reason to stay."""
    if idle_for < linger:
        wait_for_work(poll)
        return True
    due_in = next_due_in_seconds()
    if due_in is None or due_in > 60:
        return False
    wait_for_work(min(max(due_in, poll), 0.25, deadline - time.monotonic()))
    return True
