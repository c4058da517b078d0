"""Signed outbound webhooks, sent by one background thread per system with retries and duplicates."""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .timeutil import format_timestamp

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)
SEND_TIMEOUT = 5.0
# Errors that mean "the kept-alive connection was closed by the peer": worth one immediate reconnect.
_STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def sign_hmac(secret: str, body: bytes) -> str:
    """Value of ``X-Signature`` (crm, hr, inventory, accounting)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_timestamped(secret: str, body: bytes, timestamp: int) -> str:
    """Value of ``Payments-Signature``: HMAC over ``f"{t}.{body}"``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class WebhookConfig:
    url: str | None = None
    secret: str = ""
    duplicate_rate: float = 0.05
    enabled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "secret_set": bool(self.secret),
            "duplicate_rate": self.duplicate_rate,
            "enabled": self.enabled,
        }


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    event_type: str = field(compare=False)
    body: bytes = field(compare=False)
    duplicate: bool = field(compare=False, default=False)
    attempt: int = field(compare=False, default=0)


class WebhookSender:
    """Queue of deliveries ordered by due time; failed sends are rescheduled, so one dead
    endpoint delays only its own events."""

    def __init__(self, system: str, scheme: str, config: WebhookConfig) -> None:
        self.system = system
        self.scheme = scheme
        self.config = config
        self._rng = random.Random()
        self._cond = threading.Condition()
        self._heap: list[_Delivery] = []
        self._seq = itertools.count()
        self._pending = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._conn_target: tuple[str, str] | None = None
        self.stats: dict[str, Any] = {}
        self.reset_stats()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"sandbox-{self.system}-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return  # still inside a send; it exits on its own and must keep its connection
            self._thread = None
        self._close()

    def reset_stats(self) -> None:
        with self._cond:
            self.stats = {
                "sent": 0,
                "failed": 0,
                "duplicates": 0,
                "attempts": 0,
                "errors": 0,
                "last_error": None,
            }

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            return {**self.config.to_dict(), **self.stats, "pending": self._pending}

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued delivery is sent or given up; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    # -- producing -------------------------------------------------------------------------------

    def emit(self, event_type: str, data: dict[str, Any], created_at: str | None = None) -> str | None:
        """Queue one event (and maybe its duplicate). Returns the event id, or None when disabled."""
        config = self.config
        if not config.enabled or not config.url:
            return None
        event_id = f"evt_{uuid.uuid4().hex}"
        event = {
            "id": event_id,
            "type": event_type,
            "created_at": created_at or format_timestamp_now(),
            "data": data,
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        duplicate = config.duplicate_rate > 0 and self._rng.random() < config.duplicate_rate
        with self._cond:
            now = time.monotonic()
            self._push(_Delivery(now, next(self._seq), event_id, event_type, body))
            if duplicate:
                self.stats["duplicates"] += 1
                self._push(_Delivery(now, next(self._seq), event_id, event_type, body, duplicate=True))
            self._cond.notify()
        return event_id

    def _push(self, delivery: _Delivery) -> None:
        heapq.heappush(self._heap, delivery)
        self._pending += 1

    # -- sending ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                delivery = None
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0].due - time.monotonic()
                        if wait <= 0:
                            delivery = heapq.heappop(self._heap)
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
            assert delivery is not None
            self._attempt(delivery)

    def _attempt(self, delivery: _Delivery) -> None:
        config = self.config
        error: str | None = None
        try:
            status = self._post(config.url or "", delivery.body, self._headers(delivery, config.secret))
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self.stats["attempts"] += 1
            if error is None:
                self.stats["sent"] += 1
                self._finish()
                return
            self.stats["errors"] += 1
            self.stats["last_error"] = error
            if delivery.attempt < len(RETRY_DELAYS) and not self._stopping:
                delivery.due = time.monotonic() + RETRY_DELAYS[delivery.attempt]
                delivery.attempt += 1
                heapq.heappush(self._heap, delivery)
            else:
                self.stats["failed"] += 1
                self._finish()

    def _finish(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._cond.notify_all()

    def _headers(self, delivery: _Delivery, secret: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"sandbox-{self.system}-webhooks/1.0",
            "X-Event-Type": delivery.event_type,
            "X-Event-Id": delivery.event_id,
        }
        if self.scheme == "timestamped":
            headers["Payments-Signature"] = sign_timestamped(secret, delivery.body, int(time.time()))
        else:
            headers["X-Signature"] = sign_hmac(secret, delivery.body)
        return headers

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported webhook url {url!r}")
        target = (parts.scheme, parts.netloc)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        reused = self._conn is not None and self._conn_target == target
        if not reused:
            self._connect(target)
        try:
            return self._send(path, body, headers)
        except _STALE_CONNECTION_ERRORS:
            self._close()
            if not reused:
                raise
            self._connect(target)
            return self._send(path, body, headers)
        except BaseException:
            self._close()
            raise

    def _send(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        assert self._conn is not None
        self._conn.request("POST", path, body=body, headers=headers)
        response = self._conn.getresponse()
        response.read()
        if response.will_close:
            self._close()
        return response.status

    def _connect(self, target: tuple[str, str]) -> None:
        self._close()
        scheme, netloc = target
        connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        self._conn = connection_class(netloc, timeout=SEND_TIMEOUT)
        self._conn_target = target

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._conn_target = None


def format_timestamp_now() -> str:
    return format_timestamp(dt.datetime.now(dt.UTC))
