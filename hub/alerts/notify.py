"""Telling people: word an alert as a Notice, send it through every enabled channel, and keep each
channel's last result. A channel that fails is recorded and skipped; nothing here raises."""

import logging
from datetime import datetime

from django.conf import settings
from django.urls import reverse

from connectors.crypto import is_unreadable
from hub.alerts.channels import ChannelError, Notice
from hub.alerts.models import Alert, Channel

log = logging.getLogger("hub.alerts")
UNREADABLE_CHANNEL = (
    "not sent: the hub cannot read this channel's stored secrets (they were saved with an encryption "
    "key that is not in HUB_ENCRYPTION_KEYS). Add that key, or edit the channel and enter them again."
)


def public_url(name: str, *args) -> str:
    return settings.HUB_PUBLIC_URL.rstrip("/") + reverse(name, args=args)


def alert_notice(alert: Alert, *, status: str, now: datetime) -> Notice:
    rule = alert.rule
    return Notice(
        status=status,
        flow=rule.flow.name,
        rule=rule.describe(),
        summary=alert.summary,
        url=public_url("alerts-detail", alert.pk),
        at=now,
        alert_id=alert.pk,
        started_at=alert.started_at,
    )


def channels_send(
    notice: Notice, channels: list[Channel], *, now: datetime
) -> list[tuple[Channel, bool, str]]:
    """Send through each channel; record and return (channel, ok, what happened) for each."""
    results = []
    for channel in channels:
        try:
            if is_unreadable(channel.secrets):
                raise ChannelError(UNREADABLE_CHANNEL)
            ok, text = True, channel.sender().send(notice)
        except ChannelError as exc:
            ok, text = False, str(exc)
        except Exception as exc:  # a broken channel must never stop evaluation or the others
            log.exception("alert channel %s failed unexpectedly", channel.pk)
            ok, text = False, f"unexpected error: {type(exc).__name__}"
        if not ok:
            log.warning("alert channel %s (%s) could not send: %s", channel.pk, channel.kind, text)
        Channel.objects.filter(pk=channel.pk).update(last_sent_at=now, last_ok=ok, last_result=text[:300])
        channel.last_sent_at, channel.last_ok, channel.last_result = now, ok, text[:300]
        results.append((channel, ok, text))
    return results
