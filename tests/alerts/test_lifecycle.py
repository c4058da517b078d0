"""Every kind of rule, through an alert's whole life on the pipeline's clock: it fires once and
tells both channels, reminds on its cadence, resolves (and says so); acknowledged, it stops
reminding; muted, it says nothing until the mute runs out."""

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from hub.alerts.models import Alert
from hub.alerts.services import alert_acknowledge, alert_mute
from hub.models import DeliveryStatus, Flow, FlowState
from hub.services.audit import audit_record
from hub.services.flows import flow_resume
from tests.alerts.helpers import (
    attempt_rows,
    delivery_rows,
    evaluate,
    events_arrive,
    finish_everything,
    minutes,
    only_rule,
)

pytestmark = pytest.mark.django_db


def paused_by_the_pipeline(flow: Flow) -> None:
    """What the pipeline does on an auth failure (hub/pipeline/outcomes.py): pause, audited by "hub"."""
    if Flow.objects.filter(pk=flow.pk, state=FlowState.ACTIVE).update(
        state=FlowState.PAUSED,
        paused_reason="paused automatically: The system refused our credentials (401/403).",
    ):
        audit_record(actor=None, verb="pause", target=flow, diff={"state": ["active", "paused"]})


def resumed_by_a_person(flow: Flow) -> None:
    flow.refresh_from_db()
    flow_resume(flow=flow, actor=None)


def nothing(flow: Flow) -> None:
    pass


@dataclass
class Scenario:
    """How to keep one kind of rule's condition true (`hold`, called before each evaluation while
    it should fire) and how to make it clear (`heal`)."""

    kind: str
    values: dict
    hold: Callable[[Flow], object]
    heal: Callable[[Flow], object]
    setup: Callable[[Flow], object] = field(default=nothing)


def top_up_queue(flow: Flow) -> None:
    waiting = flow.deliveries.filter(status=DeliveryStatus.PENDING).count()
    delivery_rows(flow, max(0, 4 - waiting))


SCENARIOS = [
    Scenario("silence", {"window_minutes": 10}, hold=nothing, heal=events_arrive, setup=events_arrive),
    Scenario(
        "error_rate",
        {"threshold": 20, "window_minutes": 15},
        hold=lambda flow: attempt_rows(flow, 5, error_class="server_error"),
        heal=lambda flow: attempt_rows(flow, 50),
    ),
    Scenario(
        "latency",
        {"threshold": 60, "window_minutes": 15},
        hold=lambda flow: delivery_rows(flow, 5, status=DeliveryStatus.SUCCEEDED, took=120),
        heal=lambda flow: delivery_rows(flow, 300, status=DeliveryStatus.SUCCEEDED, took=1),
    ),
    Scenario("queue_depth", {"threshold": 3}, hold=top_up_queue, heal=finish_everything),
    Scenario(
        "queue_growth",
        {"threshold": 3, "window_minutes": 10},
        hold=lambda flow: delivery_rows(flow, 4),
        heal=finish_everything,
    ),
    Scenario(
        "dead_letters",
        {"threshold": 1, "window_minutes": 15},
        hold=lambda flow: delivery_rows(flow, 1, status=DeliveryStatus.DEAD),
        heal=finish_everything,
    ),
    Scenario("auto_pause", {}, hold=paused_by_the_pipeline, heal=resumed_by_a_person),
    Scenario(
        "circuit_open",
        {"window_minutes": 5},
        hold=lambda flow: attempt_rows(flow, 5, error_class="unreachable"),
        heal=lambda flow: attempt_rows(flow, 1),
    ),
]


@pytest.fixture(params=SCENARIOS, ids=[s.kind for s in SCENARIOS])
def scenario(request, flow):
    s: Scenario = request.param
    only_rule(flow, s.kind, renotify_minutes=30, **s.values)
    s.setup(flow)
    assert evaluate().fired == [], "the condition must not hold before the test breaks it"
    return s


def step(scenario: Scenario, flow: Flow, after_minutes: float):
    minutes(after_minutes)
    scenario.hold(flow)
    return evaluate()


def told(mailoutbox, receiver) -> list[tuple[str, str]]:
    """What each channel has said so far: (email subject's status, webhook status)."""
    statuses = [b["status"] for b in receiver.bodies()]
    subjects = [m.subject.split(":")[0].removeprefix("[hub] ") for m in mailoutbox]
    return list(zip(subjects, statuses, strict=True))


def test_it_fires_once_reminds_and_resolves(scenario, flow, channels, mailoutbox, receiver):
    fired = step(scenario, flow, 11)
    alert = Alert.objects.get()
    assert fired.fired == [alert.pk] and alert.is_firing
    assert told(mailoutbox, receiver) == [("FIRING", "firing")]

    assert step(scenario, flow, 5).notices == []  # still firing, not due again yet
    assert Alert.objects.count() == 1

    assert step(scenario, flow, 26).notices == [(alert.pk, "reminder")]  # 31 minutes after the first
    assert told(mailoutbox, receiver)[-1] == ("STILL FIRING", "reminder")

    scenario.heal(flow)
    resolved = evaluate()
    alert.refresh_from_db()
    assert resolved.resolved == [alert.pk] and not alert.is_firing
    assert told(mailoutbox, receiver)[-1] == ("RESOLVED", "resolved")
    assert len(mailoutbox) == len(receiver.requests) == 3
    kinds = list(alert.history.values_list("kind", flat=True))
    assert kinds == ["fired", "notified", "reminded", "resolved", "notified"]
    assert evaluate().notices == []  # resolved stays resolved, silently


def test_acknowledged_it_stops_reminding_but_still_tells_the_resolve(
    scenario, flow, channels, mailoutbox, receiver, personas
):
    step(scenario, flow, 11)
    alert = Alert.objects.get()
    alert_acknowledge(alert=alert, actor=personas["ops"])
    assert step(scenario, flow, 31).notices == []
    assert step(scenario, flow, 31).notices == []
    scenario.heal(flow)
    evaluate()
    assert told(mailoutbox, receiver) == [("FIRING", "firing"), ("RESOLVED", "resolved")]
    event = alert.history.get(kind="acknowledged")
    assert event.actor == personas["ops"] and event.actor_name == "oscar-ops"


def test_muted_it_says_nothing_until_the_mute_runs_out(
    scenario, flow, channels, mailoutbox, receiver, personas
):
    step(scenario, flow, 11)
    alert = Alert.objects.get()
    alert_mute(alert=alert, actor=personas["ops"], minutes=60)
    assert step(scenario, flow, 31).notices == []  # a reminder was due, but it is muted
    reminded = step(scenario, flow, 33)  # 64 minutes after the mute: it ran out
    assert reminded.notices == [(alert.pk, "reminder")]
    assert told(mailoutbox, receiver) == [("FIRING", "firing"), ("STILL FIRING", "reminder")]
    kinds = list(alert.history.values_list("kind", flat=True))
    assert kinds == ["fired", "notified", "muted", "unmuted", "reminded"]
    assert alert.history.get(kind="unmuted").message == "the mute ran out"
