"""A loopback target whose answers say the API is deprecated: it creates every record it is sent
(a GET answers 200) and answers with the headers a test gives it (Deprecation, Sunset, Link, Warning)."""

import itertools
import json
from http.server import BaseHTTPRequestHandler

from connectors.models import System
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.factories import flow_with_mapping, model_with_fields
from tests.loopback import LoopbackServer


class DeprecatingTarget(LoopbackServer):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(_Handler)
        self.headers = headers
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1)


class _Handler(BaseHTTPRequestHandler):
    server: DeprecatingTarget

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.calls.append((self.command, self.path))
            record_id = f"c-{next(self.server._ids)}"
        data = json.dumps({"id": record_id}).encode()
        self.send_response(200 if self.command == "GET" else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_PATCH = do_POST


def contacts_flow(target_url: str, **crm_settings):
    """People signing up in a shop become contacts in an old CRM's /v1/contacts at `target_url`."""
    shop = System.objects.create(name="Shop", slug="shop", base_url="")
    crm = System.objects.create(
        name="Old CRM", slug="old-crm", base_url=target_url, read_timeout=2.0, **crm_settings
    )
    person = model_with_fields(shop, "Person", "/people", "id! email!")
    contact = model_with_fields(crm, "Contact", "/v1/contacts", "email!")
    return flow_with_mapping(
        source_model=person,
        target_model=contact,
        rules=[{"target": "email", "source": "email"}],
        operation="create",
        name="Sign-ups to contacts",
    )


def people_signed_up(flow, *numbers: int) -> None:
    events_store(
        [
            IncomingEvent(
                flow.source_system,
                "person.created",
                f"evt-{n}",
                {"id": f"p{n}", "email": f"p{n}@example.com"},
            )
            for n in numbers
        ]
    )
