"""Flow pages: the list, the creation wizard, the detail page with its live deliveries, edit,
the lifecycle buttons (enable, pause, resume, poll now, delete) and the specification
export/import. Views check the role first, then call one service."""

from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from common.limits import row_id
from common.text import form_text
from hub.access import admins_only, readers, readers_ops_writes
from hub.models import Attempt, Cursor, Delivery, Event, Flow, FlowState, Trigger
from hub.pipeline.schedules import poll_schedule_name
from hub.selectors.drift import drift_rows
from hub.selectors.health import HEALTH_LABELS, flows_health
from hub.services.errors import ConfigError
from hub.services.flows import (
    condition_text,
    flow_create,
    flow_delete,
    flow_delete_blockers,
    flow_enable,
    flow_pause,
    flow_poll_now,
    flow_problems,
    flow_resume,
    flow_update,
    retry_describe,
    schedule_describe,
    schedule_next_runs,
)
from hub.services.specification import spec_export, spec_import
from hub.ui.drift import with_update_words
from hub.ui.feedback import change_made
from hub.ui.forms.flows import (
    RETRY_SETTINGS,
    FilterStepForm,
    FlowEditForm,
    NameStepForm,
    RetryFields,
    SourceModelForm,
    SourceStepForm,
    SpecImportForm,
    TargetStepForm,
    TimingFields,
    TimingStepForm,
    filter_parse,
    filter_problems,
    filter_units,
)
from mappings.conditions import describe_condition
from mappings.models import DataModel

WIZARD_KEY = "flow_wizard"
RECENT_DELIVERIES = 25
FLOW_RELATED = ("source_system", "source_model", "target_system", "target_model", "mapping__current_version")


def _back(request: HttpRequest, flow: Flow) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect("flows-detail", pk=flow.pk)


OPERATION_PHRASES = {
    "create": "Create a new {model} record in {system}",
    "update": "Update the matching {model} record in {system}",
    "upsert": "Create or update the matching {model} record in {system}",
    "delete": "Delete the matching {model} record in {system}",
}


def operation_phrase(flow: Flow) -> str:
    return OPERATION_PHRASES.get(flow.operation, "{model} in {system}").format(
        model=flow.target_model.name, system=flow.target_system.name
    )


def consistency(flow: Flow) -> str:
    return schedule_describe(trigger=flow.trigger, minutes=flow.schedule_minutes, cron=flow.schedule_cron)


# --------------------------------------------------------------------------------------------------
# List
# --------------------------------------------------------------------------------------------------


@readers
def flow_list(request: HttpRequest) -> HttpResponse:
    flows = Flow.objects.select_related(*FLOW_RELATED[:4]).order_by("name")
    rows = flows_health(flows)
    counts = {state: 0 for state in HEALTH_LABELS}
    for row in rows:
        counts[row.state] += 1
        row.consistency = consistency(row.flow)
    shown = request.GET.get("health", "")
    if shown in HEALTH_LABELS:
        rows = [row for row in rows if row.state == shown]
    else:
        shown = ""
    chips = [(state, HEALTH_LABELS[state], n) for state, n in counts.items() if n]
    template = (
        "hub/flows_list.html#flow-table" if request.htmx and request.htmx.target == "flow-table" else None
    )
    return render(request, template or "hub/flows_list.html", {
        "rows": rows, "total": sum(counts.values()), "chips": chips, "shown": shown,
    })  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Wizard
# --------------------------------------------------------------------------------------------------

STEPS = [
    ("Source", SourceStepForm),
    ("Target", TargetStepForm),
    ("Timing", TimingStepForm),
    ("Filter", FilterStepForm),
    ("Name and review", NameStepForm),
]


def _step_form(number: int, state: dict, data: Any = None, new_model: DataModel | None = None) -> Any:
    """The form of wizard step `number` (1-based), bound to `data` or to what the session holds;
    unbound, it starts from what the wizard was opened with (the system a system's page chose).
    Back from creating a data model, it shows what the admin had chosen, with `new_model` chosen."""
    form_class = STEPS[number - 1][1]
    stored = state.get(str(number))
    kwargs: dict[str, Any] = {}
    if issubclass(form_class, SourceModelForm):
        kwargs["source_model"] = _source_model(state)
    if data is not None:
        return form_class(data, **kwargs)
    draft = state.pop(f"draft-{number}", None)
    chooses_model = form_class in (SourceStepForm, TargetStepForm)
    if draft is not None or (new_model is not None and chooses_model):
        initial = {**(stored or {}), **(draft or {})}
        if new_model is not None and chooses_model:
            initial |= {
                f"{form_class.end}_system": new_model.system_id,
                f"{form_class.end}_model": new_model.pk,
            }
        return form_class(initial=initial, **kwargs)
    if stored is not None:
        return form_class(stored, **kwargs)
    if number == 1 and state.get("prefill"):
        return form_class(initial=state["prefill"], **kwargs)
    return form_class(**kwargs)


def _source_model(state: dict) -> DataModel | None:
    raw = (state.get("1") or {}).get("source_model")
    return (
        DataModel.objects.select_related("system").filter(pk=raw).first() if row_id(raw) is not None else None
    )


def _valid_steps(state: dict) -> list[Any]:
    """Forms of the completed steps, re-checked in order; stops at the first that is not valid."""
    forms = []
    for number in range(1, len(STEPS) + 1):
        if str(number) not in state:
            break
        form = _step_form(number, state, data=state[str(number)])
        if not form.is_valid():
            break
        forms.append(form)
    return forms


def _event_suggestions(system_id: int | None) -> list[str]:
    """Event types this system sent recently, newest first, for the admin to pick from."""
    if not system_id:
        return []
    seen: list[str] = []
    recent = (
        Event.objects.filter(system_id=system_id)
        .order_by("-received_at")
        .values_list("event_type", flat=True)
    )
    for event_type in recent[:500]:
        if event_type not in seen:
            seen.append(event_type)
        if len(seen) == 12:
            break
    return seen


def _filter_echo(text: str, model: DataModel | None) -> dict[str, Any]:
    """What the filter echo shows for `text`: the condition in words, or why it cannot be read."""
    cond, error = filter_parse(text)
    return {
        "text": text.strip(),
        "error": error,
        "described": describe_condition(cond) if cond else "",
        "problems": filter_problems(cond, model),
        "units": filter_units(cond, model),
        "model": model,
    }


def _live_partial(request: HttpRequest, source_model: DataModel | None) -> HttpResponse | None:
    """The small regions that follow the admin's typing: the filter echo and the schedule preview."""
    partial = request.GET.get("partial")
    if partial == "filter-echo":
        echo = _filter_echo(request.GET.get("filter_text", ""), source_model)
        return render(request, "hub/_flow_filter_echo.html", echo)
    if partial == "retry-preview":
        form = RetryFields(request.GET)
        policy = form.policy()
        return render(request, "hub/_flow_retry_preview.html", {
            "retry": retry_describe(policy) if policy else None,
            "error": " ".join(str(e) for errors in form.errors.values() for e in errors),
        })  # fmt: skip
    if partial == "schedule-preview":
        form = TimingFields(_timing_only(request.GET), source_model=None)
        runs, error = [], ""
        if form.is_valid():
            data = form.cleaned_data
            if data["trigger"] == Trigger.SCHEDULED:
                runs = schedule_next_runs(minutes=data["schedule_minutes"], cron=data["schedule_cron"])
                described = schedule_describe(
                    trigger=Trigger.SCHEDULED, minutes=data["schedule_minutes"], cron=data["schedule_cron"]
                )
            else:
                described = "Real-time"
        else:
            described = ""
            error = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return render(request, "hub/_flow_schedule_preview.html", {
            "runs": runs, "error": error, "described": described, "trigger": request.GET.get("trigger"),
        })  # fmt: skip
    return None


def _timing_only(data: Any) -> dict[str, str]:
    """The schedule part of submitted data (the cursor field is checked against the model elsewhere)."""
    return {name: data.get(name) or "" for name in ("trigger", "preset", "at_time", "cron")}


def schedule_preview(form: TimingFields) -> dict[str, Any]:
    """The next runs of the schedule the form shows (bound or not), for the first render."""
    if form.is_bound:
        data = form.data
    else:
        data = {name: form[name].value() or "" for name in ("trigger", "preset", "at_time", "cron")}
        if hasattr(data["at_time"], "strftime"):
            data["at_time"] = data["at_time"].strftime("%H:%M")
    probe = TimingFields(_timing_only(data), source_model=None)
    if not probe.is_valid() or probe.cleaned_data["trigger"] != Trigger.SCHEDULED:
        return {}
    minutes, cron = probe.cleaned_data["schedule_minutes"], probe.cleaned_data["schedule_cron"]
    return {
        "runs": schedule_next_runs(minutes=minutes, cron=cron),
        "described": schedule_describe(trigger=Trigger.SCHEDULED, minutes=minutes, cron=cron),
    }


def _webhook_url(system) -> str:
    from django.conf import settings

    return settings.HUB_INGEST_URL.rstrip("/") + reverse("hooks-receive", args=[system.slug])


@admins_only
def flow_add(request: HttpRequest) -> HttpResponse:
    state: dict = request.session.get(WIZARD_KEY) or {}
    if request.htmx and request.method == "GET":
        partial = _wizard_partial(request, state)
        if partial is not None:
            return partial
    if request.method == "GET" and "step" not in request.GET:
        state = _wizard_start(request)
    step = _requested_step(request)
    done = _valid_steps(state)
    if step > len(done) + 1:
        return _to_step(len(done) + 1)
    if request.method == "POST":
        if "create_model" in request.POST and STEPS[step - 1][1] in (SourceStepForm, TargetStepForm):
            return _wizard_create_model(request, state, step)
        form = _step_form(step, state, data=request.POST)
        if form.is_valid():
            return _wizard_advance(request, state, step, form)
    else:
        form = _step_form(step, state, new_model=_new_model(request))
        request.session.modified = True  # a draft used up is gone from the session
    return render(request, "hub/flows_wizard.html", _wizard_context(step, form, done, state))


def _wizard_create_model(request: HttpRequest, state: dict, step: int) -> HttpResponse:
    """Keep what this step shows as typed, and go create the data model it lacks; creating it
    brings the admin back here with it chosen (see _new_model)."""
    form_class = STEPS[step - 1][1]
    state[f"draft-{step}"] = {name: request.POST.get(name, "") for name in form_class.base_fields}
    request.session[WIZARD_KEY] = state
    request.session.modified = True
    back = f"{reverse('flows-add')}?step={step}"
    query = {"next": back}
    if (system := row_id(request.POST.get(f"{form_class.end}_system"))) is not None:
        query["system"] = system
    return redirect(f"{reverse('mappings-model-add')}?{urlencode(query)}")


def _new_model(request: HttpRequest) -> DataModel | None:
    """The data model just created from the wizard, named by the page that created it."""
    pk = row_id(request.GET.get("new_model"))
    return DataModel.objects.filter(pk=pk).first() if pk is not None else None


def _to_step(number: int) -> HttpResponse:
    return redirect(f"{reverse('flows-add')}?step={number}")


def _requested_step(request: HttpRequest) -> int:
    try:
        return min(max(int(request.GET.get("step", 1)), 1), len(STEPS))
    except ValueError:
        return 1


def _wizard_start(request: HttpRequest) -> dict:
    """A fresh wizard; opened from a system's page, it starts from that system."""
    state: dict = {}
    if row_id(request.GET.get("source_system")) is not None:
        state["prefill"] = {"source_system": request.GET["source_system"]}
    request.session[WIZARD_KEY] = state
    return state


def _wizard_partial(request: HttpRequest, state: dict) -> HttpResponse | None:
    """The regions that follow the admin's choices: a system's models, the filter echo, the schedule."""
    partial = request.GET.get("partial", "")
    if partial in ("source-options", "target-options"):
        form_class = SourceStepForm if partial == "source-options" else TargetStepForm
        form = form_class(initial={**request.GET.dict()})
        return render(request, f"hub/flows_wizard.html#{partial}", {
            "form": form, "suggestions": _event_suggestions(form.chosen_system_id()),
        })  # fmt: skip
    return _live_partial(request, _source_model(state))


def _wizard_advance(request: HttpRequest, state: dict, step: int, form: Any) -> HttpResponse:
    """Keep a valid step in the session, then go on to the next step, or create the flow after the last."""
    state[str(step)] = {name: request.POST.get(name, "") for name in form.fields}
    request.session[WIZARD_KEY] = state
    request.session.modified = True
    if step < len(STEPS):
        return _to_step(step + 1)
    done = _valid_steps(state)
    if len(done) < len(STEPS):
        messages.error(request, "Something changed on an earlier step; please check it again.")
        return _to_step(len(done) + 1)
    return _wizard_finish(request, done)


def _wizard_context(step: int, form: Any, done: list, state: dict) -> dict[str, Any]:
    return {
        "step": step,
        "steps": [(number, label, number <= len(done)) for number, (label, _) in enumerate(STEPS, start=1)],
        "form": form,
        "previous": step - 1 if step > 1 else None,
        "live_url": reverse("flows-add"),
        **_step_context(step, form, done, _source_model(state)),
    }


def _step_context(step: int, form: Any, done: list, source_model: DataModel | None) -> dict[str, Any]:
    """What one step of the wizard shows besides its form."""
    if step in (1, 2):
        return {
            "suggestions": _event_suggestions(form.chosen_system_id()) if step == 1 else [],
            "no_systems": not form.fields[f"{form.end}_system"].queryset.exists(),
        }
    if step == 3:
        webhook = _webhook_context(source_model.system) if source_model is not None else {}
        return {"preview": schedule_preview(form), **webhook}
    if step == 4 and source_model is not None:
        return {
            "source_fields": list(source_model.fields.all()),
            "echo": _filter_echo(form["filter_text"].value() or "", source_model),
        }
    if step == 5 and len(done) >= 4:
        if not form.is_bound and not form.initial.get("name"):
            form.initial["name"] = _suggested_name(done)
        return {"review": _review(done)}
    return {}


def _webhook_context(system) -> dict[str, str]:
    """Where a real-time flow's source sends its webhooks, for the timing fields."""
    return {"webhook_url": _webhook_url(system), "source_system_name": system.name}


def _review(done: list) -> dict[str, Any]:
    source, target, timing, filtering = (form.cleaned_data for form in done[:4])
    return {
        "source": source,
        "target": target,
        "operation": OPERATION_PHRASES[target["operation"]].format(
            model=target["target_model"].name, system=target["target_system"].name
        ),
        "consistency": schedule_describe(trigger=timing["trigger"], minutes=timing["schedule_minutes"],
                                         cron=timing["schedule_cron"]),
        "cursor_field": timing.get("cursor_field") if timing["trigger"] == Trigger.SCHEDULED else "",
        "filter": describe_condition(filtering["filter"]) if filtering["filter"] else "",
    }  # fmt: skip


def _suggested_name(done: list) -> str:
    source, target = done[0].cleaned_data, done[1].cleaned_data
    event = source["event_type"]
    what = (
        f"{source['source_model'].name} {event}" if event != "*" else f"{source['source_model'].name} changes"
    )
    return f"{what} → {target['target_system'].name} {target['target_model'].name}"[:200]


def _wizard_finish(request: HttpRequest, done: list) -> HttpResponse:
    source, target, timing, filtering, naming = (form.cleaned_data for form in done)
    try:
        flow = flow_create(
            actor=request.user,
            name=naming["name"],
            description=naming["description"],
            source_model=source["source_model"],
            target_model=target["target_model"],
            event_type=source["event_type"],
            operation=target["operation"],
            trigger=timing["trigger"],
            schedule_minutes=timing["schedule_minutes"],
            schedule_cron=timing["schedule_cron"],
            cursor_field=timing.get("cursor_field") or "",
            filter=filtering["filter"],
        )
    except ConfigError as exc:
        messages.error(request, str(exc))
        return _to_step(5)
    request.session.pop(WIZARD_KEY, None)
    messages.success(
        request, f'Flow "{flow.name}" created as a draft. Next: connect its fields, then enable it.'
    )
    return redirect("mappings-mapper", pk=flow.mapping_id)


# --------------------------------------------------------------------------------------------------
# Detail and actions
# --------------------------------------------------------------------------------------------------


def _flow(pk: int) -> Flow:
    return get_object_or_404(Flow.objects.select_related(*FLOW_RELATED), pk=pk)


@readers
def flow_detail(request: HttpRequest, pk: int) -> HttpResponse:
    flow = _flow(pk)
    health = flows_health([flow])[0]
    deliveries = list(
        Delivery.objects.for_flow(flow)
        .select_related("event")
        .prefetch_related(Prefetch("attempt_log", queryset=Attempt.objects.order_by("number")))
        .order_by("-id")[:RECENT_DELIVERIES]
    )
    context: dict[str, Any] = {
        "flow": flow,
        "health": health,
        "deliveries": deliveries,
        "refreshed_at": timezone.now(),
    }
    if request.htmx and request.htmx.target == "deliveries":
        return render(request, "hub/flows_detail.html#deliveries", context)
    problems = flow_problems(flow) if flow.state != FlowState.ACTIVE else []
    cursor = Cursor.objects.filter(flow=flow).first() if flow.trigger == Trigger.SCHEDULED else None
    next_poll = None
    if flow.trigger == Trigger.SCHEDULED and flow.state == FlowState.ACTIVE:
        from django_q.models import Schedule

        next_poll = (
            Schedule.objects.filter(name=poll_schedule_name(flow.pk))
            .values_list("next_run", flat=True)
            .first()
        )
    filter_text = condition_text(flow.filter)
    context.update({
        "consistency": consistency(flow),
        "operation_phrase": operation_phrase(flow),
        "filter_described": describe_condition(flow.filter) if flow.filter else "",
        "filter_text": filter_text,
        "version": flow.mapping.current_version, "rule_count": len(flow.mapping.rules),
        "problems": problems, "cursor": cursor, "next_poll": next_poll,
        # A schedule minutes late means no worker is running, which ops should know.
        "poll_overdue": bool(next_poll and next_poll < timezone.now() - timedelta(minutes=2)),
        "delete_blockers": flow_delete_blockers(flow),
        "drift_rows": with_update_words(drift_rows(flow=flow, open_only=True)),
        "webhook_url": _webhook_url(flow.source_system),
        "retry": retry_describe(flow.retry_policy()),
    })  # fmt: skip
    return render(request, "hub/flows_detail.html", context)


@admins_only
def flow_edit(request: HttpRequest, pk: int) -> HttpResponse:
    flow = _flow(pk)
    if request.htmx and request.method == "GET":
        live = _live_partial(request, flow.source_model)
        if live is not None:
            return live
    text_form = condition_text(flow.filter)
    if request.method == "POST":
        form = FlowEditForm(request.POST, flow=flow)
        if form.is_valid():
            data = form.cleaned_data
            new_filter = data["filter"]
            if text_form is None and not data["filter_text"]:
                new_filter = flow.filter  # a structured filter the text box cannot show stays unless replaced
            try:
                flow_update(
                    flow=flow, actor=request.user, cursor_field=data.get("cursor_field") or "",
                    name=data["name"], description=data["description"], event_type=data["event_type"],
                    operation=data["operation"], trigger=data["trigger"], schedule_minutes=data["schedule_minutes"],
                    schedule_cron=data["schedule_cron"], filter=new_filter,
                    silence_after_minutes=data["silence_after_minutes"], drift_policy=data["drift_policy"],
                    **{name: data[name] for name in RETRY_SETTINGS},
                )  # fmt: skip
            except ConfigError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Changes saved.")
                return redirect("flows-detail", pk=flow.pk)
    else:
        form = FlowEditForm(flow=flow)
    return render(request, "hub/flows_edit.html", {
        "flow": flow, "form": form, "live_url": reverse("flows-edit", args=[flow.pk]),
        "preview": schedule_preview(form), **_webhook_context(flow.source_system),
        "retry": _retry_preview(form, flow),
        "structured_filter": describe_condition(flow.filter) if text_form is None else "",
        "source_fields": list(flow.source_model.fields.all()),
        "echo": _filter_echo(form["filter_text"].value() or "", flow.source_model),
    })  # fmt: skip


def _retry_preview(form: FlowEditForm, flow: Flow):
    """The retry policy the form shows, in words (None while the submitted settings have errors)."""
    if not form.is_bound:
        return retry_describe(flow.retry_policy())
    policy = RetryFields(form.data).policy()
    return retry_describe(policy) if policy else None


def _switch(request: HttpRequest, pk: int, *, needs: tuple[str, ...], not_now: str, change, success: str):
    """Turn a flow on or off from the page: say so when it already is, else change it and say how it went."""
    flow = _flow(pk)
    if flow.state not in needs:
        messages.info(request, not_now.format(state=flow.get_state_display().lower()))
    else:
        change_made(request, lambda: change(flow=flow), success=success)
    return _back(request, flow)


@readers_ops_writes
@require_POST
def flow_pause_view(request: HttpRequest, pk: int) -> HttpResponse:
    reason = form_text(request.POST.get("reason"), limit=250)
    return _switch(
        request, pk, needs=(FlowState.ACTIVE,),
        not_now="The flow is {state}, not running; nothing to pause.",
        change=partial(flow_pause, actor=request.user, reason=reason),
        success="Flow paused. New events are kept and wait until you resume it.",
    )  # fmt: skip


@readers_ops_writes
@require_POST
def flow_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    success = "Flow resumed. Waiting deliveries are being carried out now."
    change = partial(flow_resume, actor=request.user)
    return _switch(request, pk, needs=(FlowState.PAUSED,), not_now="The flow is not paused.", change=change, success=success)  # fmt: skip


@admins_only
@require_POST
def flow_enable_view(request: HttpRequest, pk: int) -> HttpResponse:
    success = "Flow enabled. It now carries every matching event."
    change = partial(flow_enable, actor=request.user)
    needs = (FlowState.DRAFT, FlowState.PAUSED)
    return _switch(request, pk, needs=needs, not_now="The flow is already running.", change=change, success=success)  # fmt: skip


@readers_ops_writes
@require_POST
def flow_poll_view(request: HttpRequest, pk: int) -> HttpResponse:
    flow = _flow(pk)
    change_made(
        request,
        lambda: flow_poll_now(flow=flow, actor=request.user),
        success="Asked a worker to look for changes now. New deliveries appear below.",
    )
    return _back(request, flow)


@admins_only
@require_POST
def flow_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    flow = _flow(pk)
    deleted = change_made(
        request, lambda: flow_delete(flow=flow, actor=request.user), success=f'Flow "{flow.name}" deleted.'
    )
    return redirect("flows-list") if deleted else redirect("flows-detail", pk=pk)


# --------------------------------------------------------------------------------------------------
# Specification document
# --------------------------------------------------------------------------------------------------


@readers
def spec_download(request: HttpRequest) -> HttpResponse:
    text = spec_export()
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    filename = f"hub-specification-{timezone.localdate():%Y-%m-%d}.yaml"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admins_only
def spec_import_view(request: HttpRequest) -> HttpResponse:
    report, text = None, ""
    form = SpecImportForm()
    if request.method == "POST":
        apply = request.POST.get("action") == "apply"
        form = SpecImportForm(request.POST, request.FILES)
        if form.is_valid():
            text = form.cleaned_data["text"]
            report = spec_import(
                text=text,
                actor=request.user,
                dry_run=not apply,
                remove_unlisted=form.cleaned_data["remove_unlisted"],
            )
            if report.applied:
                messages.success(request, f"Specification imported: {report.summary()}")
                return redirect("flows-list")
    return render(request, "hub/flows_spec_import.html", {"form": form, "report": report, "text": text})
