"""Alert pages: the alerts (firing first; ops acknowledge and mute), one alert with its history,
the rules per flow in plain words and the channels (admins configure and send tests). Every
role reads. Views check the role, then call one service."""

from collections.abc import Callable
from functools import partial

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from hub.access import admins_only, operators_only, readers, readers_admin_writes
from hub.alerts.channels import CHANNELS
from hub.alerts.conditions import CONDITIONS, conditions_read
from hub.alerts.forms import ChannelForm, MuteForm, RuleForm
from hub.alerts.models import Alert, AlertRule, Channel
from hub.alerts.services import (
    alert_acknowledge,
    alert_mute,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_unmute,
    channel_create,
    channel_delete,
    channel_test,
    channel_update,
)
from hub.models import Flow, FlowState
from hub.pipeline import clock
from hub.ui.feedback import change_made

RECENT_RESOLVED = 30


# --------------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------------


def _mark_muted(alerts: list[Alert]) -> list[Alert]:
    now = clock.now()
    for alert in alerts:
        alert.muted = alert.rule.is_muted(now)
    return alerts


@readers
def alert_list(request: HttpRequest) -> HttpResponse:
    related = ("rule__flow", "acknowledged_by")
    firing = Alert.objects.firing().select_related(*related).order_by("-started_at", "-id")
    resolved = (
        Alert.objects.filter(resolved_at__isnull=False).select_related(*related).order_by("-resolved_at")
    )
    channels = list(Channel.objects.all())
    context = {
        "firing": _mark_muted(list(firing)),
        "resolved": list(resolved[:RECENT_RESOLVED]),
        "channels": channels,
        "failing_channels": [c for c in channels if c.enabled and c.last_ok is False],
        "no_channel": not any(c.enabled for c in channels),
        "mute_form": MuteForm(),
    }
    if request.htmx and request.htmx.target == "alert-list":
        return render(request, "alerts/list.html#alert-list", context)
    return render(request, "alerts/list.html", context)


@readers
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.select_related("rule__flow", "acknowledged_by"), pk=pk)
    _mark_muted([alert])
    history = alert.history.select_related("actor").order_by("at", "id")
    return render(
        request, "alerts/detail.html", {"alert": alert, "history": history, "mute_form": MuteForm()}
    )


def _mute(request: HttpRequest, alert: Alert) -> None:
    form = MuteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how long to mute it from the list.")
        return
    change_made(
        request,
        lambda: alert_mute(alert=alert, actor=request.user, minutes=form.cleaned_data["minutes"]),
        success="Muted: no notices about this rule until the mute runs out.",
        refused="Not muted: {error}",
    )


ALERT_ACTIONS = {
    "acknowledge": lambda request, alert: change_made(
        request,
        lambda: alert_acknowledge(alert=alert, actor=request.user),
        success="Acknowledged: no more reminders; you will still hear when it resolves.",
        refused="Not acknowledged: {error}",
    ),
    "mute": _mute,
    "unmute": lambda request, alert: change_made(
        request,
        lambda: alert_unmute(alert=alert, actor=request.user),
        success="Unmuted: notices about this rule resume.",
        refused="{error}",
    ),
}


@require_POST
@operators_only
def alert_act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.select_related("rule__flow"), pk=pk)
    ALERT_ACTIONS[action](request, alert)
    if request.POST.get("next") == "list":
        return redirect("alerts-list")
    return redirect("alerts-detail", pk=alert.pk)


# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------


@readers_admin_writes
def rule_list(request: HttpRequest) -> HttpResponse:
    flows = list(
        Flow.objects.select_related("target_system", "target_model")
        .prefetch_related(Prefetch("alert_rules", queryset=AlertRule.objects.order_by("id")))
        .order_by("name")
    )
    watched = [r for f in flows for r in f.alert_rules.all() if r.enabled and f.state != FlowState.DRAFT]
    readings = conditions_read(watched, now=clock.now())
    firing = set(Alert.objects.firing().values_list("rule_id", flat=True))
    for flow in flows:
        for rule in flow.alert_rules.all():
            rule.reading = readings.get(rule.pk)
            rule.firing = rule.pk in firing
            rule.watched = rule.enabled and (
                flow.state == FlowState.ACTIVE
                or (flow.state == FlowState.PAUSED and rule.condition.watches_paused)
            )
    kinds = [(kind, c.label) for kind, c in CONDITIONS.items()]
    return render(request, "alerts/rules.html", {"flows": flows, "kinds": kinds})


def _condition(kind: str):
    if kind not in CONDITIONS:
        raise Http404("no such kind of rule")
    return CONDITIONS[kind]


@admins_only
def rule_add(request: HttpRequest) -> HttpResponse:
    condition = _condition(request.GET.get("kind", ""))
    initial = {"flow": request.GET.get("flow")}
    form = RuleForm(request.POST or None, condition=condition, initial=initial)
    if request.method == "POST" and form.is_valid():
        flow = form.cleaned_data["flow"]
        made = change_made(
            request,
            lambda: alert_rule_create(
                flow=flow, kind=condition.kind, actor=request.user, **form.rule_values()
            ),
            success=f"Added: tell me when {flow.name} {condition.label}.",
        )
        if made:
            return redirect("alerts-rules")
    return render(request, "alerts/rule_form.html", {"form": form, "condition": condition, "rule": None})


@admins_only
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule.objects.select_related("flow"), pk=pk)
    form = RuleForm(
        request.POST or None, condition=rule.condition, with_flow=False, initial=RuleForm.initial_for(rule)
    )
    if request.method == "POST" and form.is_valid():
        made = change_made(
            request,
            lambda: alert_rule_update(rule=rule, actor=request.user, **form.rule_values()),
            success=f"Saved: tell me when {rule.flow.name} {rule.describe()}.",
        )
        if made:
            return redirect("alerts-rules")
        rule.refresh_from_db()
    return render(request, "alerts/rule_form.html", {"form": form, "condition": rule.condition, "rule": rule})


@require_POST
@admins_only
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule.objects.select_related("flow"), pk=pk)
    words = f"{rule.flow.name} {rule.describe()}"
    alert_rule_delete(rule=rule, actor=request.user)
    messages.success(request, f"Deleted the rule “tell me when {words}”.")
    return redirect("alerts-rules")


# --------------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------------


@readers_admin_writes
def channel_list(request: HttpRequest) -> HttpResponse:
    channels = list(Channel.objects.all())
    kinds = [(kind, cls.label) for kind, cls in CHANNELS.items()]
    return render(request, "alerts/channels.html", {"channels": channels, "kinds": kinds})


def _form_errors(form: ChannelForm, exc: ValidationError) -> None:
    for name, errors in getattr(exc, "message_dict", {NON_FIELD_ERRORS: exc.messages}).items():
        form.add_error(name if name in form.fields else None, errors)


def _channel_page(request: HttpRequest, form: ChannelForm, save: Callable[..., Channel], *, success: str):
    """The channel form: on a valid POST, `save` it (create or update) and go back to the list."""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            channel = save(
                name=data["name"], values=form.values(), enabled=data["enabled"], actor=request.user
            )
        except ValidationError as exc:
            if form.channel:
                form.channel.refresh_from_db()  # the failed save changed it in memory
            _form_errors(form, exc)
        else:
            messages.success(request, success.format(name=channel.name))
            return redirect("alerts-channels")
    context = {"form": form, "channel": form.channel, "kind_label": form.kind.label}
    return render(request, "alerts/channel_form.html", context)


@admins_only
def channel_add(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in CHANNELS:
        raise Http404("no such kind of channel")
    form = ChannelForm(request.POST or None, kind=kind)
    save = partial(channel_create, kind=kind)
    return _channel_page(request, form, save, success="Added {name}. Send a test to make sure it arrives.")


@admins_only
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk)
    form = ChannelForm(request.POST or None, kind=channel.kind, channel=channel)
    return _channel_page(request, form, partial(channel_update, channel=channel), success="Saved {name}.")


@require_POST
@admins_only
def channel_remove(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk)
    channel_delete(channel=channel, actor=request.user)
    messages.success(request, f"Deleted the channel {channel.name}.")
    return redirect("alerts-channels")


@require_POST
@admins_only
def channel_send_test(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk)
    ok, text = channel_test(channel=channel, actor=request.user)
    if request.htmx:
        return render(request, "alerts/_channel_row.html", {"channel": channel})
    if ok:
        messages.success(request, f"Test sent through {channel.name}: {text}.")
    else:
        messages.error(request, f"The test through {channel.name} failed: {text}.")
    return redirect("alerts-channels")
