"""Dead-letter pages: the inbox (causes, filters, pages, resolved history, bulk replay/discard of
the selected letters or of everything matching, as a background job with its progress page) and
the detail page (reason, source record, attempts; replay, fix and replay field by field or as
JSON, "it arrived" / "send again" for an unknown outcome, resume and replay, discard). Every
role reads; only admins and ops act. Views check the role, then call one service."""

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dlq.forms import (
    ArrivedForm,
    BulkAllForm,
    BulkForm,
    DiscardForm,
    FixFieldsForm,
    FixReplayForm,
    InboxFilterForm,
    ReplayForm,
)
from dlq.jobs import bulk_job_cancel, bulk_job_start
from dlq.models import BulkJob, DeadLetter
from dlq.selectors import inbox_causes, inbox_page, letter_correction, recent_jobs
from dlq.services import (
    DeadLetterError,
    dead_letter_arrived,
    dead_letter_discard,
    dead_letter_replay,
    dead_letter_resume_and_replay,
    dead_letter_send_again,
    replay_summary,
)
from hub.access import readers_ops_writes
from hub.models import Attempt, Delivery, Flow, FlowState
from hub.roles import ADMIN, OPERATORS, has_role
from hub.services.errors import ConfigError
from hub.templatetags.hub_format import error_text, readable


def _plural(n: int) -> str:
    return f"{n} dead letter{'' if n == 1 else 's'}"


def _first_error(form) -> str:
    return next(str(error) for errors in form.errors.values() for error in errors)


# --------------------------------------------------------------------------------------------------
# Inbox
# --------------------------------------------------------------------------------------------------


@readers_ops_writes
def inbox(request: HttpRequest) -> HttpResponse:
    form = InboxFilterForm(request.GET or None)
    valid = form.is_valid() if form.is_bound else True
    data = form.cleaned_data if form.is_bound and valid else {}
    filters = form.filters() if data else {}
    show_resolved = bool(data.get("resolved"))
    query = request.GET.copy()
    query.pop("before", None)
    matching = DeadLetter.objects.matching(**filters)
    context: dict[str, Any] = {
        "form": form, "show_resolved": show_resolved, "filtered": bool(filters), "query": query.urlencode(),
        "page": None, "jobs": recent_jobs(),
    }  # fmt: skip
    if valid:
        page = inbox_page(matching, resolved=show_resolved, before=data.get("before"))
        context.update(
            page=page,
            letters=page.letters,
            count=matching.filter(resolved_at__isnull=not show_resolved).count(),
        )
        if not show_resolved:
            context["causes"], context["cause_count"] = inbox_causes(matching)
            context["filters_query"] = _filters_only(query)
    status = 200 if valid else 400
    if request.htmx and request.htmx.target == "dlq-list":
        return render(request, "dlq/inbox.html#letter-list", context, status=status)
    return render(request, "dlq/inbox.html", context, status=status)


def _filters_only(query) -> str:
    """The query string without the cause filter, for the causes' own links to add theirs."""
    query = query.copy()
    for name in ("error_class", "pattern", "system", "resolved"):
        query.pop(name, None)
    return query.urlencode()


@require_POST
@readers_ops_writes
def bulk(request: HttpRequest) -> HttpResponse:
    """Replay or discard the letters ticked on the page (a page holds at most 50)."""
    form = BulkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("dlq-inbox")
    action, reason = form.cleaned_data["action"], form.cleaned_data["reason"].strip()
    letters = list(
        DeadLetter.objects.unresolved()
        .select_related("flow")
        .filter(pk__in=form.cleaned_data["letters"])
        .order_by("pk")
    )
    done, held, failed = 0, 0, []
    for letter in letters:
        try:
            if action == "replay":
                dead_letter_replay(letter=letter, actor=request.user, note="bulk replay")
                held += letter.flow.state != FlowState.ACTIVE
            else:
                dead_letter_discard(letter=letter, actor=request.user, reason=reason)
            done += 1
        except DeadLetterError as exc:
            failed.append(str(exc))
    skipped = len(form.cleaned_data["letters"]) - len(letters)
    if done and action == "replay":
        text = f"Replayed {_plural(done)}."
        sent = done - held
        if sent:
            text += f" {'It is' if sent == 1 else 'They are'} being sent again."
        if held:
            text += f" {held} of them belong to a paused flow and wait until it resumes."
        messages.success(request, text)
    elif done:
        messages.success(request, f"Discarded {_plural(done)}.")
    if skipped:
        messages.warning(
            request, f"{_plural(skipped).capitalize()} had already been resolved and were left as they are."
        )
    for text in failed:
        messages.error(request, f"Could not act on it: {text}.")
    return redirect("dlq-inbox")


@require_POST
@readers_ops_writes
def bulk_all(request: HttpRequest) -> HttpResponse:
    """Start a background job over every open letter matching the filters sent beside the action."""
    filters, action = InboxFilterForm(request.POST), BulkAllForm(request.POST)
    back = reverse("dlq-inbox") + "?" + _filters_only_post(request)
    if not filters.is_valid() or not action.is_valid():
        messages.error(request, f"Nothing was started: {_first_error(filters if filters.errors else action)}")
        return redirect(back)
    try:
        job = bulk_job_start(
            action=action.cleaned_data["action"], filters=filters.filters(), description=filters.describe(),
            reason=action.cleaned_data["reason"].strip(), actor=request.user,
        )  # fmt: skip
    except DeadLetterError as exc:
        messages.error(request, f"Nothing was started: {str(exc).capitalize()}.")
        return redirect(back)
    return redirect("dlq-job", pk=job.pk)


def _filters_only_post(request: HttpRequest) -> str:
    query = request.POST.copy()
    for name in ("csrfmiddlewaretoken", "action", "reason"):
        query.pop(name, None)
    return query.urlencode()


@readers_ops_writes
def job(request: HttpRequest, pk: int) -> HttpResponse:
    """A bulk job's progress; the region refreshes itself every second until the job ends."""
    bulk_job = get_object_or_404(BulkJob.objects.select_related("created_by"), pk=pk)
    context = {"job": bulk_job}
    if request.htmx and request.htmx.target == "job-progress":
        return render(request, "dlq/job.html#job-progress", context)
    return render(request, "dlq/job.html", context)


@require_POST
@readers_ops_writes
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    bulk_job = get_object_or_404(BulkJob, pk=pk)
    try:
        bulk_job = bulk_job_cancel(job=bulk_job, actor=request.user)
    except DeadLetterError as exc:
        messages.info(request, f"Nothing to cancel: {exc}.")
    else:
        if bulk_job.state == BulkJob.State.CANCELLED:
            messages.success(request, "Job cancelled before it started. No letter was touched.")
        else:
            messages.success(request, "Cancelling: the job stops after the letters it is working on now.")
    return redirect("dlq-job", pk=pk)


# --------------------------------------------------------------------------------------------------
# Detail and actions
# --------------------------------------------------------------------------------------------------


def _letter(pk: int) -> DeadLetter:
    return get_object_or_404(
        DeadLetter.objects.select_related(
            "flow__source_system", "flow__target_system", "flow__source_model", "delivery__event__system",
            "resolved_by",
        ).prefetch_related(Prefetch("delivery__attempt_log", queryset=Attempt.objects.order_by("number"))),
        pk=pk,
    )  # fmt: skip


def _source_record(letter: DeadLetter) -> Any:
    try:
        return letter.delivery.source_record()
    except Exception:  # a record that cannot be read must not hide the page
        return None


def _fix_fields_form(letter: DeadLetter, data=None) -> FixFieldsForm:
    fields = list(letter.flow.source_model.fields.all())
    return FixFieldsForm(data, fields=fields, record=_source_record(letter))


def _may_resume(user, flow: Flow) -> bool:
    """As on the flow's page: ops and admins resume a paused flow; only admins enable a draft."""
    return has_role(user, (ADMIN,) if flow.state == FlowState.DRAFT else OPERATORS)


def _detail(request: HttpRequest, letter: DeadLetter, *, status: int = 200, **forms: Any) -> HttpResponse:
    record = _source_record(letter)
    record_text = readable(record) if record is not None else "(the source record could not be read)"
    initial_record = (
        json.dumps(record, indent=2, ensure_ascii=False, default=str) if record is not None else ""
    )
    flow = letter.flow
    fix_fields = forms.get("fix_fields_form") or _fix_fields_form(letter)
    context = {
        "letter": letter, "flow": flow, "delivery": letter.delivery,
        "error_text": error_text(letter.error_class), "record_text": record_text,
        "attempts": list(letter.delivery.attempt_log.all()),
        "replay_form": forms.get("replay_form") or ReplayForm(),
        "fix_form": forms.get("fix_form") or FixReplayForm(initial={"record": initial_record}),
        "fix_fields_form": fix_fields, "fix_rows": fix_fields.rows(),
        "arrived_form": forms.get("arrived_form") or ArrivedForm(),
        "discard_form": forms.get("discard_form") or DiscardForm(),
        "open_panel": forms.get("open_panel", ""),
        "flow_held": flow.state != FlowState.ACTIVE, "may_resume": _may_resume(request.user, flow),
        "outcome_unknown": letter.outcome_unknown, "correction": letter_correction(letter),
    }  # fmt: skip
    return render(request, "dlq/detail.html", context, status=status)


@readers_ops_writes
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, _letter(pk))


def _refused(request: HttpRequest, letter: DeadLetter, exc: Exception) -> HttpResponse:
    text = str(exc)
    messages.error(request, f"Nothing was done: {text[:1].upper()}{text[1:]}.")
    return redirect("dlq-detail", pk=letter.pk)


def _replayed(letter: DeadLetter, delivery: Delivery, what: str = "replayed") -> str:
    return f"Dead letter {letter.pk} {what}. {replay_summary(delivery)}"


# One action on one letter: how to build its form, the service call, what to tell the operator.
Action = tuple[Callable[[DeadLetter, Any], Any], Callable[..., Any], Callable[[DeadLetter, Any], str]]
ACTIONS: dict[str, Action] = {
    "replay": (
        lambda letter, data: ReplayForm(data),
        lambda letter, actor, data: dead_letter_replay(letter=letter, actor=actor, note=data["note"]),
        _replayed,
    ),
    "resume_replay": (
        lambda letter, data: ReplayForm(data),
        lambda letter, actor, data: dead_letter_resume_and_replay(
            letter=letter, actor=actor, note=data["note"]
        ),
        lambda letter, delivery: f"Flow “{letter.flow.name}” resumed. " + _replayed(letter, delivery),
    ),
    "fix": (
        lambda letter, data: FixReplayForm(data),
        lambda letter, actor, data: dead_letter_replay(
            letter=letter, actor=actor, corrected_record=data["record"], note=data["note"]
        ),
        lambda letter, delivery: _replayed(letter, delivery, "fixed and replayed"),
    ),
    "fix_fields": (
        _fix_fields_form,
        lambda letter, actor, data: dead_letter_replay(
            letter=letter, actor=actor, corrected_record=data["record"], note=data["note"]
        ),
        lambda letter, delivery: _replayed(letter, delivery, "fixed and replayed"),
    ),
    "arrived": (
        lambda letter, data: ArrivedForm(data),
        lambda letter, actor, data: dead_letter_arrived(
            letter=letter, actor=actor, target_id=data["target_id"], note=data["note"]
        ),
        lambda letter, delivery: (
            f"Dead letter {letter.pk} closed: record {delivery.record_key or '(no id)'} "
            "arrived, the delivery counts as succeeded"
            + (f" and is linked to {delivery.target_id}." if delivery.target_id else ".")
        ),
    ),
    "send_again": (
        lambda letter, data: ReplayForm(data),
        lambda letter, actor, data: dead_letter_send_again(letter=letter, actor=actor, note=data["note"]),
        lambda letter, delivery: _replayed(letter, delivery, "sent anew (no lookup first)"),
    ),
    "discard": (
        lambda letter, data: DiscardForm(data),
        lambda letter, actor, data: dead_letter_discard(letter=letter, actor=actor, reason=data["reason"]),
        lambda letter, result: f"Dead letter {letter.pk} discarded. The reason is kept in the audit log.",
    ),
}
FORM_NAMES = {"resume_replay": "replay", "send_again": "replay"}


@require_POST
@readers_ops_writes
def act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One operator action on one letter."""
    build_form, service_call, done = ACTIONS[action]
    letter = _letter(pk)
    if action == "resume_replay" and not _may_resume(request.user, letter.flow):
        raise PermissionDenied("Only an admin may switch on a flow that has never run.")
    form = build_form(letter, request.POST)
    if not form.is_valid():
        name = FORM_NAMES.get(action, action)
        return _detail(request, letter, **{f"{name}_form": form}, open_panel=action, status=400)
    try:
        result = service_call(letter, request.user, form.cleaned_data)
    except (DeadLetterError, ConfigError) as exc:
        return _refused(request, letter, exc)
    messages.success(request, done(letter, result))
    return redirect("dlq-inbox")
