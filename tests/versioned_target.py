"""A loopback target with two versions of its contacts API, as a vendor moving from v1 to v2: v2
renamed `email` to `email_address`. It publishes each version's OpenAPI description (when a
test gives one) at .../openapi.json. It reads the version from the path (/v1/contacts,
/v2/contacts), else the X-Api-Version header, else the api-version query parameter, refuses a
contact that does not fit the version asked for (422), and remembers every request."""

import itertools
import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from tests.loopback import LoopbackServer

REQUIRED = {"v1": "email", "v2": "email_address"}


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict | None
    version: str


class VersionedTarget(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.seen: list[Seen] = []
        self.documents: dict[str, dict] = {}  # version -> its OpenAPI document, at .../openapi.json
        self._ids = itertools.count(1)

    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method in ("POST", "PUT", "PATCH")]


def _version(path: str, query: dict[str, str], headers: dict[str, str]) -> str:
    for segment in path.split("/"):
        if segment in REQUIRED:
            return segment
    return headers.get("x-api-version") or query.get("api-version", "")


class _Handler(BaseHTTPRequestHandler):
    server: VersionedTarget

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = json.loads(raw) if raw else None
        version = _version(parts.path, query, headers)
        with self.server.lock:
            self.server.seen.append(Seen(self.command, parts.path, query, headers, body, version))
        if version not in REQUIRED:
            return self._answer(400, {"error": f"unknown API version {version!r}"})
        if self.command == "GET" and parts.path.endswith("/openapi.json"):
            if version not in self.server.documents:
                return self._answer(404, {"error": "no description"})
            return self._answer(200, self.server.documents[version])
        if self.command == "GET":
            return self._answer(200, {"data": []})
        wanted = REQUIRED[version]
        if not isinstance(body, dict) or not body.get(wanted):
            return self._answer(422, {"error": f"{wanted} is required in {version}"})
        unknown = set(body) - {wanted, "name", "external_id"}
        if unknown:
            return self._answer(422, {"error": f"{version} does not know {', '.join(sorted(unknown))}"})
        self._answer(201, {"id": f"c-{next(self.server._ids)}", **body})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
