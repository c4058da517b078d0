"""What the OpenAPI schema says beyond the views: how to sign in with an API token, and every error
answer the API can give, in the one shape `hub.api.errors` gives them, so a client (and
tests/api_contract) can rely on it. hub/api/urls.py imports this module to register the scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "hub.api.auth.ApiTokenAuthentication"
    name = "tokenAuth"
    optional = True  # hub.api.auth may not exist in an older checkout; the scheme is then left out

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>` (or `Bearer <key>`): a machine account's API token.",
        }


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error: a plain message, and per-field messages where a field is wrong.",
    "properties": {
        "error": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {}},
    },
    "required": ["error"],
}

ALWAYS = {
    "401": "No credentials, or a token that is not valid: send `Authorization: Token <key>`.",
    "403": "The account's role may not do this (or a signed-in session sent no CSRF token).",
    "503": "The database is unavailable for a moment: send the request again after Retry-After seconds.",
}
WITH_INPUT = {"400": "A parameter or the body is not valid; `fields` names each problem."}
WITH_BODY = {
    "413": "The body is larger than the hub accepts.",
    "415": "The body's content type is not one the operation reads.",
}
WITH_PATH_ID = {"404": "No such object (or not one this account may see)."}
# Answered by the web server before the hub sees the request (gunicorn reads 4,094 bytes of
# request line), so in its own words rather than the error shape.
WITH_QUERY = {"414": {"description": "The address with its query is longer than the server reads."}}
RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before sending again."}
}


def document_errors(result, generator, request, public):
    """Postprocessing hook: add the error answers an operation can give and does not yet document."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            errors = dict(ALWAYS)
            if parameters or "requestBody" in operation:
                errors |= WITH_INPUT
            if "requestBody" in operation:
                errors |= WITH_BODY
            if any(p["in"] == "path" for p in parameters):
                errors |= WITH_PATH_ID
            if any(p["in"] == "query" for p in parameters):
                responses.update({k: v for k, v in WITH_QUERY.items() if k not in responses})
            for status, description in errors.items():
                response = responses.setdefault(status, {"description": description})
                response.setdefault(
                    "content", {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                )
                if status == "503":
                    response.setdefault("headers", RETRY_AFTER)
    return result
