"""HTTP/1.1 keep-alive servers for the sandbox systems and the :class:`Sandbox` handle."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from .config import DEFAULT_PORTS, DEMO_WEBHOOK_SECRETS
from .system import SandboxSystem

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_MAX_BODY = 10 * 1024 * 1024


class _SystemServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], system: SandboxSystem) -> None:
        self.system = system
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(connection)

    def close_open_connections(self) -> None:
        """Cut kept-alive client connections so no handler thread serves a stopped system."""
        with self._open_lock:
            connections = list(self._open)
            self._open.clear()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SystemServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        system = self.server.system
        try:
            if path.startswith("/_control/"):
                response = system.handle_control(self.command, path, query, body)
            elif path in ("", "/"):
                self._write(200, _index(system), {}, "application/json")
                return
            else:
                response = system.handle_api(self.command, path, query, self.headers, body)
        except Exception as exc:  # a sandbox bug must still produce a response
            self._write(
                500, json.dumps({"error": f"sandbox error: {exc!r}"}).encode(), {}, "application/json"
            )
            return
        if response.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(response.status, response.body, response.headers, response.content_type)

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self.close_connection = True
            self._write(400, b'{"error":"bad Content-Length"}', {}, "application/json")
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                self._write(400, b'{"error":"bad chunked body"}', {}, "application/json")
                return None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                self.close_connection = True
                self._write(413, b'{"error":"body too large"}', {}, "application/json")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(2)

    def _write(self, status: int, body: bytes, headers: dict[str, str], content_type: str) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
            f"Server: sandbox-{self.server.system.name}",
        ]
        if status != 204:
            lines.append(f"Content-Type: {content_type}")
            lines.append(f"Content-Length: {len(body)}")
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write per response: separate header/body writes interact badly with delayed ACKs.
        self.wfile.write(head + body if status != 204 else head)


def _index(system: SandboxSystem) -> bytes:
    return json.dumps(
        {
            "system": system.name,
            "auth": system.spec.auth,
            "resources": sorted(system.spec.resources),
        }
    ).encode()


class Served:
    """Something served on loopback in daemon threads: `start()` and `stop()`, or `with`."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class Sandbox(Served):
    """Runs selected sandbox systems on loopback, each on its own port, in daemon threads.

    ``ports`` values of 0 pick a free port; ``hub_url`` enables webhooks to ``{hub_url}/hooks/{system}/``.
    """

    def __init__(
        self,
        systems: Iterable[str] | None = None,
        *,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        hub_url: str | None = None,
        rate_limits: dict[str, float] | None = None,
        duplicate_rate: float = 0.05,
    ) -> None:
        names = list(DEFAULT_PORTS) if systems is None else list(systems)
        unknown = [name for name in names if name not in DEFAULT_PORTS]
        if unknown:
            raise ValueError(f"unknown sandbox systems: {', '.join(unknown)}")
        self.host = host
        self.hub_url = hub_url.rstrip("/") if hub_url else None
        ports = ports or {}
        rate_limits = rate_limits or {}
        self._ports = {name: ports.get(name, DEFAULT_PORTS[name]) for name in names}
        self._systems = {
            name: SandboxSystem(
                name,
                rate_limit=rate_limits.get(name),
                webhook_url=f"{self.hub_url}/hooks/{name}/" if self.hub_url else None,
                webhook_secret=DEMO_WEBHOOK_SECRETS[name],
                duplicate_rate=duplicate_rate,
            )
            for name in names
        }
        self._servers: dict[str, _SystemServer] = {}
        self._threads: list[threading.Thread] = []

    @property
    def names(self) -> list[str]:
        return list(self._systems)

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def start(self) -> Sandbox:
        if self._servers:
            return self
        try:
            for name, system in self._systems.items():
                server = _SystemServer((self.host, self._ports[name]), system)
                self._servers[name] = server
                self._ports[name] = server.server_address[1]
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"sandbox-{name}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
                system.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        servers = list(self._servers.values())
        self._servers.clear()
        # serve_forever polls for shutdown; shut all down in parallel instead of one after another.
        stoppers = [threading.Thread(target=server.shutdown, daemon=True) for server in servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(2.0)
        for server in servers:
            server.server_close()
            server.close_open_connections()
        for system in self._systems.values():
            system.stop()
        for thread in self._threads:
            thread.join(1.0)
        self._threads.clear()

    def url(self, system: str) -> str:
        if system not in self._ports:
            raise KeyError(f"sandbox system {system!r} is not part of this sandbox")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._ports[system]}"

    def system(self, name: str) -> SandboxSystem:
        if name not in self._systems:
            raise KeyError(f"sandbox system {name!r} is not part of this sandbox")
        return self._systems[name]
