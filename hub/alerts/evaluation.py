"""Evaluating every alert rule once: read the conditions, move alerts between firing and resolved,
and tell people. Run every minute by a django-q2 schedule (hub/alerts/tasks.py).

An alert fires once (one open alert per rule, enforced by a unique index), reminds on the rule's
cadence while it fires unless acknowledged or muted, and resolves when its condition clears,
telling whoever heard it fire. Each notice is claimed by a conditional update before it is sent,
so two evaluations running at once send it once. Conditions are read with a fixed number of
queries whatever the number of flows; writes happen only where something changed."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F

from hub.alerts.conditions import Reading, conditions_read
from hub.alerts.models import Alert, AlertRule, Channel
from hub.alerts.notify import alert_notice, channels_send
from hub.alerts.services import alert_event
from hub.alerts.volume import Baseline, baselines_learn
from hub.models import FlowState
from hub.pipeline import clock

log = logging.getLogger("hub.alerts")
EVENT_OF_STATUS = {
    "firing": "notified",
    "reminder": "reminded",
    "resolved": "notified",
}


@dataclass
class Evaluation:
    """What one evaluation did, for the task's result and the tests."""

    rules: int = 0
    fired: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    notices: list[tuple[int, str]] = field(default_factory=list)  # (alert id, status)

    def summary(self) -> str:
        return (
            f"{self.rules} rules: {len(self.fired)} fired, {len(self.resolved)} resolved, "
            f"{len(self.notices)} notices"
        )


def alerts_evaluate(*, now: datetime | None = None) -> Evaluation:
    """Evaluate every enabled rule of every flow that is not a draft."""
    now = now or clock.now()
    rules = list(
        AlertRule.objects.filter(enabled=True)
        .exclude(flow__state=FlowState.DRAFT)
        .select_related("flow__target_system", "flow__target_model")
    )
    baselines_refresh(rules, now=now)
    readings = conditions_read(rules, now=now)
    firing = {a.rule_id: a for a in Alert.objects.firing().select_related("rule__flow", "acknowledged_by")}
    result = Evaluation(rules=len(rules))
    due: list[tuple[Alert, str]] = []
    for rule in rules:
        if rule.pk in readings:
            due += _step(rule, firing.pop(rule.pk, None), readings[rule.pk], now, result)
    for alert in firing.values():
        if not (alert.rule.enabled and alert.rule.flow.state != FlowState.DRAFT):
            reading = Reading(False, "no longer watched: the rule or its flow was switched off")
            due += _step(alert.rule, alert, reading, now, result)
    if due:
        _tell(due, now=now, result=result)
    return result


def baselines_refresh(rules: list[AlertRule], *, now: datetime) -> None:
    """Learn again the usual volume of learned silence rules whose baseline is over an hour old."""
    stale = [
        r
        for r in rules
        if r.kind == "silence" and not r.window_minutes and Baseline.from_json(r.baseline).is_stale(now)
    ]
    if not stale:
        return
    learned = baselines_learn({r.flow_id for r in stale}, now=now)
    for rule in stale:
        rule.baseline = learned[rule.flow_id].as_json()
    AlertRule.objects.bulk_update(stale, ["baseline"])


def _step(rule: AlertRule, alert: Alert | None, reading: Reading, now: datetime, result: Evaluation):
    """One rule's move; returns the notices it makes due as (alert, status)."""
    if reading.firing and alert is None:
        alert = _fire(rule, reading, now)
        if alert is None:
            return []
        result.fired.append(alert.pk)
    elif reading.firing:
        alert.rule = rule
        _refresh(alert, reading, now)
    elif alert is not None:
        if not _resolve(alert, reading, now):
            return []
        result.resolved.append(alert.pk)
        return [(alert, "resolved")] if alert.last_notified_at else []
    else:
        return []
    status = _notice_due(alert, rule, now, reading)
    return [(alert, status)] if status and _claim(alert, now) else []


def _fire(rule: AlertRule, reading: Reading, now: datetime) -> Alert | None:
    try:
        with transaction.atomic():
            alert = Alert.objects.create(rule=rule, started_at=now, summary=reading.summary[:500])
            alert_event(alert, "fired", now=now, message=reading.summary)
    except IntegrityError:  # another evaluation opened it a moment ago
        return None
    return alert


def _refresh(alert: Alert, reading: Reading, now: datetime) -> None:
    """Keep the latest figures, and record a mute that ran out."""
    if alert.summary != reading.summary[:500]:
        alert.summary = reading.summary[:500]
        Alert.objects.filter(pk=alert.pk).update(summary=alert.summary)
    rule = alert.rule
    if rule.muted_until and rule.muted_until <= now:
        if AlertRule.objects.filter(pk=rule.pk, muted_until=rule.muted_until).update(muted_until=None):
            alert_event(alert, "unmuted", now=now, message="the mute ran out")
        rule.muted_until = None


def _resolve(alert: Alert, reading: Reading, now: datetime) -> bool:
    with transaction.atomic():
        done = Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
            resolved_at=now, summary=reading.summary[:500]
        )
        if done:
            alert.resolved_at, alert.summary = now, reading.summary[:500]
            alert_event(alert, "resolved", now=now, message=reading.summary)
    return bool(done)


def _notice_due(alert: Alert, rule: AlertRule, now: datetime, reading: Reading) -> str | None:
    """ "firing" for the first notice, "reminder" when the cadence has come round or the
    situation got worse since the last notice, else None."""
    if rule.is_muted(now):
        return None
    if alert.last_notified_at is None:
        return None if alert.acknowledged_at else "firing"
    if reading.worse_since and alert.last_notified_at < reading.worse_since:
        return "reminder"  # also when acknowledged: what was acknowledged was less urgent
    if alert.acknowledged_at:
        return None
    if rule.renotify_minutes and now - alert.last_notified_at >= timedelta(minutes=rule.renotify_minutes):
        return "reminder"
    return None


def _claim(alert: Alert, now: datetime) -> bool:
    """Take the right to send this notice: exactly one evaluation changes the row."""
    claimed = Alert.objects.filter(
        pk=alert.pk, resolved_at__isnull=True, last_notified_at=alert.last_notified_at
    ).update(last_notified_at=now, notifications=F("notifications") + 1)
    if claimed:
        alert.last_notified_at = now
    return bool(claimed)


def _tell(due: list[tuple[Alert, str]], *, now: datetime, result: Evaluation) -> None:
    channels = list(Channel.objects.filter(enabled=True))
    for alert, status in due:
        result.notices.append((alert.pk, status))
        if not channels:
            alert_event(alert, "not_delivered", now=now, message="nobody to tell: no channel is set up")
            continue
        sent = channels_send(alert_notice(alert, status=status, now=now), channels, now=now)
        told = [f"{c.name} ({text})" for c, ok, text in sent if ok]
        if told:
            verb = "told that it resolved: " if status == "resolved" else "told "
            alert_event(alert, EVENT_OF_STATUS[status], now=now, message=verb + "; ".join(told))
        for channel, ok, text in sent:
            if not ok:
                alert_event(alert, "not_delivered", now=now, message=f"{channel.name}: {text}")
