"""Dead-letter pages: the inbox (filters, resolved history, bulk replay/discard) and the detail
page (reason, source record, attempts; replay, fix and replay, discard). Every role reads; only
admins and ops act. Views check the role, then call one service."""

import json
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dlq.forms import BulkForm, DiscardForm, FixReplayForm, InboxFilterForm, ReplayForm
from dlq.models import DeadLetter
from dlq.services import DeadLetterError, dead_letter_discard, dead_letter_replay
from hub.access import readers_ops_writes
from hub.models import Attempt
from hub.templatetags.hub_format import error_text, pretty_json

INBOX_LIMIT = 200


def _plural(n: int) -> str:
    return f"{n} dead letter{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------------------------------
# Inbox
# --------------------------------------------------------------------------------------------------


@readers_ops_writes
def inbox(request: HttpRequest) -> HttpResponse:
    form = InboxFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    show_resolved = bool(filters.get("resolved"))
    letters = DeadLetter.objects.select_related("flow", "delivery", "resolved_by")
    if show_resolved:
        letters = letters.filter(resolved_at__isnull=False).order_by("-resolved_at", "-id")
    else:
        letters = letters.unresolved().order_by("-created_at", "-id")
    if filters.get("flow"):
        letters = letters.filter(flow=filters["flow"])
    if filters.get("error_class"):
        letters = letters.filter(error_class=filters["error_class"])
    rows = list(letters[: INBOX_LIMIT + 1])
    for letter in rows:
        letter.error_text = error_text(letter.error_class)
    context = {
        "form": form, "letters": rows[:INBOX_LIMIT], "truncated": len(rows) > INBOX_LIMIT, "limit": INBOX_LIMIT,
        "show_resolved": show_resolved, "filtered": bool(filters.get("flow") or filters.get("error_class")),
    }  # fmt: skip
    if request.htmx and request.htmx.target == "dlq-list":
        return render(request, "dlq/inbox.html#letter-list", context)
    return render(request, "dlq/inbox.html", context)


@require_POST
@readers_ops_writes
def bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("dlq-inbox")
    action, reason = form.cleaned_data["action"], form.cleaned_data["reason"].strip()
    letters = list(DeadLetter.objects.unresolved().filter(pk__in=form.cleaned_data["letters"]).order_by("pk"))
    done, failed = 0, []
    for letter in letters:
        try:
            if action == "replay":
                dead_letter_replay(letter=letter, actor=request.user, note="bulk replay")
            else:
                dead_letter_discard(letter=letter, actor=request.user, reason=reason)
            done += 1
        except DeadLetterError as exc:
            failed.append(str(exc))
    skipped = len(form.cleaned_data["letters"]) - len(letters)
    verb = "Replayed" if action == "replay" else "Discarded"
    if done:
        messages.success(
            request,
            f"{verb} {_plural(done)}." + (" They are being sent again." if action == "replay" else ""),
        )
    if skipped:
        messages.warning(
            request, f"{_plural(skipped).capitalize()} had already been resolved and were left as they are."
        )
    for text in failed:
        messages.error(request, f"Could not act on it: {text}.")
    return redirect("dlq-inbox")


# --------------------------------------------------------------------------------------------------
# Detail and actions
# --------------------------------------------------------------------------------------------------


def _letter(pk: int) -> DeadLetter:
    return get_object_or_404(
        DeadLetter.objects.select_related(
            "flow__source_system", "flow__target_system", "delivery__event__system", "resolved_by"
        ).prefetch_related(Prefetch("delivery__attempt_log", queryset=Attempt.objects.order_by("number"))),
        pk=pk,
    )


def _detail(request: HttpRequest, letter: DeadLetter, *, status: int = 200, **forms: Any) -> HttpResponse:
    try:
        record = letter.delivery.source_record()
        record_text = pretty_json(record)
    except Exception:  # a record that cannot be read must not hide the page
        record, record_text = None, "(the source record could not be read)"
    attempts = list(letter.delivery.attempt_log.all())
    initial_record = (
        json.dumps(record, indent=2, ensure_ascii=False, default=str) if record is not None else ""
    )
    context = {
        "letter": letter, "flow": letter.flow, "delivery": letter.delivery,
        "error_text": error_text(letter.error_class), "record_text": record_text, "attempts": attempts,
        "last_response_text": pretty_json(letter.last_response),
        "replay_form": forms.get("replay_form") or ReplayForm(),
        "fix_form": forms.get("fix_form") or FixReplayForm(initial={"record": initial_record}),
        "discard_form": forms.get("discard_form") or DiscardForm(),
        "open_panel": forms.get("open_panel", ""),
    }  # fmt: skip
    return render(request, "dlq/detail.html", context, status=status)


@readers_ops_writes
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, _letter(pk))


def _refused(request: HttpRequest, letter: DeadLetter, exc: DeadLetterError) -> HttpResponse:
    text = str(exc)
    messages.error(request, f"Nothing was done: {text[:1].upper()}{text[1:]}.")
    return redirect("dlq-detail", pk=letter.pk)


# The operator actions on one letter: (form, the service call, what to tell the operator).
ACTIONS = {
    "replay": (
        ReplayForm,
        lambda letter, actor, data: dead_letter_replay(letter=letter, actor=actor, note=data["note"]),
        "Dead letter {letter.pk} replayed: record {letter.delivery.record_key} is being sent again.",
    ),
    "fix": (
        FixReplayForm,
        lambda letter, actor, data: dead_letter_replay(
            letter=letter, actor=actor, corrected_record=data["record"], note=data["note"]
        ),
        "Dead letter {letter.pk} fixed and replayed: the corrected record is being sent.",
    ),
    "discard": (
        DiscardForm,
        lambda letter, actor, data: dead_letter_discard(letter=letter, actor=actor, reason=data["reason"]),
        "Dead letter {letter.pk} discarded. The reason is kept in the audit log.",
    ),
}


@require_POST
@readers_ops_writes
def act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Replay, fix and replay, or discard one letter."""
    form_class, service_call, done = ACTIONS[action]
    letter = _letter(pk)
    form = form_class(request.POST)
    if not form.is_valid():
        return _detail(request, letter, **{f"{action}_form": form}, open_panel=action, status=400)
    try:
        service_call(letter, request.user, form.cleaned_data)
    except DeadLetterError as exc:
        return _refused(request, letter, exc)
    messages.success(request, done.format(letter=letter))
    return redirect("dlq-inbox")
