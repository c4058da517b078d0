"""Changes to alert rules and channels (admins) and to alerts (ops: acknowledge, mute). Each writes
its audit entry in its own transaction; alert changes also go into the alert's history."""

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from hub.alerts.channels import CHANNELS, Notice
from hub.alerts.conditions import CONDITIONS, DEFAULT_RULES, duration_words
from hub.alerts.models import EVENT_KINDS, Alert, AlertEvent, AlertRule, Channel
from hub.alerts.notify import channels_send, public_url
from hub.models import Flow
from hub.pipeline import clock
from hub.services.audit import audit_record
from hub.services.errors import ConfigError, values_check

RULE_FIELDS = ("threshold", "window_minutes", "renotify_minutes", "enabled")
MAX_RENOTIFY_MINUTES = 7 * 1440
MUTE_CHOICES = (30, 60, 240, 1440, 7 * 1440)  # minutes


def _rule_label(rule: AlertRule) -> str:
    return f"{rule.flow.name}: {rule.describe()}"


def _rule_values(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """The rule's numbers for its kind (numbers the kind does not take are cleared), or
    ConfigError naming what cannot be used."""
    if kind not in CONDITIONS:
        raise ConfigError(f"There is no kind of rule called “{kind}”.")
    condition = CONDITIONS[kind]
    numbers = {
        name: values.get(name) if condition.param(name) else None for name in ("threshold", "window_minutes")
    }
    problems = condition.problems(numbers)
    renotify = values.get("renotify_minutes", condition.renotify_default)
    if renotify is None or not 0 <= renotify <= MAX_RENOTIFY_MINUTES:
        problems["renotify_minutes"] = f"enter a number of minutes from 0 to {MAX_RENOTIFY_MINUTES}"
    if problems:
        raise ConfigError("; ".join(f"{name.replace('_', ' ')}: {why}" for name, why in problems.items()))
    return {**numbers, "renotify_minutes": renotify, "enabled": bool(values.get("enabled", True))}


def _rule_snapshot(rule: AlertRule) -> dict[str, Any]:
    return {"kind": rule.kind, "sentence": rule.describe(), **{f: getattr(rule, f) for f in RULE_FIELDS}}


def alert_rule_create(*, flow: Flow, kind: str, actor, **values: Any) -> AlertRule:
    rule = AlertRule(flow=flow, kind=kind, **_rule_values(kind, values))
    values_check(rule, exclude=["flow"])
    with transaction.atomic():
        rule.save()
        audit_record(
            actor=actor, verb="create", target=rule, label=_rule_label(rule), diff=_rule_snapshot(rule)
        )
    return rule


def alert_rule_update(*, rule: AlertRule, actor, **changes: Any) -> AlertRule:
    current = {f: getattr(rule, f) for f in RULE_FIELDS}
    values = _rule_values(rule.kind, {**current, **changes})
    diff = {f: [current[f], values[f]] for f in RULE_FIELDS if current[f] != values[f]}
    if not diff:
        return rule
    with transaction.atomic():
        for name, value in values.items():
            setattr(rule, name, value)
        rule.save()
        audit_record(actor=actor, verb="update", target=rule, label=_rule_label(rule), diff=diff)
    return rule


def alert_rule_delete(*, rule: AlertRule, actor) -> None:
    """Delete a rule with its alerts and their history (the audit entry keeps what it was)."""
    with transaction.atomic():
        audit_record(
            actor=actor, verb="delete", target=rule, label=_rule_label(rule), diff=_rule_snapshot(rule)
        )
        rule.delete()


def alert_rules_default(*, flow: Flow) -> list[AlertRule]:
    """The rules every new flow starts with (part of creating the flow, which is audited)."""
    return AlertRule.objects.bulk_create(
        AlertRule(
            flow=flow,
            kind=kind,
            threshold=threshold,
            window_minutes=window,
            renotify_minutes=CONDITIONS[kind].renotify_default,
        )
        for kind, threshold, window in DEFAULT_RULES
    )


# --------------------------------------------------------------------------------------------------
# Operator actions on alerts
# --------------------------------------------------------------------------------------------------


def alert_event(alert: Alert, kind: str, *, now: datetime, message: str, actor=None) -> AlertEvent:
    """Add one line to an alert's history (`kind` from models.EVENT_KINDS)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown alert event {kind!r}")
    return AlertEvent.objects.create(
        alert=alert,
        at=now,
        kind=kind,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "username", "") or "hub",
        message=message[:500],
    )


def _alert_label(alert: Alert) -> str:
    return f"alert {alert.pk}: {_rule_label(alert.rule)}"


def alert_acknowledge(*, alert: Alert, actor, now: datetime | None = None) -> Alert:
    """Someone is on it: no more reminders for this alert (it still resolves, and says so)."""
    now = now or clock.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().select_related("rule__flow").get(pk=alert.pk)
        if not alert.is_firing:
            raise ConfigError("It has already resolved; there is nothing to acknowledge.")
        if alert.acknowledged_at:
            who = alert.acknowledged_by.username if alert.acknowledged_by else "someone"
            raise ConfigError(f"{who} acknowledged it already.")
        alert.acknowledged_at, alert.acknowledged_by = now, actor
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
        alert_event(alert, "acknowledged", now=now, actor=actor, message="no more reminders")
        audit_record(actor=actor, verb="acknowledge", target=alert, label=_alert_label(alert))
    return alert


def alert_mute(*, alert: Alert, actor, minutes: int, now: datetime | None = None) -> AlertRule:
    """Say nothing about this rule for a while: no notices for this alert, nor for a new one the
    rule raises meanwhile (a flapping condition stays quiet). Resolves are still told to whoever
    heard it fire."""
    if minutes not in MUTE_CHOICES:
        raise ConfigError("Choose how long to mute it from the list.")
    now = now or clock.now()
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().select_related("flow").get(pk=alert.rule_id)
        before = rule.muted_until
        rule.muted_until = now + timedelta(minutes=minutes)
        rule.save(update_fields=["muted_until"])
        until = f"{timezone.localtime(rule.muted_until):%Y-%m-%d %H:%M}"
        message = f"muted for {duration_words(minutes)}, until {until}"
        alert_event(alert, "muted", now=now, actor=actor, message=message)
        audit_record(
            actor=actor,
            verb="mute",
            target=rule,
            label=_rule_label(rule),
            diff={"muted_until": [before, rule.muted_until], "alert": alert.pk},
        )
    return rule


def alert_unmute(*, alert: Alert, actor, now: datetime | None = None) -> AlertRule:
    now = now or clock.now()
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().select_related("flow").get(pk=alert.rule_id)
        if not rule.is_muted(now):
            raise ConfigError("It is not muted.")
        before, rule.muted_until = rule.muted_until, None
        rule.save(update_fields=["muted_until"])
        alert_event(alert, "unmuted", now=now, actor=actor, message="notices resume")
        audit_record(
            actor=actor,
            verb="unmute",
            target=rule,
            label=_rule_label(rule),
            diff={"muted_until": [before, None]},
        )
    return rule


# --------------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------------


def _channel_fields(
    channel: Channel, *, name: str, values: dict[str, str], enabled: bool
) -> tuple[dict[str, Any], list[str]]:
    """Fill a channel from a form's values; returns the audit diff's settings and the names of
    the secrets given (never their values). Raises ValidationError naming the setting."""
    kind = CHANNELS[channel.kind]
    settings, secrets = kind.clean(values, stored=channel.secrets or {})
    replaced = sorted(s.name for s in kind.settings if s.secret and (values.get(s.name) or "").strip())
    channel.name, channel.enabled, channel.settings, channel.secrets = (
        name.strip(),
        enabled,
        settings,
        secrets,
    )
    if Channel.objects.filter(name__iexact=channel.name).exclude(pk=channel.pk).exists():
        raise ValidationError({"name": f"A channel called “{channel.name}” exists already."})
    channel.full_clean(exclude=["secrets"])
    return {"name": channel.name, "kind": channel.kind, "enabled": enabled, "settings": settings}, replaced


def channel_create(*, kind: str, name: str, values: dict[str, str], actor, enabled: bool = True) -> Channel:
    if kind not in CHANNELS:
        raise ValidationError({"kind": f"There is no kind of channel called “{kind}”."})
    channel = Channel(kind=kind)
    diff, replaced = _channel_fields(channel, name=name, values=values, enabled=enabled)
    with transaction.atomic():
        channel.save()
        audit_record(actor=actor, verb="create", target=channel, diff={**diff, "secrets_set": replaced})
    return channel


def channel_update(
    *, channel: Channel, name: str, values: dict[str, str], actor, enabled: bool = True
) -> Channel:
    before = {"name": channel.name, "enabled": channel.enabled, "settings": channel.settings}
    after, replaced = _channel_fields(channel, name=name, values=values, enabled=enabled)
    diff = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if replaced:
        diff["secrets_replaced"] = replaced
    with transaction.atomic():
        channel.save()
        audit_record(actor=actor, verb="update", target=channel, diff=diff)
    return channel


def channel_delete(*, channel: Channel, actor) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            verb="delete",
            target=channel,
            diff={"kind": channel.kind, "settings": channel.settings},
        )
        channel.delete()


def channel_test(*, channel: Channel, actor, now: datetime | None = None) -> tuple[bool, str]:
    """Send a test notice through one channel (even a disabled one); the result is kept as its
    last result and audited."""
    now = now or clock.now()
    notice = Notice(
        status="test",
        flow="",
        rule="",
        summary=f"A test from the integration hub: channel “{channel.name}” works.",
        url=public_url("alerts-channels"),
        at=now,
    )
    [(_, ok, text)] = channels_send(notice, [channel], now=now)
    with transaction.atomic():
        audit_record(actor=actor, verb="test", target=channel, diff={"ok": ok, "result": text})
    return ok, text
