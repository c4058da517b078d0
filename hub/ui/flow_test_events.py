"""The "Send a test event" button of a flow's page: an admin sends a made-up record through the
real pipeline and sees, in place, how it went."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from hub.access import admins_only
from hub.models import Flow
from hub.services.flow_test_events import flow_test_event_send, flow_test_event_wait

# Long enough for a running worker to deliver to a healthy target, short enough to wait for.
WAIT_SECONDS = 3.0


@require_POST
@admins_only
def flow_test_event_view(request: HttpRequest, pk: int) -> HttpResponse:
    flow = get_object_or_404(Flow.objects.select_related("source_system", "target_system"), pk=pk)
    sent = flow_test_event_wait(flow_test_event_send(flow=flow, actor=request.user), seconds=WAIT_SECONDS)
    if request.htmx:
        return render(request, "hub/_flow_test_event.html", {"flow": flow, "sent": sent})
    messages.success(request, "Test event sent. Its delivery is listed below.")
    return redirect("flows-detail", pk=flow.pk)
