"""Sync history pages: the search (every event, where it went, how it ended), one event with
everything that happened to it, and the export. Every role that reads may use them; nothing here
changes anything."""

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from hub.access import readers
from hub.models import DeliveryStatus
from hub.selectors.exports import FORMATS, export_chunks
from hub.selectors.history import (
    EXPORT_COLUMNS,
    event_history,
    history_export_rows,
    history_page,
)
from hub.ui.forms.history import ExportForm, HistoryFilterForm

PAGING_PARAMS = ("after", "below", "format")


def query_without_paging(request: HttpRequest) -> str:
    """The page's filters as a query string, for the next-page and export links."""
    query = request.GET.copy()
    for name in PAGING_PARAMS:
        query.pop(name, None)
    return query.urlencode()


def search_view(form_class, page_of, *, cursor: str, template: str, region: str):
    """A search page for readers: the filter form and one page of results, `page_of(filters,
    <cursor>=the query parameter)` (none while a filter is wrong); only the results region when
    htmx asks for it."""

    @require_safe
    @readers
    def search(request: HttpRequest) -> HttpResponse:
        form = form_class(request.GET or None)
        valid = form.is_bound and form.is_valid()
        filters = form.filters() if valid else form_class.filters_class()
        page = (
            page_of(filters, **{cursor: request.GET.get(cursor, "")}) if valid or not form.is_bound else None
        )
        context = {
            "form": form,
            "page": page,
            "filtered": filters != form_class.filters_class(),
            "query": query_without_paging(request),
            "formats": list(FORMATS),
        }
        name = f"{template}#{region}" if request.htmx and request.htmx.target == region else template
        return render(request, name, context)

    return search


def export_view(form_class, rows_of, *, columns: tuple[str, ...], name: str):
    """A download view for readers: the rows `rows_of(filters)` for the form's filters, streamed
    as CSV or JSON (?format=csv|json), the file named after `name` and now."""

    @require_safe
    @readers
    def download(request: HttpRequest) -> HttpResponse:
        form, chosen = form_class(request.GET), ExportForm(request.GET)
        if not (form.is_valid() and chosen.is_valid()):
            errors = {**form.errors, **chosen.errors}
            text = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
            return HttpResponse(text, status=400, content_type="text/plain")
        fmt = chosen.cleaned_data["format"]
        chunks = export_chunks(rows_of(form.filters()), columns=columns, fmt=fmt)
        response = StreamingHttpResponse(chunks, content_type=FORMATS[fmt])
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
        return response

    return download


history = search_view(
    HistoryFilterForm, history_page, cursor="after", template="hub/history.html", region="history-results"
)


@require_safe
@readers
def history_event(request: HttpRequest, pk: UUID) -> HttpResponse:
    event = event_history(pk)
    if event is None:
        raise Http404("No such event.")
    deliveries = list(event.deliveries.all())
    for delivery in deliveries:
        delivery.tries = list(delivery.attempt_log.all())
        delivery.letters = list(delivery.dead_letters.all())
        delivery.filtered_out = delivery.status == DeliveryStatus.SKIPPED
    context = {"event": event, "deliveries": deliveries}
    return render(request, "hub/history_event.html", context)


history_export = export_view(
    HistoryFilterForm, history_export_rows, columns=EXPORT_COLUMNS, name="sync-history"
)
