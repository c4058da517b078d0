"""A misbehaving third-party REST target, for the fault-injection suite and `manage.py bench`.

Like most vendor APIs it does NOT honour ``Idempotency-Key``: every create makes a new record with
an id of its own. Records carry the caller's ``external_id`` and can be searched by it
(``GET /<collection>?external_id=X``), which is how a careful client finds out whether a create
whose answer it never saw took effect. Faults are injected by share, drawn from a seeded random
source so a run can be repeated; the target counts what it stored, so a test reads
"duplicates = records - distinct external ids" from the target itself, not from the hub.

Faults (each a share of the write requests, or of the lookups with ``lookup_shares``):

| fault | answer | stored? |
|---|---|---|
| ``429`` / ``429_date`` | 429 with ``Retry-After`` in seconds / as an HTTP date | no |
| ``503`` | 503 with ``Retry-After`` in seconds | no |
| ``500`` | 500 | no |
| ``timeout`` | nothing until ``timeout_delay`` has passed (past the client's read timeout) | with ``timeout_commit_share``, before the wait |
| ``drop_before`` | the connection closed without an answer | no |
| ``drop_after`` | the connection closed without an answer | yes |
| ``garbage`` | 200 with a body that is not JSON | yes |
| ``empty_201`` | 201 with an empty body | yes |
| ``no_id`` | 200 with ``{"ok": true}``: no id | yes |
| ``401`` | 401 | no |
| ``422`` | 422 naming a field | no |

Standard library only, served by the same keep-alive server as the sandbox systems::

    python -m connectors.sandbox.faulty --port 8110 --seed 7 --share 429=0.1 --share drop_after=0.05

    with FaultyTarget(plan=FaultPlan(shares={"drop_after": 0.25})) as target:
        target.url; target.state()["duplicates"]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

from .cli import name_and_number
from .server import Served, _SystemServer
from .system import Response, error_response, json_response

DEFAULT_API_KEY = "faulty-demo-key"
FAULTS = (
    "429",
    "429_date",
    "503",
    "500",
    "timeout",
    "drop_before",
    "drop_after",
    "garbage",
    "empty_201",
    "no_id",
    "401",
    "422",
)
# Faults whose request reached the store before the answer went wrong.
COMMITTING = frozenset({"drop_after", "garbage", "empty_201", "no_id"})
# A lookup either answers or fails outright: it has nothing to store.
LOOKUP_FAULTS = frozenset({"429", "429_date", "503", "500", "timeout", "drop_before"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EARLY_TOLERANCE_SECONDS = 0.05


class FaultPlanError(ValueError):
    """A fault plan that cannot be used."""


@dataclass
class FaultPlan:
    """Which faults, how often, and how they behave. Shares are probabilities per request."""

    shares: dict[str, float] = field(default_factory=dict)
    lookup_shares: dict[str, float] = field(default_factory=dict)
    seed: int = 1
    retry_after: int = 1
    timeout_delay: float = 1.0
    timeout_commit_share: float = 0.5
    delay: float = 0.0  # every write answers this much later (keeps a worker's batch in flight)

    def __post_init__(self) -> None:
        for name, shares, allowed in (
            ("shares", self.shares, FAULTS),
            ("lookup_shares", self.lookup_shares, LOOKUP_FAULTS),
        ):
            if not isinstance(shares, dict):
                raise FaultPlanError(f"{name} must be an object of fault -> share")
            unknown = sorted(set(shares) - set(allowed))
            if unknown:
                raise FaultPlanError(f"{name}: unknown faults {unknown}; known: {sorted(allowed)}")
            if any(not isinstance(v, int | float) or v < 0 for v in shares.values()):
                raise FaultPlanError(f"{name}: every share is a number from 0 to 1")
            if sum(shares.values()) > 1.0 + 1e-9:
                raise FaultPlanError(f"{name}: the shares add up to more than 1")
        if not 0 <= self.timeout_commit_share <= 1:
            raise FaultPlanError("timeout_commit_share is a number from 0 to 1")
        if self.retry_after < 0 or self.timeout_delay < 0 or self.delay < 0:
            raise FaultPlanError("retry_after, timeout_delay and delay cannot be negative")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultPlanError(f"unknown plan settings {unknown}; known: {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise FaultPlanError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pick_fault(shares: Mapping[str, float], draw: float) -> str | None:
    """The fault a draw from [0, 1) lands on, the shares laid end to end in a fixed order."""
    edge = 0.0
    for name in FAULTS:
        edge += shares.get(name, 0.0)
        if draw < edge:
            return name
    return None


class FaultyTarget(Served):
    """The target's records, faults and counts, and the loopback server that serves them."""

    name = "faulty"
    # What the shared server's index page (GET /) describes.
    spec = SimpleNamespace(auth="api_key", resources=("<any collection>",))

    def __init__(
        self,
        *,
        plan: FaultPlan | None = None,
        api_key: str = DEFAULT_API_KEY,
        list_shape: str = "data",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if list_shape not in ("data", "list"):
            raise ValueError("list_shape is 'data' ({'data': [...]}) or 'list' (a bare JSON list)")
        self.api_key = api_key
        self.list_shape = list_shape
        self.host, self.port = host, port
        self.lock = threading.Lock()
        self._server: _FaultyServer | None = None
        self._thread: threading.Thread | None = None
        self.reset(plan)

    # -- state ----------------------------------------------------------------------------------

    def reset(self, plan: FaultPlan | None = None, *, api_key: str | None = None) -> None:
        """Forget every record and count, and start the fault plan (and its random draws) afresh;
        a new `api_key` turns away callers that still hold the old one."""
        with self.lock:
            self.api_key = api_key or self.api_key
            self.plan = plan or FaultPlan()
            self._rng = random.Random(self.plan.seed)
            self._ids = itertools.count(1001)
            self.records: dict[str, dict[str, Any]] = {}  # "collection/id" -> record
            self.injected: Counter[str] = Counter()
            self.answers: Counter[str] = Counter()
            self.requests: Counter[str] = Counter()
            self._keys_seen: set[str] = set()
            self.repeated_keys = 0
            self._not_before: dict[str, float] = {}
            self.early_retries = 0
            self.received: list[dict[str, Any]] = []

    def set_plan(self, plan: FaultPlan) -> None:
        with self.lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)

    def state(self) -> dict[str, Any]:
        with self.lock:
            per_external = self._per_external_locked()
            return {
                "records": sum(per_external.values()),
                "external_ids": len(per_external),
                "duplicates": sum(per_external.values()) - len(per_external),
                "most_copies": max(per_external.values(), default=0),
                "injected": dict(self.injected),
                "answers": dict(self.answers),
                "requests": dict(self.requests),
                "repeated_idempotency_keys": self.repeated_keys,
                "early_retries": self.early_retries,
                "plan": self.plan.to_dict(),
            }

    def counts(self) -> dict[str, int]:
        """Records stored per external id ("collection/external id")."""
        with self.lock:
            return dict(self._per_external_locked())

    def all_records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(record) for record in self.records.values()]

    def _per_external_locked(self) -> Counter[str]:
        return Counter(
            f"{record['_collection']}/{record.get('external_id') or record['id']}"
            for record in self.records.values()
        )

    # -- the vendor API -------------------------------------------------------------------------

    def handle_api(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        parts = [part for part in path.split("/") if part]
        if not parts or len(parts) > 2:
            return error_response(404, f"no such endpoint: {path}")
        params = dict(parse_qsl(query, keep_blank_values=True))
        with self.lock:
            self.requests[method] += 1
            record_body = _json_object(body) if method in ("POST", "PUT", "PATCH") else None
            external_id = self._external_id_locked(parts, params, record_body)
            self._check_pace_locked(external_id)
            shares = self.plan.shares if method in WRITE_METHODS else self.plan.lookup_shares
            fault = pick_fault(shares, self._rng.random())
            commit_on_timeout = self._rng.random() < self.plan.timeout_commit_share
            if fault:
                self.injected[fault] += 1
            self._remember_key_locked(method, headers.get("Idempotency-Key"))
        if headers.get("X-Api-Key") != self.api_key:
            return self._answer(error_response(401, "invalid API key"), "401")
        if method in WRITE_METHODS and self.plan.delay:
            time.sleep(self.plan.delay)
        if fault is None:
            return self._answer(self._serve(method, parts, params, record_body), "ok")
        return self._answer(
            self._fault(fault, method, parts, params, record_body, external_id, commit_on_timeout), fault
        )

    def _answer(self, response: Response, kind: str) -> Response:
        with self.lock:
            self.answers[kind] += 1
        return response

    def _fault(
        self,
        fault: str,
        method: str,
        parts: list[str],
        params: dict[str, str],
        record_body: Any,
        external_id: str | None,
        commit_on_timeout: bool,
    ) -> Response:
        if fault in ("429", "429_date", "503"):
            return self._slow_down(fault, external_id)
        if fault == "500":
            return error_response(500, "internal server error")
        if fault == "401":
            return error_response(401, "invalid API key")
        if fault == "422":
            return error_response(422, "validation failed", fields={"name": "is not acceptable"})
        if fault == "drop_before":
            return Response(0, drop=True)
        if fault == "timeout":
            answer = self._serve(method, parts, params, record_body) if commit_on_timeout else None
            time.sleep(self.plan.timeout_delay)
            return answer or error_response(504, "gave up")
        answer = self._serve(method, parts, params, record_body)  # the committing faults
        if fault == "drop_after" or answer.status >= 300:
            return Response(0, drop=True) if fault == "drop_after" else answer
        if fault == "garbage":
            return Response(200, b"<html><body>Record saved</body></html>", content_type="text/html")
        if fault == "empty_201":
            return Response(201, b"")
        return json_response(200, {"ok": True})

    def _slow_down(self, fault: str, external_id: str | None) -> Response:
        status = 503 if fault == "503" else 429
        now = time.time()
        if fault == "429_date":
            not_before = math.ceil(now + self.plan.retry_after)
            value = formatdate(not_before, usegmt=True)
        else:
            not_before, value = now + self.plan.retry_after, str(self.plan.retry_after)
        if external_id:
            with self.lock:
                self._not_before[external_id] = not_before
        message = "rate limit exceeded" if status == 429 else "service unavailable"
        return json_response(status, {"error": message}, {"Retry-After": value})

    def _serve(self, method: str, parts: list[str], params: dict[str, str], record_body: Any) -> Response:
        collection = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return self._list(collection, params)
            if method == "POST":
                return self._create(collection, record_body)
            return error_response(405, f"{method} is not allowed on a collection")
        key = f"{collection}/{parts[1]}"
        with self.lock:
            record = self.records.get(key)
            if record is None:
                return error_response(404, f"no record {parts[1]} in {collection}")
            if method == "GET":
                return json_response(200, _public(record))
            if method == "DELETE":
                del self.records[key]
                return Response(204)
            if not isinstance(record_body, dict):
                return error_response(400, "body must be a JSON object")
            if method == "PUT":
                kept = {k: record[k] for k in ("id", "_collection", "created_at")}
                record.clear()
                record.update(kept)
            record.update({k: v for k, v in record_body.items() if k not in ("id", "_collection")})
            record["updated_at"] = time.time()
            return json_response(200, _public(record))

    def _create(self, collection: str, record_body: Any) -> Response:
        if not isinstance(record_body, dict):
            return error_response(400, "body must be a JSON object")
        with self.lock:
            record_id = str(next(self._ids))
            now = time.time()
            record = {
                **{k: v for k, v in record_body.items() if k not in ("id", "_collection")},
                "id": record_id,
                "_collection": collection,
                "created_at": now,
                "updated_at": now,
            }
            self.records[f"{collection}/{record_id}"] = record
            self.received.append(
                {"id": record_id, "resource": collection, "record": _public(record), "received_at": now}
            )
        return json_response(201, _public(record), {"Location": f"/{collection}/{record_id}"})

    def _list(self, collection: str, params: dict[str, str]) -> Response:
        filters = {k: v for k, v in params.items() if k not in ("limit", "page")}
        with self.lock:
            found = [
                _public(record)
                for record in self.records.values()
                if record["_collection"] == collection
                and all(str(record.get(k)) == v for k, v in filters.items())
            ]
        if self.list_shape == "list":
            return json_response(200, found)
        return json_response(200, {"data": found, "next": None})

    def _external_id_locked(self, parts: list[str], params: dict[str, str], record_body: Any) -> str | None:
        """The external id a request is about, for the Retry-After check."""
        if isinstance(record_body, dict) and record_body.get("external_id") not in (None, ""):
            return f"{parts[0]}/{record_body['external_id']}"
        if len(parts) == 1 and params.get("external_id"):
            return f"{parts[0]}/{params['external_id']}"
        record = self.records.get("/".join(parts)) if len(parts) == 2 else None
        if record and record.get("external_id"):
            return f"{parts[0]}/{record['external_id']}"
        return None

    def _check_pace_locked(self, external_id: str | None) -> None:
        """Count a request about a record that came before its Retry-After said it may."""
        if not external_id or external_id not in self._not_before:
            return
        if time.time() < self._not_before.pop(external_id) - EARLY_TOLERANCE_SECONDS:
            self.early_retries += 1

    def _remember_key_locked(self, method: str, key: str | None) -> None:
        """Count writes that repeat an Idempotency-Key: resends this target does not recognise."""
        if method not in WRITE_METHODS or not key:
            return
        if key in self._keys_seen:
            self.repeated_keys += 1
        self._keys_seen.add(key)

    # -- the control API (no auth) ---------------------------------------------------------------

    def handle_control(self, method: str, path: str, query: str, body: bytes) -> Response:
        action = path.removeprefix("/_control/").strip("/")
        try:
            if (method, action) == ("GET", "state"):
                return json_response(200, self.state())
            if (method, action) == ("GET", "counts"):
                return json_response(200, self.counts())
            if (method, action) == ("GET", "records"):
                return json_response(200, [_public(r) for r in self.all_records()])
            if (method, action) == ("GET", "received"):
                with self.lock:
                    return json_response(200, list(self.received))
            if (method, action) == ("GET", "faults"):
                return json_response(200, self.plan.to_dict())
            if (method, action) == ("PUT", "faults"):
                data = json.loads(body or b"{}")
                if not isinstance(data, dict):
                    raise FaultPlanError("the plan must be a JSON object")
                self.set_plan(FaultPlan.from_dict(data))
                return json_response(200, self.plan.to_dict())
            if (method, action) == ("DELETE", "faults"):
                self.set_plan(FaultPlan(seed=self.plan.seed))
                return Response(204)
            if (method, action) == ("POST", "reset"):
                self.reset()
                return Response(204)
        except (ValueError, FaultPlanError) as exc:
            return error_response(400, str(exc))
        return error_response(404, f"no such control endpoint: {method} {path}")

    # -- serving --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FaultyTarget:
        if self._server is None:
            self._server = _FaultyServer((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_open_connections()
        if self._thread:
            self._thread.join(2.0)


class _FaultyServer(_SystemServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (read timeout) before a late answer is what this target is for.
        pass


def _json_object(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "_collection"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.sandbox.faulty",
        description="Run a REST target that ignores Idempotency-Key and injects faults.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8110)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--share",
        action="append",
        type=functools.partial(name_and_number, expected="FAULT=SHARE, e.g. drop_after=0.05"),
        default=[],
        metavar="FAULT=SHARE",
        help=f"a fault's share of write requests (repeatable): {', '.join(FAULTS)}",
    )
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--timeout-delay", type=float, default=1.0)
    parser.add_argument("--timeout-commit-share", type=float, default=0.5)
    args = parser.parse_args(argv)
    try:
        plan = FaultPlan(
            shares=dict(args.share),
            seed=args.seed,
            retry_after=args.retry_after,
            timeout_delay=args.timeout_delay,
            timeout_commit_share=args.timeout_commit_share,
        )
    except FaultPlanError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FaultyTarget(plan=plan, api_key=args.api_key, host=args.host, port=args.port) as target:
        print(f"faulty {target.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
