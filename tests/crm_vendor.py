"""A loopback CRM contacts API shaped like HubSpot's (POST /crm/v3/objects/contacts with a body of
{"properties": {...}}, answered 201), which serves its OpenAPI document at /openapi.json and
enforces it: a body the document does not allow is answered 422, as the vendor would.

`CrmVendor.require_company()` is the vendor's next version of the document: a new required
property. Every request is counted, so a test can prove that nothing reached the vendor."""

import copy
import itertools
import json
from http.server import BaseHTTPRequestHandler

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.loopback import LoopbackServer

CONTACTS = "/crm/v3/objects/contacts"

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "CRM contacts", "version": "v3"},
    "paths": {
        CONTACTS: {
            "get": {
                "summary": "List contacts",
                "responses": {"200": {"description": "A page of contacts"}},
            },
            "post": {
                "summary": "Create a contact",
                "operationId": "createContact",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ContactInputForCreate"}}
                    },
                },
                "responses": {
                    "201": {
                        "description": "Created",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Contact"}}},
                    },
                    "422": {"description": "The body does not fit"},
                },
            },
        },
        CONTACTS + "/{contactId}": {
            "get": {"summary": "Read a contact", "responses": {"200": {"description": "The contact"}}},
            "patch": {
                "summary": "Update a contact",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ContactInput"}}}
                },
                "responses": {"200": {"description": "Updated"}},
            },
            "delete": {"summary": "Archive a contact", "responses": {"204": {"description": "Archived"}}},
        },
    },
    "components": {
        "schemas": {
            "ContactProperties": {
                "type": "object",
                "required": ["email"],
                "properties": {
                    "email": {"type": "string", "format": "email"},
                    "firstname": {"type": "string", "maxLength": 100},
                    "lastname": {"type": "string", "maxLength": 100},
                    "lifecyclestage": {"type": "string", "enum": ["subscriber", "lead", "customer"]},
                },
                "additionalProperties": {"type": "string"},
            },
            "ContactInputForCreate": {
                "type": "object",
                "required": ["properties"],
                "properties": {"properties": {"$ref": "#/components/schemas/ContactProperties"}},
            },
            "ContactInput": {
                "type": "object",
                "properties": {"properties": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
            "Contact": {
                "type": "object",
                "required": ["id", "properties", "createdAt", "updatedAt"],
                "properties": {
                    "id": {"type": "string", "readOnly": True},
                    "properties": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "nullable": True},
                    },
                    "createdAt": {"type": "string", "format": "date-time"},
                    "updatedAt": {"type": "string", "format": "date-time"},
                    "archived": {"type": "boolean"},
                },
            },
        }
    },
}


class CrmVendor(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.document = copy.deepcopy(DOCUMENT)
        self.requests: list[tuple[str, str]] = []  # every request but the document's
        self.created: list[dict] = []
        self._ids = itertools.count(501)

    def require_company(self) -> None:
        """The vendor's new version: a contact must now name its company."""
        properties = self.document["components"]["schemas"]["ContactProperties"]
        properties["required"] = ["email", "company"]
        properties["properties"]["company"] = {"type": "string", "minLength": 1}
        self.document["info"]["version"] = "v3.1"

    def writes(self) -> list[tuple[str, str]]:
        return [request for request in self.requests if request[0] != "GET"]

    def body_problems(self, body) -> list[str]:
        """What the vendor finds wrong with a create's body, by the document it serves now."""
        registry = Registry().with_resource("urn:crm", Resource.from_contents(self.document, DRAFT4))
        validator = Draft4Validator(
            {"$ref": "urn:crm#/components/schemas/ContactInputForCreate"},
            registry=registry,
            format_checker=FormatChecker(),
        )
        return [error.message for error in validator.iter_errors(body)]


class _Handler(BaseHTTPRequestHandler):
    server: CrmVendor

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/openapi.json":
            self._answer(200, self.server.document)
            return
        with self.server.lock:
            self.server.requests.append(("GET", self.path))
        self._answer(200, {"results": self.server.created})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.requests.append(("POST", self.path))
        if self.path != CONTACTS:
            self._answer(404, {"message": f"no such path {self.path}"})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._answer(400, {"message": "the body is not JSON"})
            return
        problems = self.server.body_problems(body)
        if problems:
            self._answer(
                422, {"status": "error", "category": "VALIDATION_ERROR", "message": "; ".join(problems)}
            )
            return
        contact = {
            "id": str(next(self.server._ids)),
            "properties": body["properties"],
            "createdAt": "2026-12-07T10:00:00Z",
            "updatedAt": "2026-12-07T10:00:00Z",
            "archived": False,
        }
        with self.server.lock:
            self.server.created.append(contact)
        self._answer(201, contact)
