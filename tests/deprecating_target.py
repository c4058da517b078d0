"""A loopback target whose answers say the API is deprecated: it creates every record it is sent
and answers with the headers a test gives it (Deprecation, Sunset, Link, Warning)."""

import itertools
import json
from http.server import BaseHTTPRequestHandler

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
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_PUT = do_PATCH = do_POST
