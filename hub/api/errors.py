"""Every API error is JSON with a plain `error` message (and details where useful)."""

import logging

from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common import strictjson
from hub.pipeline.ingest import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, UNAVAILABLE_MESSAGE

log = logging.getLogger("hub.api")


def database_unavailable(exc: Exception) -> JsonResponse:
    """503 with Retry-After, never a 500: nothing was acknowledged, so sending again is safe."""
    log.warning("answered 503: the database is unavailable (%s: %s)", type(exc).__name__, exc)
    response = JsonResponse({"error": UNAVAILABLE_MESSAGE}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        response.data = {"error": str(data["detail"])}
    elif isinstance(data, dict) and "error" not in data:
        response.data = {"error": "some fields are not valid", "fields": data}
    elif isinstance(data, list):
        response.data = {"error": "; ".join(str(item) for item in data)}
    return response


def not_found(request, exception=None):
    """handler404: a path no URL matches is answered in JSON where machines call (the API and the
    webhooks), with the usual page elsewhere."""
    if request.path.startswith(("/api/", "/hooks/")):
        return JsonResponse({"error": f"nothing here: {request.path} is not an API address"}, status=404)
    return page_not_found(request, exception)


def error_response(status_code: int, message: str, **extra) -> Response:
    """An API error in the shape every endpoint uses: {"error": "...", ...details}."""
    return Response({"error": message, **extra}, status=status_code)


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the hub's strict reader: NaN, lone surrogates, absurd numbers and
    deep nesting are a 400 that says why, never a 500 further on."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return strictjson.loads(stream.read() if stream is not None else b"")
        except strictjson.JSONInputError as exc:
            raise ParseError(exc.message) from None
