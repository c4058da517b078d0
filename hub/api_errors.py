"""Every API error is JSON with a plain `error` message (and details where useful)."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
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
