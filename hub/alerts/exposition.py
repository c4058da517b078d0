"""The alerts' part of /metrics: what is firing, and whether each channel still reaches people.

A channel that stopped working is itself a silent failure, so it is a series a monitoring
system can alert on (hub_alert_channel_up == 0)."""

from hub.alerts.models import Alert, Channel
from hub.metrics.prometheus import Document


def alerts_exposition() -> str:
    doc = Document()
    doc.family(
        "hub_alerts_firing",
        "gauge",
        "Alerts firing now.",
        [("", {}, Alert.objects.firing().count())],
    )
    channels = list(Channel.objects.filter(enabled=True).values_list("name", "kind", "last_ok"))
    doc.family(
        "hub_alert_channel_up",
        "gauge",
        "Whether a channel's last notice or test went through (1), failed (0); unused channels count as up.",
        [
            ("", {"channel": name, "kind": kind}, 0 if last_ok is False else 1)
            for name, kind, last_ok in channels
        ],
    )
    return doc.text()
