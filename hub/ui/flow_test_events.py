"""The "Send a test event" button of a flow's page: an admin sends a made-up record through the
real pipeline and sees, in place, how it went (the answer asks again until the delivery ends)."""

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from hub.access import admins_only
from hub.models import Delivery, Event, Flow
from hub.services.flow_test_events import SentTestEvent, flow_test_event_send

# How many times the answer asks again (once a second) before it leaves the rest to the list below.
MAX_LOOKS = 15


@require_http_methods(["GET", "POST"])
@admins_only
def flow_test_event_view(request: HttpRequest, pk: int) -> HttpResponse:
    """POST sends a test event; GET ?event=<id> says how the one sent is doing."""
    flow = get_object_or_404(
        Flow.objects.select_related("source_system", "target_system", "source_model"), pk=pk
    )
    if request.method == "POST":
        sent, looks = flow_test_event_send(flow=flow, actor=request.user), 0
        if not request.htmx:
            messages.success(request, "Test event sent. Its delivery is listed below.")
            return redirect("flows-detail", pk=flow.pk)
    else:
        try:
            event_id = uuid.UUID(request.GET.get("event", ""))
            looks = min(int(request.GET.get("looks", "0")), MAX_LOOKS)
        except ValueError:
            return HttpResponse("Say which test event: ?event=<its id>&looks=<a number>.", status=400)
        event = get_object_or_404(Event, pk=event_id, origin=Event.Origin.TEST)
        delivery = get_object_or_404(Delivery.objects.select_related("flow"), event=event, flow=flow)
        sent = SentTestEvent(event=event, delivery=delivery, record=event.record())
    keep_looking = not sent.delivery.is_finished() and not sent.held and looks < MAX_LOOKS
    return render(request, "hub/_flow_test_event.html", {
        "flow": flow, "sent": sent, "next_look": looks + 1 if keep_looking else None,
    })  # fmt: skip
