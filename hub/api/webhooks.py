"""Inbound webhooks: machine-facing, JSON in and out (health endpoints: monitoring.py)."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from hub.api.errors import DATABASE_UNAVAILABLE, database_unavailable
from hub.pipeline.ingest import HandshakeReply, IngestError, webhook_get, webhook_receive


@csrf_exempt
def webhook(request, slug: str):
    """A vendor's webhook: answered 202 only once the event is on disk; 503 with Retry-After while
    the database is away (vendors retry a 503; a 500 many of them drop)."""
    if request.method == "GET":  # some senders check the address first (a vendor template's handshake)
        return _get(request, slug)
    if request.method != "POST":  # Django's require_POST answers with an empty body; a sender needs a why
        return JsonResponse(
            {"error": f"webhooks are sent with POST, not {request.method}"},
            status=405,
            headers={"Allow": "GET, POST"},  # GET for the handshakes some senders make first
        )
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.HUB_MAX_WEBHOOK_BYTES:
        return JsonResponse(
            {"error": f"body is {length} bytes; the limit is {settings.HUB_MAX_WEBHOOK_BYTES}"}, status=413
        )
    try:
        result = webhook_receive(slug=slug, body=request.body, headers=request.headers)
    except RequestDataTooBig:
        return JsonResponse(
            {"error": f"body too large; the limit is {settings.HUB_MAX_WEBHOOK_BYTES} bytes"}, status=413
        )
    except HandshakeReply as reply:
        return HttpResponse(reply.text, content_type="text/plain; charset=utf-8")
    except IngestError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    except DATABASE_UNAVAILABLE as exc:
        return database_unavailable(exc)
    return JsonResponse(result.as_dict(), status=202)


def _get(request, slug: str):
    try:
        webhook_get(slug=slug, headers=request.headers, query=request.GET.dict())
    except HandshakeReply as reply:
        return HttpResponse(reply.text, content_type="text/plain; charset=utf-8")
    except IngestError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status, headers={"Allow": "POST"})
    except DATABASE_UNAVAILABLE as exc:
        return database_unavailable(exc)
