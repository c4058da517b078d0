"""The kinds of alert rule, a registry: each reads as the end of the sentence "Tell me when <flow>
...", names the numbers it takes, and measures all rules of its kind at once from the pipeline's
own tables (Delivery, Attempt, the audit log), in a fixed number of aggregate queries however many
flows there are. A new kind is one class here plus one line in CONDITIONS."""

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from django.core.exceptions import ValidationError
from django.db.models import Count, F, Max, Q, QuerySet

from connectors.breaker import CircuitBreaker
from connectors.deprecation import SUNSET_SOON_DAYS
from connectors.models import ApiDeprecation
from hub.alerts.volume import LOOKBACK, Baseline
from hub.models import UNFINISHED, Attempt, AuditEntry, Delivery, DeliveryStatus, DriftHold, Flow, FlowState
from hub.models import SchemaDrift as SchemaDriftRow
from hub.selectors.health import OPEN_LETTER

log = logging.getLogger("hub.alerts")

# A rate is not judged on fewer tries than this: one failure in two is not "50% failing".
MIN_SAMPLE = 5
# Learned silence: the quiet stretch must be at least this long, and the usual volume must have
# brought at least EXPECTED_EVENTS events in it. For steady traffic the chance of that much quiet
# by luck is e^-10 (Poisson); the margin covers bursty traffic.
MIN_QUIET = timedelta(minutes=10)
EXPECTED_EVENTS = 10.0
# A retirement the target has not repeated for this long is no longer announced (the alert resolves).
NOTICE_STALE_AFTER = timedelta(days=30)
SUNSET_LAST_DAYS = 7  # the last warning before a switch-off


class RuleLike(Protocol):
    pk: int
    flow: Flow
    flow_id: int
    threshold: float | None
    window_minutes: int | None
    baseline: dict


@dataclass(frozen=True)
class Param:
    """One number a rule of this kind takes: the form shows an input with `unit` after it."""

    field: str  # "threshold" or "window_minutes"
    default: float | None
    minimum: float
    maximum: float
    unit: str
    # When set, the number may be left out, and this is what that means (a learned silence); the
    # form offers it as the choice `none_choice`.
    none_means: str = ""
    none_choice: str = ""
    prefix: str = ""  # words before the number when it is given ("more than")

    def words(self, value: Any) -> str:
        if value is None:
            return self.none_means
        text = (
            duration_words(int(value)) if self.unit == "minutes" else f"{number(value)}{unit_gap(self.unit)}"
        )
        return f"{self.prefix} {text}".strip()

    def check(self, value: Any) -> str:
        """Why `value` cannot be used ("" when it can)."""
        if value is None:
            return "" if self.none_means else "enter a number"
        if not (self.minimum <= value <= self.maximum):
            return f"enter a number from {number(self.minimum)} to {number(self.maximum)}"
        return ""


def number(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{int(value)}"


def unit_gap(unit: str) -> str:
    return unit if unit == "%" else f" {unit}"


def duration_words(minutes: float) -> str:
    """Whole minutes in words: 1 minute, 15 minutes, 1 hour, 90 minutes, 2 days."""
    minutes = int(round(minutes))
    for size, name in ((1440, "day"), (60, "hour")):
        if minutes >= size and minutes % size == 0:
            n = minutes // size
            return f"{n} {name}{'' if n == 1 else 's'}"
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def ago_words(minutes: float) -> str:
    """A rough length of time for readings: "7 minutes", "5 hours", "3 days"."""
    if minutes < 90:
        n, name = round(minutes), "minute"
    elif minutes < 48 * 60:
        n, name = round(minutes / 60), "hour"
    else:
        n, name = round(minutes / 1440), "day"
    return f"{n} {name}{'' if n == 1 else 's'}"


@dataclass
class Reading:
    """One rule's condition now: whether it holds, and the figures in words."""

    firing: bool
    summary: str
    value: float | None = None
    # When the situation last got worse while it fired (a switch-off came closer than a stage):
    # an alert told before then is told again, whatever its reminder cadence.
    worse_since: datetime | None = None


class Condition:
    """One kind of rule. Its kind, as stored on the rule, is the class name in snake case
    (ErrorRate: "error_rate")."""

    kind: ClassVar[str]
    label: ClassVar[str]  # in the "add a rule" picker: "Tell me when <flow> <label>"
    # The words after the flow's name; {threshold} and {window} stand for the rule's numbers.
    sentence: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    watches_paused: ClassVar[bool] = False  # also evaluated while the flow is paused
    renotify_default: ClassVar[int] = 60  # minutes between reminders a new rule of this kind starts with

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.field == name), None)

    def describe(self, rule: RuleLike) -> str:
        words = {"threshold": "", "window": ""}
        for p in self.params:
            words["window" if p.field == "window_minutes" else "threshold"] = p.words(getattr(rule, p.field))
        return self.sentence.format(**words)

    def pieces(self) -> list[tuple[str, str]]:
        """The sentence as ("text", words) and ("field", name) pieces, for the form to lay out."""
        out: list[tuple[str, str]] = []
        rest = self.sentence
        while "{" in rest:
            before, _, after = rest.partition("{")
            name, _, rest = after.partition("}")
            if before.strip():
                out.append(("text", before.strip()))
            out.append(("field", "window_minutes" if name == "window" else "threshold"))
        if rest.strip():
            out.append(("text", rest.strip()))
        return out

    def defaults(self) -> dict[str, float | None]:
        return {p.field: p.default for p in self.params}

    def problems(self, values: dict[str, Any]) -> dict[str, str]:
        """Each of the rule's numbers that cannot be used, with why."""
        found = {p.field: p.check(values.get(p.field)) for p in self.params}
        return {name: why for name, why in found.items() if why}

    def read(self, rules: list[RuleLike], *, now: datetime) -> dict[int, Reading]:
        raise NotImplementedError(f"{type(self).__name__} must say how it reads its rules")


def window_param(default: int) -> Param:
    """The stretch of time a rule looks back over, up to a day."""
    return Param("window_minutes", default, 1, 1440, "minutes")


def windows_of(rules: list[RuleLike], now: datetime) -> tuple[set[int], datetime]:
    """The distinct windows of these rules, and where the longest begins."""
    found = {r.window_minutes for r in rules}
    return found, now - timedelta(minutes=max(found))


def minutes_before(now: datetime, minutes: int) -> datetime:
    return now - timedelta(minutes=minutes)


def window_columns(windows: set[int], now: datetime, time_field: str, **counted: Q) -> dict[str, Q]:
    """For each window and each named condition, a column "<name>_<window>" counting the rows of
    that window that meet it."""
    columns = {}
    for w in windows:
        recent = Q(**{f"{time_field}__gt": minutes_before(now, w)})
        columns.update({f"{name}_{w}": recent & q for name, q in counted.items()})
    return columns


def grouped_counts(rows: QuerySet, group: str, columns: dict[str, Q]) -> dict[Any, dict[str, int]]:
    """One GROUP BY query: for each value of `group`, how many rows match each column's condition."""
    if not columns:
        return {}
    annotated = rows.values(group).annotate(**{name: Count("pk", filter=q) for name, q in columns.items()})
    return {row.pop(group): row for row in annotated.order_by()}


def attempts_between(since: datetime, now: datetime) -> QuerySet:
    """Attempts started in (since, now]. Attempt has no time index, so the deliveries they belong to
    are narrowed first through indexed columns: a delivery tried in the window is either
    unfinished now or finished after the try."""
    return Attempt.objects.filter(started_at__gt=since, started_at__lte=now).filter(
        Q(delivery__status__in=UNFINISHED) | Q(delivery__finished_at__gt=since)
    )


class Silence(Condition):
    """No event for the flow (a delivery created for it, whatever became of it) for longer than a
    fixed time, or, learned, for longer than the flow's usual volume at this hour of the week
    explains (hub/alerts/volume.py)."""

    label = "goes quiet"
    sentence = "gets no events for {window}"
    params = (
        Param(
            "window_minutes",
            None,
            5,
            7 * 1440,
            "minutes",
            none_means="longer than its usual volume explains (learned from its last 4 weeks)",
            none_choice="longer than usual (learned)",
            prefix="more than",
        ),
    )

    def read(self, rules, *, now):
        last = dict(
            Delivery.objects.filter(
                flow_id__in={r.flow_id for r in rules}, created_at__gt=now - LOOKBACK, created_at__lte=now
            )
            .values("flow_id")
            .annotate(last=Max("created_at"))
            .values_list("flow_id", "last")
            .order_by()
        )
        return {rule.pk: self._reading(rule, last.get(rule.flow_id), now) for rule in rules}

    def _reading(self, rule: RuleLike, last: datetime | None, now: datetime) -> Reading:
        since = last or max(rule.flow.created_at, now - LOOKBACK)
        quiet = max(now - since, timedelta(0))
        minutes = quiet / timedelta(minutes=1)
        heard = f"last event {ago_words(minutes)} ago" if last else f"no events for {ago_words(minutes)}"
        if rule.window_minutes:
            return Reading(quiet > timedelta(minutes=rule.window_minutes), heard, minutes)
        baseline = Baseline.from_json(rule.baseline)
        if not baseline.ready:
            days = math.floor(baseline.history_hours / 24)
            return Reading(
                False, f"{heard}; still learning its usual volume ({days} of 7 days seen)", minutes
            )
        expected = baseline.expected_between(since, now)
        usual = f"about {number(round(expected, 1))} would usually have arrived by now"
        return Reading(quiet >= MIN_QUIET and expected >= EXPECTED_EVENTS, f"{heard}; {usual}", minutes)


class ErrorRate(Condition):
    """Failed tries among all tries in the window, from the attempt log: a target that fails shows
    at once, not only when its deliveries run out of retries. Not judged on fewer than
    MIN_SAMPLE tries."""

    label = "fails too often"
    sentence = "fails more than {threshold} of its tries over {window}"
    params = (Param("threshold", 20, 1, 100, "%"), window_param(15))

    def read(self, rules, *, now):
        windows, oldest = windows_of(rules, now)
        rows = attempts_between(oldest, now).filter(delivery__flow_id__in={r.flow_id for r in rules})
        columns = window_columns(windows, now, "started_at", tries=Q(), failed=~Q(outcome="succeeded"))
        counts = grouped_counts(rows, "delivery__flow_id", columns)
        return {rule.pk: self._reading(rule, counts.get(rule.flow_id, {})) for rule in rules}

    def _reading(self, rule: RuleLike, row: dict) -> Reading:
        tries, failed = (
            row.get(f"tries_{rule.window_minutes}", 0),
            row.get(f"failed_{rule.window_minutes}", 0),
        )
        over = duration_words(rule.window_minutes)
        if tries < MIN_SAMPLE:
            return Reading(False, f"{failed} of {tries} tries failed in the last {over}: too few to judge")
        rate = 100.0 * failed / tries
        summary = f"{number(round(rate, 1))}% of tries failed in the last {over} ({failed} of {tries})"
        return Reading(rate > rule.threshold, summary, rate)


class Latency(Condition):
    """From ingest (the event's received_at) to delivery (finished_at). The 95th percentile is
    above T when more than 5% took longer than T: counted exactly for each rule's T, in SQL that
    SQLite and PostgreSQL both speak, instead of fetching the durations."""

    label = "is slow"
    sentence = "takes longer than {threshold} to deliver (95th percentile) over {window}"
    params = (Param("threshold", 60, 1, 86400, "seconds"), window_param(15))

    def read(self, rules, *, now):
        rows = Delivery.objects.filter(
            flow_id__in={r.flow_id for r in rules},
            status=DeliveryStatus.SUCCEEDED,
            finished_at__gt=min(minutes_before(now, r.window_minutes) for r in rules),
            finished_at__lte=now,
        )
        columns, slow_column = {}, {}
        for rule in rules:
            recent = Q(finished_at__gt=minutes_before(now, rule.window_minutes))
            took_long = Q(finished_at__gt=F("event__received_at") + timedelta(seconds=rule.threshold))
            slow_column[rule.pk] = f"slow_{rule.window_minutes}_{number(rule.threshold).replace('.', '_')}"
            columns[f"done_{rule.window_minutes}"] = recent
            columns[slow_column[rule.pk]] = recent & took_long
        counts = grouped_counts(rows, "flow_id", columns)
        return {
            rule.pk: self._reading(rule, counts.get(rule.flow_id, {}), slow_column[rule.pk]) for rule in rules
        }

    def _reading(self, rule: RuleLike, row: dict, slow_column: str) -> Reading:
        done, slow = row.get(f"done_{rule.window_minutes}", 0), row.get(slow_column, 0)
        over = duration_words(rule.window_minutes)
        if done < MIN_SAMPLE:
            return Reading(False, f"{done} delivered in the last {over}: too few to judge")
        share = 100.0 * slow / done
        summary = (
            f"{slow} of {done} deliveries in the last {over} took longer than {number(rule.threshold)} s"
        )
        return Reading(share > 5.0, summary, share)


class QueueDepth(Condition):
    """Deliveries waiting now (pending, in flight or retrying), through the partial index on
    unfinished deliveries."""

    label = "falls behind"
    sentence = "has more than {threshold} waiting"
    params = (Param("threshold", 1000, 1, 10_000_000, "deliveries"),)

    def read(self, rules, *, now):
        waiting = grouped_counts(
            Delivery.objects.filter(flow_id__in={r.flow_id for r in rules}, status__in=UNFINISHED),
            "flow_id",
            {"waiting": Q()},
        )
        readings = {}
        for rule in rules:
            n = waiting.get(rule.flow_id, {}).get("waiting", 0)
            readings[rule.pk] = Reading(n > rule.threshold, f"{n} deliveries waiting", n)
        return readings


class QueueGrowth(Condition):
    """The queue now against the queue a window ago. What waited then was created by then and not
    finished by then: still unfinished, or finished since, both found through indexed columns."""

    label = "falls further behind"
    sentence = "gets more than {threshold} further behind within {window}"
    params = (Param("threshold", 100, 1, 10_000_000, "deliveries"), window_param(15))

    def read(self, rules, *, now):
        windows, oldest = windows_of(rules, now)
        waiting = Q(status__in=UNFINISHED)
        rows = Delivery.objects.filter(flow_id__in={r.flow_id for r in rules}).filter(
            waiting | Q(finished_at__gt=oldest)
        )
        columns = {"now": waiting}
        for w in windows:
            then = minutes_before(now, w)
            columns[f"then_{w}"] = Q(created_at__lte=then) & (waiting | Q(finished_at__gt=then))
        counts = grouped_counts(rows, "flow_id", columns)
        readings = {}
        for rule in rules:
            row = counts.get(rule.flow_id, {})
            now_waiting, before = row.get("now", 0), row.get(f"then_{rule.window_minutes}", 0)
            summary = f"{now_waiting} deliveries waiting, {before} {duration_words(rule.window_minutes)} ago"
            readings[rule.pk] = Reading(now_waiting - before > rule.threshold, summary, now_waiting - before)
        return readings


class DeadLetters(Condition):
    """Deliveries that went dead in the window and are still dead (a replay takes one back); the
    reading also counts the open letters, through the `dead_letters` relation."""

    label = "dead-letters deliveries"
    sentence = "sends {threshold} to the dead-letter inbox within {window}"
    params = (Param("threshold", 1, 1, 1_000_000, "or more deliveries"), window_param(15))
    watches_paused = True

    def read(self, rules, *, now):
        ids = {r.flow_id for r in rules}
        windows, oldest = windows_of(rules, now)
        rows = Delivery.objects.filter(
            flow_id__in=ids, status=DeliveryStatus.DEAD, finished_at__gt=oldest, finished_at__lte=now
        )
        counts = grouped_counts(rows, "flow_id", window_columns(windows, now, "finished_at", new=Q()))
        inbox = dict(
            Flow.objects.filter(pk__in=ids)
            .annotate(n=Count("dead_letters", filter=OPEN_LETTER))
            .values_list("pk", "n")
        )
        readings = {}
        for rule in rules:
            new = counts.get(rule.flow_id, {}).get(f"new_{rule.window_minutes}", 0)
            summary = (
                f"{new} new in the last {duration_words(rule.window_minutes)}; "
                f"{inbox.get(rule.flow_id, 0)} open in the dead-letter inbox"
            )
            readings[rule.pk] = Reading(new >= rule.threshold, summary, new)
        return readings


class AutoPause(Condition):
    """The flow is paused and its last pause was the pipeline's own (an audit entry by "hub", as
    on an authentication failure); a person's pause is not an alert."""

    label = "is paused automatically"
    sentence = "is paused automatically (for example when its target refuses our credentials)"
    watches_paused = True

    def read(self, rules, *, now):
        paused = {str(r.flow_id) for r in rules if r.flow.state == FlowState.PAUSED}
        latest: dict[str, AuditEntry] = {}
        if paused:
            entries = AuditEntry.objects.filter(target_type="flow", verb="pause", target_id__in=paused)
            for entry in entries.order_by("at", "id"):
                latest[entry.target_id] = entry
        return {rule.pk: self._reading(rule, latest.get(str(rule.flow_id))) for rule in rules}

    def _reading(self, rule: RuleLike, pause: AuditEntry | None) -> Reading:
        flow = rule.flow
        if flow.state != FlowState.PAUSED:
            return Reading(False, "running")
        if pause is None or pause.actor_id or pause.actor_name != "hub":
            return Reading(False, f"paused by a person: {flow.paused_reason}"[:500])
        reason = flow.paused_reason or str(pause.diff.get("reason", ""))
        return Reading(True, reason[:500] or "paused automatically")


class CircuitOpen(Condition):
    """Each worker keeps its own circuit breaker in memory, which no other process can see; this
    reads what feeds every breaker, the shared attempt log: the target failed at the connection
    level as many times in a row, across all workers, as it takes to open a breaker."""

    label = "cannot reach its target"
    sentence = (
        f"cannot reach its target ({CircuitBreaker.THRESHOLD} failed connections in a row, "
        "across all workers, within {window})"
    )
    params = (window_param(5),)

    def read(self, rules, *, now):
        system = "delivery__flow__target_system_id"
        windows, oldest = windows_of(rules, now)
        attempts = attempts_between(oldest, now).filter(
            delivery__flow__target_system_id__in={r.flow.target_system_id for r in rules}
        )
        last_ok = dict(
            attempts.filter(outcome="succeeded")
            .values(system)
            .annotate(at=Max("started_at"))
            .values_list(system, "at")
            .order_by()
        )
        # Only failures since the target's last success count: a success closes a breaker.
        after_success = Q()
        for system_id, at in last_ok.items():
            after_success &= ~Q(delivery__flow__target_system_id=system_id, started_at__lte=at)
        tripping = Q(error_class__in=[str(e) for e in CircuitBreaker.TRIPPING])
        columns = window_columns(windows, now, "started_at", failed=tripping)
        counts = grouped_counts(attempts.filter(after_success), system, columns)
        readings = {}
        for rule in rules:
            failed = counts.get(rule.flow.target_system_id, {}).get(f"failed_{rule.window_minutes}", 0)
            summary = f"{failed} failed connections in a row to {rule.flow.target_system.name}"
            readings[rule.pk] = Reading(failed >= CircuitBreaker.THRESHOLD, summary, failed)
        return readings


class TargetSunset(Condition):
    """The flow's target said, in its answers to this flow's calls (connectors.deprecation), that
    the operation is deprecated or will be switched off. It fires when first heard, and tells
    again when the switch-off comes within the rule's days and within SUNSET_LAST_DAYS."""

    label = "uses an API its target is retiring"
    sentence = (
        "uses an API its target is retiring (told at once, again when the switch-off is {threshold} "
        f"away and again {SUNSET_LAST_DAYS} days before)"
    )
    params = (Param("threshold", SUNSET_SOON_DAYS, 1, 365, "days"),)
    watches_paused = True  # a paused flow still has to move before the switch-off
    renotify_default = 0  # months of hourly reminders would teach people to ignore it

    def read(self, rules, *, now):
        heard_since = now - NOTICE_STALE_AFTER
        notices: dict[tuple[int, str], ApiDeprecation] = {}
        rows = ApiDeprecation.objects.filter(
            Q(deprecated=True) | Q(sunset_at__isnull=False),
            system_id__in={r.flow.target_system_id for r in rules},
            last_seen_at__gte=heard_since,
        ).select_related("system")
        for row in rows.order_by("system_id", "path", F("sunset_at").asc(nulls_last=True)):
            notices.setdefault((row.system_id, row.path), row)  # the soonest switch-off per path
        readings = {}
        for rule in rules:
            notice = notices.get((rule.flow.target_system_id, rule.flow.target_model.resource_path))
            readings[rule.pk] = self._reading(rule, notice, now)
        return readings

    def _reading(self, rule: RuleLike, notice: "ApiDeprecation | None", now: datetime) -> Reading:
        if notice is None:
            return Reading(False, f"{rule.flow.target_system.name} announces no retirement")
        summary = notice.in_words(now)[:500]
        if notice.sunset_at is None:
            return Reading(True, summary)
        stages = [
            notice.sunset_at - timedelta(days=d)
            for d in (rule.threshold or SUNSET_SOON_DAYS, SUNSET_LAST_DAYS)
        ]
        reached = [moment for moment in stages if moment <= now]
        return Reading(True, summary, notice.days_left(now), max(reached) if reached else None)


class SchemaDrift(Condition):
    """Deliveries of the flow held for review because the source's records changed shape
    (hub/pipeline/drift.py): by the flow's drift policy, or because a field its mapping or its
    polling cursor needs went away. It resolves once they are released."""

    label = "holds events because the source's records changed shape"
    sentence = "holds events because the source's records changed shape (told at once)"
    watches_paused = True  # held events wait for a person whether the flow runs or not
    renotify_default = 24 * 60

    def read(self, rules, *, now):
        held = DriftHold.objects.filter(
            flow_id__in={r.flow_id for r in rules},
            released_at__isnull=True,
            delivery__status=DeliveryStatus.HELD,
        )
        counts = dict(
            held.values("flow_id").annotate(n=Count("delivery_id", distinct=True)).values_list("flow_id", "n")
        )
        changes: dict[int, list[str]] = {}
        for flow_id, drift in held.values_list("flow_id", "drift").distinct().order_by("flow_id", "drift"):
            changes.setdefault(flow_id, []).append(drift)
        words = {
            d.pk: d.describe()
            for d in SchemaDriftRow.objects.filter(pk__in={i for v in changes.values() for i in v})
        }
        readings = {}
        for rule in rules:
            n = counts.get(rule.flow_id, 0)
            if not n:
                readings[rule.pk] = Reading(False, "no events held for a change of shape")
                continue
            what = "; ".join(words[i] for i in changes.get(rule.flow_id, []) if i in words)
            summary = f"{n} event{'' if n == 1 else 's'} held for review: {what}"
            readings[rule.pk] = Reading(True, summary[:500], n)
        return readings


CONDITIONS: dict[str, Condition] = {
    c.kind: c
    for c in (
        Silence(),
        ErrorRate(),
        Latency(),
        QueueDepth(),
        QueueGrowth(),
        DeadLetters(),
        AutoPause(),
        CircuitOpen(),
        TargetSunset(),
        SchemaDrift(),
    )
}

# Every new flow starts with these (kind, threshold, window).
DEFAULT_RULES: tuple[tuple[str, float | None, int | None], ...] = (
    ("silence", None, None),
    ("error_rate", 20, 15),
    ("dead_letters", 1, 15),
    ("auto_pause", None, None),
    ("target_sunset", SUNSET_SOON_DAYS, None),
    ("schema_drift", None, None),
)


def validate_condition_kind(kind: str) -> None:
    if kind not in CONDITIONS:
        raise ValidationError(f"unknown kind of rule {kind!r}; known: {', '.join(CONDITIONS)}")


def conditions_read(rules: Iterable[RuleLike], *, now: datetime) -> dict[int, Reading]:
    """The reading of every rule, kind by kind. A paused flow's rules read as clear, except the
    kinds that watch paused flows. A kind that fails to read leaves its rules out (their alerts
    stay as they are) and is logged: one broken kind must not blind the others."""
    by_kind: dict[str, list[RuleLike]] = {}
    readings: dict[int, Reading] = {}
    for rule in rules:
        if rule.kind not in CONDITIONS:  # a kind this code no longer has: leave its alerts alone
            log.error("alert rule %s has an unknown kind %r", rule.pk, rule.kind)
        elif rule.flow.state == FlowState.PAUSED and not CONDITIONS[rule.kind].watches_paused:
            readings[rule.pk] = Reading(False, "the flow is paused")
        else:
            by_kind.setdefault(rule.kind, []).append(rule)
    for kind, kind_rules in by_kind.items():
        try:
            readings.update(CONDITIONS[kind].read(kind_rules, now=now))
        except Exception:
            log.exception("alert rules of kind %s could not be read", kind)
    return readings
