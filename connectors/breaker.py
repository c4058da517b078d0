"""A circuit breaker per target system, shared by every worker on every machine, so a target that
is down does not tie up the workers with timeouts, and gets a rest before it is tried again.

Closed: calls go through and their outcomes are counted over a sliding window; when at least
MIN_CALLS calls in the window got an answer or failed and FAILURE_RATE of them failed, it opens.
Open: no call until the cooldown ends; the pipeline holds the deliveries, using no attempts.
Half-open: the first worker to ask after the cooldown claims the one probe call (a conditional
update that must change exactly one row); every other call waits. The probe's failure opens the
breaker again for another cooldown; any answer closes it (a 4xx is an answer: the target is up).

The state is one row per system (connectors.models.Circuit) in the database every worker shares,
PostgreSQL or SQLite. The hot path stays off it: a process reads the row at most once every
REFRESH_SECONDS and adds up outcomes in memory, writing them at most once every FLUSH_SECONDS per
system, or at once when what it has seen would open the breaker. Only the transitions are written
straight away: opening, claiming the probe and the probe's answer.
"""

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from connectors.base import ErrorClass
from connectors.models import BreakerState, Circuit

# Failures that say the target is down or struggling. A 429 says it is up and busy: the rate
# limiter slows down for it (connectors.ratelimit.throttled), so it neither opens nor closes this.
TRIPPING = frozenset(
    {ErrorClass.UNREACHABLE, ErrorClass.TIMEOUT, ErrorClass.SERVER_ERROR, ErrorClass.OUTCOME_UNKNOWN}
)
WINDOW_SECONDS = 30
BUCKET_SECONDS = 5
# Enough calls that a target failing a quarter of them at random does not trip it by chance (the
# chance of 10 or more failures in 20 such calls is about 1%); retries handle those.
MIN_CALLS = 20
FAILURE_RATE = 0.5
COOLDOWN_SECONDS = 10.0
# How long a claimed probe may take before another worker may probe instead (its worker may have
# died, or held the delivery back for another reason and never called).
PROBE_SECONDS = 30.0
REFRESH_SECONDS = 1.0
FLUSH_SECONDS = 1.0


@dataclass
class Tally:
    """Outcomes counted over part of the window: answered (successes and 4xx), failed (TRIPPING)
    and rate limited."""

    answered: int = 0
    failed: int = 0
    limited: int = 0

    def add(self, error_class: ErrorClass | None) -> None:
        if error_class == ErrorClass.RATE_LIMITED:
            self.limited += 1
        elif error_class in TRIPPING:
            self.failed += 1
        else:
            self.answered += 1

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(self.answered + other.answered, self.failed + other.failed, self.limited + other.limited)

    @property
    def calls(self) -> int:
        """Calls that tell whether the target works (rate-limited ones do not)."""
        return self.answered + self.failed

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.calls if self.calls else None

    @property
    def trips(self) -> bool:
        return self.calls >= MIN_CALLS and self.failed >= FAILURE_RATE * self.calls


def window_add(window: dict[str, list[int]], tally: Tally, now: float) -> dict[str, list[int]]:
    """The window with `tally` counted in the current bucket and buckets past the window dropped."""
    kept = {start: counts for start, counts in window.items() if float(start) > now - WINDOW_SECONDS}
    start = str(int(now // BUCKET_SECONDS * BUCKET_SECONDS))
    counts = Tally(*kept.get(start, (0, 0, 0))) + tally
    kept[start] = [counts.answered, counts.failed, counts.limited]
    return kept


def window_total(window: dict[str, list[int]], now: float, seconds: float = WINDOW_SECONDS) -> Tally:
    total = Tally()
    for start, counts in window.items():
        if float(start) > now - seconds:
            total += Tally(*counts)
    return total


@dataclass
class Seen:
    """A process's copy of one breaker's row, read at `read_at`; `probe` is the token of the probe
    this process holds, if any."""

    state: str = BreakerState.CLOSED
    open_until: float = 0.0
    probe_until: float = 0.0
    window: Tally | None = None
    read_at: float = 0.0
    probe: str = ""

    @classmethod
    def of(cls, row: Circuit | None, now: float, probe: str = "") -> "Seen":
        if row is None:
            return cls(window=Tally(), read_at=now)
        return cls(
            state=row.state,
            open_until=row.open_until,
            probe_until=row.probe_until,
            window=window_total(row.window, now),
            read_at=now,
            probe=probe if probe and row.probe_token == probe else "",
        )


class CircuitBreaker:
    """The pipeline's view of every target's breaker: `allows(system_id)` before a call,
    `record(system_id, error_class or None)` after it. Instances share nothing in memory; two of
    them, in one process or two, see the same breakers through the database."""

    # The "cannot reach its target" alert fires on this many failed connections in a row, well
    # before the breaker (which judges a failure rate over MIN_CALLS) would open.
    THRESHOLD = 5
    COOLDOWN_SECONDS = COOLDOWN_SECONDS
    TRIPPING = TRIPPING

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        # Outcomes not written yet (with when this process last wrote them), and the rows as last
        # read. tests/conftest.py resets a breaker between tests by clearing both, under their
        # old names `failures` and `open_until`.
        self.tallies: dict[int, tuple[float, Tally]] = {}
        self.seen: dict[int, Seen] = {}

    @property
    def failures(self) -> dict:
        return self.tallies

    @property
    def open_until(self) -> dict:
        return self.seen

    def forget(self) -> None:
        """Drop what this instance holds in memory (its unwritten counts are lost)."""
        with self.lock:
            self.tallies.clear()
            self.seen.clear()

    def allows(self, system_id: int) -> bool:
        """May a call go to this system now? Once the cooldown is over, the first worker to ask
        claims the probe: True for it (until it records the probe's outcome), False for others."""
        now = self.clock()
        with self.lock:
            if self._resting(system_id, now):
                return False
            seen = self.seen[system_id]
            if seen.state == BreakerState.CLOSED or seen.probe:
                return True
            return self._claim_probe(system_id, now)

    def resting(self, system_id: int) -> bool:
        """Must calls to this system wait (open and cooling down, or another worker probing)?
        Unlike `allows`, this claims nothing."""
        with self.lock:
            return self._resting(system_id, self.clock())

    def _resting(self, system_id: int, now: float) -> bool:
        seen = self._seen(system_id, now)
        if seen.state == BreakerState.CLOSED or seen.probe:
            return False
        if seen.state == BreakerState.OPEN:
            return now < seen.open_until
        return now < seen.probe_until

    def record(self, system_id: int, error_class: ErrorClass | None) -> None:
        """Count a call's outcome (None: it succeeded)."""
        now = self.clock()
        with self.lock:
            seen = self.seen.get(system_id)
            if seen is not None and seen.probe:
                self._probe_answered(system_id, seen.probe, error_class, now)
                return
            # Counted calls are written at most every FLUSH_SECONDS: the first at once, the others
            # with what came after them within the second (a bucket is 5 s, so little shifts).
            flushed_at, tally = self.tallies.get(system_id) or (float("-inf"), Tally())
            tally.add(error_class)
            self.tallies[system_id] = (flushed_at, tally)
            known = seen.window if seen is not None and seen.window is not None else Tally()
            closed = seen is None or seen.state == BreakerState.CLOSED
            if now - flushed_at >= FLUSH_SECONDS or (closed and (known + tally).trips):
                self._flush(system_id, now)

    def flush(self) -> None:
        """Write every count held in memory (a worker about to stop calls this)."""
        now = self.clock()
        with self.lock:
            for system_id, (_, tally) in list(self.tallies.items()):
                if tally.calls or tally.limited:
                    self._flush(system_id, now)

    def _seen(self, system_id: int, now: float) -> Seen:
        seen = self.seen.get(system_id)
        if seen is None or not 0 <= now - seen.read_at < REFRESH_SECONDS:
            row = Circuit.objects.filter(system_id=system_id).first()
            seen = Seen.of(row, now, seen.probe if seen else "")
            self.seen[system_id] = seen
        return seen

    def _claim_probe(self, system_id: int, now: float) -> bool:
        token = secrets.token_hex(8)
        claimed = Circuit.objects.filter(
            Q(state=BreakerState.OPEN, open_until__lte=now)
            | Q(state=BreakerState.HALF_OPEN, probe_until__lte=now),
            system_id=system_id,
        ).update(state=BreakerState.HALF_OPEN, probe_token=token, probe_until=now + PROBE_SECONDS)
        self.seen.pop(system_id, None)
        seen = self._seen(system_id, now)
        if claimed == 1:
            seen.probe = token
        return claimed == 1

    def _probe_answered(self, system_id: int, token: str, error_class: ErrorClass | None, now: float) -> None:
        probing = Circuit.objects.filter(system_id=system_id, state=BreakerState.HALF_OPEN, probe_token=token)
        if error_class in TRIPPING:
            probing.update(
                state=BreakerState.OPEN,
                open_until=now + COOLDOWN_SECONDS,
                probe_token="",
                changed_at=now,
                window=window_add({}, Tally(failed=1), now),  # what opened it this time: the probe
            )
        else:
            probing.update(state=BreakerState.CLOSED, window={}, probe_token="", changed_at=now)
        self.seen.pop(system_id, None)
        self.tallies.pop(system_id, None)

    def _flush(self, system_id: int, now: float) -> None:
        _, tally = self.tallies.get(system_id) or (now, Tally())
        self.tallies[system_id] = (now, Tally())
        with transaction.atomic():
            row, _ = Circuit.objects.select_for_update().get_or_create(system_id=system_id)
            # Outcomes arriving while open or probing answer calls made before it opened: they
            # change nothing, and the window stays as it was when it opened.
            if row.state == BreakerState.CLOSED:
                row.window = window_add(row.window, tally, now)
                if window_total(row.window, now).trips:
                    row.state, row.open_until, row.changed_at = BreakerState.OPEN, now + COOLDOWN_SECONDS, now
                row.save(update_fields=["window", "state", "open_until", "changed_at"])
        self.seen[system_id] = Seen.of(row, now)


@dataclass(frozen=True)
class Status:
    """What one breaker is doing, for pages and metrics."""

    state: str
    since: float
    open_until: float
    probe_until: float
    window: Tally
    now: float

    @property
    def probing(self) -> bool:
        """Half-open, or open with its cooldown over (the next call will be the probe)."""
        return self.state == BreakerState.HALF_OPEN or (
            self.state == BreakerState.OPEN and self.open_until <= self.now
        )

    @property
    def label(self) -> str:
        if self.state == BreakerState.CLOSED:
            return "closed"
        return "half-open" if self.probing else "open"


def status_of(row: Circuit | None, *, now: float | None = None) -> Status:
    """A breaker's status from its row (None: never written, so closed)."""
    now = time.time() if now is None else now
    row = row or Circuit()
    window = window_total(row.window, now)
    if row.state != BreakerState.CLOSED:
        window = window_total(row.window, row.changed_at + 0.001)  # the window that opened it
    return Status(row.state, row.changed_at, row.open_until, row.probe_until, window, now)


def circuit_statuses(system_ids: Iterable[int], *, now: float | None = None) -> dict[int, Status]:
    """Each system's breaker as all workers see it, in one query."""
    ids = list(system_ids)
    rows = {row.system_id: row for row in Circuit.objects.filter(system_id__in=ids)}
    return {system_id: status_of(rows.get(system_id), now=now) for system_id in ids}


def circuit_status(system_id: int, *, now: float | None = None) -> Status:
    return circuit_statuses([system_id], now=now)[system_id]


def answered_per_second(system_id: int, *, now: float | None = None) -> float | None:
    """How many calls a second the system answered lately, across all workers (None: none seen).
    Counts reach the database up to FLUSH_SECONDS late, so this leans low."""
    now = time.time() if now is None else now
    window = Circuit.objects.filter(system_id=system_id).values_list("window", flat=True).first() or {}
    starts = sorted(float(start) for start in window if float(start) > now - WINDOW_SECONDS)
    # The oldest bucket may have begun long before its first call: leave it out when there are more.
    since = starts[1] if len(starts) > 1 else starts[0] if starts else now
    answered = window_total(window, now, now - since + 0.001).answered
    if not answered:
        return None
    return answered / max(BUCKET_SECONDS, now - since)
