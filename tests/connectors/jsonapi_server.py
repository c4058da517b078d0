"""A small JSON:API service on a free loopback port, for tests: collections by type in memory, a
bearer token to sign in, paging with `page[size]`/`page[number]` and `links.next`, a
`filter[updated_since]`, and canned failures on request (`server.fail_next(...)`)."""

import itertools
import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.loopback import LoopbackServer

MEDIA_TYPE = "application/vnd.api+json"
TOKEN = "jsonapi-test-token-5f1e"


class JsonApiServer(LoopbackServer):
    def __init__(self, token: str = TOKEN, required: tuple[str, ...] = ("email",)) -> None:
        super().__init__(_Handler)
        self.token = token
        self.required = required  # attributes a new resource must have, else 422
        self.store: dict[str, dict[str, dict[str, Any]]] = {}
        self.received: list[dict[str, Any]] = []
        self.faults: list[tuple[int, dict[str, str], Any]] = []
        self._ids = itertools.count(1)
        self._stamps = itertools.count(1)

    def fail_next(self, status: int, headers: dict[str, str] | None = None, body: Any = None) -> None:
        """Answer the next request with this status (and headers, and body) whatever it asks."""
        default = {"errors": [{"status": str(status), "title": f"Canned failure {status}"}]}
        self.faults.append((status, headers or {}, default if body is None else body))

    def seed(self, kind: str, attributes: dict[str, Any]) -> str:
        with self.lock:
            return self._put(kind, str(next(self._ids)), attributes)

    def _put(self, kind: str, rid: str, attributes: dict[str, Any]) -> str:
        stamp = attributes.get("updated_at") or f"2026-01-01T00:00:{next(self._stamps):02d}Z"
        self.store.setdefault(kind, {})[rid] = {**attributes, "updated_at": stamp}
        return rid


class _Handler(BaseHTTPRequestHandler):
    server: JsonApiServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.server.received.append(
            {"method": method, "path": self.path, "headers": dict(self.headers.items()), "body": body}
        )
        if self.server.faults:
            status, headers, answer = self.server.faults.pop(0)
            return self._answer(status, answer, headers)
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._error(401, "Unauthorized", "The bearer token was not accepted.")
        if raw and self.headers.get("Content-Type") != MEDIA_TYPE:
            return self._error(415, "Unsupported Media Type", f"Send {MEDIA_TYPE}.")
        kind, _, rid = parts.path.strip("/").partition("/")
        with self.server.lock:
            if method == "GET" and not rid:
                return self._list(kind, parse_qs(parts.query))
            if method == "POST" and not rid:
                return self._create(kind, body)
            if rid not in self.server.store.get(kind, {}):
                return self._error(404, "Not Found", f"No {kind} {rid}.")
            if method == "PATCH":
                return self._update(kind, rid, body)
            if method == "DELETE":
                del self.server.store[kind][rid]
                return self._answer(204, None)
            return self._answer(200, {"data": self._resource(kind, rid)})

    def _list(self, kind: str, query: dict[str, list[str]]) -> None:
        size = int(query.get("page[size]", ["10"])[0])
        number = int(query.get("page[number]", ["1"])[0])
        since = query.get("filter[updated_since]", [""])[0]
        rows = self.server.store.get(kind, {})
        ids = sorted((rid for rid in rows if rows[rid]["updated_at"] >= since), key=int)
        page = ids[(number - 1) * size : number * size]
        links: dict[str, Any] = {"next": None}
        if number * size < len(ids):
            wanted = {
                "page[size]": size,
                "page[number]": number + 1,
                **({"filter[updated_since]": since} if since else {}),
            }
            links["next"] = f"{self.server.url}/{kind}?{urlencode(wanted)}"
        self._answer(200, {"data": [self._resource(kind, rid) for rid in page], "links": links})

    def _create(self, kind: str, body: Any) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != kind:
            return self._error(409, "Conflict", f"data.type must be {kind!r}.")
        attributes = data.get("attributes") or {}
        missing = [name for name in self.server.required if not attributes.get(name)]
        if missing:
            return self._error(
                422, "Invalid attribute", f"{missing[0]} is required.", f"/data/attributes/{missing[0]}"
            )
        rid = self.server._put(kind, str(next(self.server._ids)), attributes)
        self._answer(
            201, {"data": self._resource(kind, rid)}, {"Location": f"{self.server.url}/{kind}/{rid}"}
        )

    def _update(self, kind: str, rid: str, body: Any) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != kind or data.get("id") != rid:
            return self._error(409, "Conflict", "data.type and data.id must match the URL.")
        self.server._put(
            kind, rid, {**self.server.store[kind][rid], **data.get("attributes", {}), "updated_at": None}
        )
        self._answer(200, {"data": self._resource(kind, rid)})

    def _resource(self, kind: str, rid: str) -> dict[str, Any]:
        return {"type": kind, "id": rid, "attributes": self.server.store[kind][rid]}

    def _error(self, status: int, title: str, detail: str, pointer: str = "") -> None:
        error: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
        if pointer:
            error["source"] = {"pointer": pointer}
        self._answer(status, {"errors": [error]})

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", MEDIA_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
