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


def _json(schema: dict, description: str, **extra) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


ERROR = {"$ref": "#/components/schemas/Error"}
INGESTED = {
    "type": "object",
    "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "duplicate": {"type": "boolean", "description": "The idempotency key was seen before: stored once."},
        "deliveries": {"type": "integer", "description": "Deliveries made for the flows it feeds."},
    },
    "required": ["event_id", "duplicate", "deliveries"],
}
READINESS = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string", "enum": ["ok", "missing"]}},
        "missing": {"type": "array", "items": {"type": "string"}},
        "details": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Admins only.",
        },
    },
    "required": ["status", "checks"],
}
TEXT = {"text/plain": {"schema": {"type": "string"}}}
HOOK_SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "The system's slug.",
    "schema": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
}
MACHINE_PATHS = {
    "/hooks/{slug}/": {
        "post": {
            "operationId": "hooks_receive",
            "tags": ["hooks"],
            "summary": "A vendor's webhook",
            "description": "The raw body is checked against the system's signature header (X-Signature "
            "unless the system says otherwise), then read as JSON; answered 202 once the event is stored.",
            "parameters": [HOOK_SLUG],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
            "security": [],  # signed instead: a body without its signature is a 401
            "responses": {
                "200": {
                    "description": "A handshake the system's vendor template declares (Slack's "
                    "url_verification): the challenge, as text; not stored as an event.",
                    "content": TEXT,
                },
                "202": _json(INGESTED, "Stored (or a repeat of a stored event)."),
                "400": _json(ERROR, "Not JSON the hub can store, or no event type where the system says."),
                "401": _json(ERROR, "The signature is missing or does not match the body."),
                "404": _json(ERROR, "No system with this slug."),
                "405": _json(
                    ERROR, "Webhooks are sent with POST.", headers={"Allow": {"schema": {"type": "string"}}}
                ),
                "413": _json(ERROR, "The body is larger than the webhook limit."),
                "503": _json(
                    ERROR,
                    "The database is away, or the signing secret unreadable: send again later.",
                    headers=RETRY_AFTER,
                ),
            },  # fmt: skip
        },
        "get": {
            "operationId": "hooks_handshake",
            "tags": ["hooks"],
            "summary": "A sender checking the webhook address",
            "description": "Answered only for a handshake the system's vendor template declares (a "
            "challenge in the query, echoed as text); anything else is a 405: webhooks are POSTed.",
            "parameters": [HOOK_SLUG],
            "security": [],
            "responses": {
                "200": {"description": "The challenge, as text.", "content": TEXT},
                "404": _json(ERROR, "Not a webhook address: the slug has characters no slug has."),
                "405": _json(
                    ERROR,
                    "Not a handshake: webhooks are sent with POST.",
                    headers={"Allow": {"schema": {"type": "string"}}},
                ),
                "503": _json(ERROR, "The database is away: send again later.", headers=RETRY_AFTER),
            },  # fmt: skip
        },
    },
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "tags": ["monitoring"],
            "summary": "The process is up",
            "security": [],
            "responses": {
                "200": _json({"type": "object", "properties": {"status": {"type": "string"}}}, "Up.")
            },
        }
    },
    "/readyz": {
        "get": {
            "operationId": "readyz",
            "tags": ["monitoring"],
            "summary": "The database, the broker and a worker are there",
            "parameters": [
                {
                    "name": "checks",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Comma-separated checks to run (database, broker, workers); unknown names are ignored.",
                },
            ],  # fmt: skip
            "security": [],
            "responses": {
                "200": _json(READINESS, "Ready."),
                "503": _json(READINESS, "Something it needs is missing: named in `missing`."),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "tags": ["monitoring"],
            "summary": "Prometheus exposition",
            "description": "With `Authorization: Bearer <HUB_METRICS_TOKEN>`, signed in with a role, or "
            "directly from loopback when HUB_METRICS_ALLOW_LOOPBACK is on.",
            "security": [],
            "responses": {
                "200": {"description": "The metrics.", "content": TEXT},
                "401": {"description": "Not allowed from here without the token.", "content": TEXT},
            },
        }
    },
}


def document_machine_endpoints(result, generator, request, public):
    """Postprocessing hook: the plain Django views machines call (webhooks, health, metrics), which
    drf-spectacular cannot see; tests/api_contract holds them to what is written here."""
    result.setdefault("paths", {}).update(MACHINE_PATHS)
    return result
