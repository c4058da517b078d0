"""A loopback target that repeats every request back in its answer, in every form a careless API
might: headers as JSON (escaped) and as JSON text inside JSON (escaped twice), headers as a query
string (URL-encoded) in the body and in a Location header, the request line and header values in
its error "message", and the webhook signing secret it keeps for the hub. It also hands out OAuth2
tokens at any path ending in /oauth/token and remembers each one, so a test can look for them.

The status comes from the request: a JSON body's "answer" field, else a path ending in a three-digit
number, else 200 (GET) or 201."""

import itertools
import json
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlencode

from tests.loopback import LoopbackServer


class EchoTarget(LoopbackServer):
    def __init__(self, *, revealed_secret: str = "") -> None:
        super().__init__(_Handler)
        self.revealed_secret = revealed_secret  # what its "webhook settings" show
        self.tokens: list[str] = []  # every access and refresh token handed out
        self._ids = itertools.count(1)


class _Handler(BaseHTTPRequestHandler):
    server: EchoTarget

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if self.command == "POST" and self.path.split("?")[0].endswith("/oauth/token"):
            return self._token()
        headers = dict(self.headers.items())
        answer = {
            "id": f"rec-{next(self.server._ids)}",
            "message": f"{self.command} {self.path} with {' | '.join(headers.values())}",
            "request": {"method": self.command, "url": self.path, "headers": headers, "body": text},
            "headers_as_text": json.dumps(headers, ensure_ascii=False),
            "headers_as_query": "/echo?" + urlencode(headers),
            "webhook": {"signing_secret": self.server.revealed_secret},
        }
        self._answer(self._status(text), answer, {"Location": "/echo?" + urlencode(headers)})

    def _status(self, text: str) -> int:
        try:
            wanted = json.loads(text).get("answer")
        except (ValueError, AttributeError):
            wanted = None
        if isinstance(wanted, int):
            return wanted
        if found := re.search(r"/(\d{3})$", self.path.split("?")[0]):
            return int(found.group(1))
        return 200 if self.command == "GET" else 201

    def _token(self) -> None:
        with self.server.lock:
            n = len(self.server.tokens) // 2 + 1
            access, refresh = f"at-{n}-Zx9/q+w=Tk", f"rt-{n}-Rf7/p+e=Tk"
            self.server.tokens += [access, refresh]
        body = {"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 3600}
        self._answer(200, body, {})

    def _answer(self, status: int, body: dict, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
