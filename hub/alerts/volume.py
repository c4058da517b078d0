"""A flow's usual volume by hour of the week, learned from its own last four weeks of deliveries,
so that a silence rule knows that Sunday night is quiet and Monday morning is not."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay
from django.utils import timezone

from hub.models import Delivery

LOOKBACK = timedelta(days=28)
MIN_HISTORY = timedelta(days=7)
HOURS_OF_WEEK = 7 * 24
HOUR = timedelta(hours=1)
# A learned baseline is recomputed at most this often: the profile of four weeks barely moves in
# an hour, and the query reads four weeks of deliveries.
RELEARN_AFTER = timedelta(hours=1)


def hour_of_week(moment: datetime) -> int:
    """0 for Monday 00:00-00:59 local time, 167 for Sunday 23:00-23:59."""
    local = timezone.localtime(moment)
    return (local.isoweekday() - 1) * 24 + local.hour


def _hour_start(moment: datetime) -> datetime:
    return timezone.localtime(moment).replace(minute=0, second=0, microsecond=0)


def _hour_pieces(start: datetime, end: datetime):
    """(hour of week, fraction of that hour) for each clock hour that [start, end) touches."""
    moment = start
    while moment < end:
        hour_end = _hour_start(moment) + HOUR
        piece_end = min(hour_end, end)
        yield hour_of_week(moment), (piece_end - moment) / HOUR
        moment = piece_end


@dataclass
class Baseline:
    """Expected events per hour for each hour of the week (local time; in a week with a DST change
    one hour reads its neighbour's rate, which the margins absorb)."""

    rates: list[float] = field(default_factory=lambda: [0.0] * HOURS_OF_WEEK)
    history_hours: float = 0.0
    learned_at: datetime | None = None

    @property
    def ready(self) -> bool:
        return self.history_hours * HOUR >= MIN_HISTORY

    def expected_between(self, start: datetime, end: datetime) -> float:
        """How many events the usual volume brings between `start` and `end`."""
        start = max(start, end - LOOKBACK)
        return sum(self.rates[how] * fraction for how, fraction in _hour_pieces(start, end))

    def per_hour_at(self, moment: datetime) -> float:
        return self.rates[hour_of_week(moment)]

    def is_stale(self, now: datetime) -> bool:
        # A learned_at in the future means the clock was moved back (tests): learn again.
        return self.learned_at is None or not (now - RELEARN_AFTER < self.learned_at <= now)

    def as_json(self) -> dict:
        return {
            "rates": [round(r, 4) for r in self.rates],
            "history_hours": round(self.history_hours, 2),
            "learned_at": self.learned_at.isoformat() if self.learned_at else None,
        }

    @classmethod
    def from_json(cls, data: dict | None) -> "Baseline":
        data = data or {}
        rates = data.get("rates") or []
        learned_at = data.get("learned_at")
        return cls(
            rates=[float(r) for r in rates] if len(rates) == HOURS_OF_WEEK else [0.0] * HOURS_OF_WEEK,
            history_hours=float(data.get("history_hours") or 0.0),
            learned_at=datetime.fromisoformat(learned_at) if learned_at else None,
        )


def baselines_learn(flow_ids: set[int], *, now: datetime) -> dict[int, Baseline]:
    """The baseline of each flow, from one aggregate query over its last four weeks. Time is
    counted from the hour of its first event to the end of the hour of its last: a quiet stretch
    going on now is what the baseline judges, so it must not water the baseline down (the alert
    would flap as it learns again). Only whole hours count: the hour going on now has all of its
    events so far but only part of its time, which would read as a burst and fire early."""
    counts: dict[int, list[float]] = {}
    seen: dict[int, tuple[datetime, datetime]] = {}
    cutoff = _hour_start(now)
    rows = (
        Delivery.objects.filter(flow_id__in=flow_ids, created_at__gte=now - LOOKBACK, created_at__lt=cutoff)
        .annotate(day=ExtractIsoWeekDay("created_at"), hour=ExtractHour("created_at"))
        .values("flow_id", "day", "hour")
        .annotate(n=Count("id"), first=Min("created_at"), last=Max("created_at"))
        .order_by()
    )
    for row in rows:
        flow_counts = counts.setdefault(row["flow_id"], [0.0] * HOURS_OF_WEEK)
        flow_counts[(row["day"] - 1) * 24 + row["hour"]] += row["n"]
        first, last = seen.get(row["flow_id"], (row["first"], row["last"]))
        seen[row["flow_id"]] = (min(first, row["first"]), max(last, row["last"]))
    baselines = {}
    for flow_id in flow_ids:
        if flow_id not in seen:
            baselines[flow_id] = Baseline(learned_at=now)
            continue
        first, last = seen[flow_id]
        start = _hour_start(first)
        end = min(cutoff, _hour_start(last) + HOUR)
        covered = [0.0] * HOURS_OF_WEEK
        for how, fraction in _hour_pieces(start, end):
            covered[how] += fraction
        rates = [n / hours if hours else 0.0 for n, hours in zip(counts[flow_id], covered, strict=True)]
        baselines[flow_id] = Baseline(rates=rates, history_hours=(end - start) / HOUR, learned_at=now)
    return baselines
