"""The bench's target: a lean aiohttp server that stores records and answers after a set latency.

The sandbox systems (connectors/sandbox) are faithful vendor APIs served by the standard library,
a thread per connection; under a benchmark their own CPU competes with the hub's on the same
cores. This target does the least a real one must: check the API key, keep each record, answer
``201 {"id": ...}``. ``--latency-ms N`` delays every answer by N ms with ``asyncio.sleep``, so
thousands of requests can wait at once and nothing serialises them, as a remote API whose calls
take N ms behaves::

    python -m hub.management.benchkit.target --port 8120 --latency-ms 50

Routes: ``POST /<resource>`` creates; ``GET``, ``PATCH``, ``PUT`` and ``DELETE`` on
``/<resource>/<id>`` read, change and remove. A repeated ``Idempotency-Key`` gets the first
answer again without a second record, as the inventory sandbox does. ``GET /_control/received``
lists every create (``resource``, ``id``, ``received_at`` = ``time.time()`` on arrival,
``record``) in the shape `manage.py bench` reads from the sandbox; ``GET /_control/state`` gives
the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiohttp import web

try:
    import uvloop
except ImportError:  # the standard event loop serves too, with more CPU per request
    uvloop = None

DEFAULT_API_KEY = "inv-demo-key"  # the inventory sandbox's demo key, which the bench's target system holds


class BenchTarget:
    """Records in memory, every create's arrival, and counts of what was asked."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, latency_ms: float = 0.0) -> None:
        self.api_key = api_key
        self.latency = latency_ms / 1000
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.received: list[dict[str, Any]] = []
        self.answers: dict[str, tuple[int, bytes]] = {}  # Idempotency-Key -> the first answer
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app["target"] = self
        app.router.add_get("/_control/received", self.control_received)
        app.router.add_get("/_control/state", self.control_state)
        app.router.add_post("/{resource}", self.api)
        app.router.add_route("*", "/{resource}/{record_id}", self.api)
        return app

    async def api(self, request: web.Request) -> web.Response:
        arrived = time.time()
        if request.headers.get("X-Api-Key") != self.api_key:
            self.counts["unauthorised"] += 1
            return _json(401, {"error": "invalid API key"})
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            body = await request.read()
            key = request.headers.get("Idempotency-Key")
            if key and key in self.answers:
                self.counts["replayed"] += 1
                status, payload = self.answers[key]
            else:
                status, payload = self.serve(request, body, arrived)
                if key and 200 <= status < 300:
                    self.answers[key] = (status, payload)
            if self.latency:
                await asyncio.sleep(self.latency)
            return web.Response(status=status, body=payload, content_type="application/json")
        finally:
            self.in_flight -= 1

    def serve(self, request: web.Request, body: bytes, arrived: float) -> tuple[int, bytes]:
        """One call's status and JSON body; a create is recorded as received at `arrived`."""
        resource = request.match_info["resource"]
        record_id = request.match_info.get("record_id")
        store = self.records.setdefault(resource, {})
        method = request.method
        self.counts[method] += 1
        if record_id is None:  # POST /<resource>
            data = _object(body)
            if data is None:
                return 400, b'{"error": "the body must be a JSON object"}'
            record = {**data, "id": f"{resource[:3]}-{next(self._ids)}"}
            store[record["id"]] = record
            self.received.append(
                {"resource": resource, "id": record["id"], "received_at": arrived, "record": record}
            )
            return 201, json.dumps(record).encode()
        record = store.get(record_id)
        if record is None:
            return 404, b'{"error": "not found"}'
        if method == "GET":
            return 200, json.dumps(record).encode()
        if method == "DELETE":
            del store[record_id]
            return 204, b""
        if method not in ("PATCH", "PUT"):
            return 405, b'{"error": "method not allowed"}'
        data = _object(body)
        if data is None:
            return 400, b'{"error": "the body must be a JSON object"}'
        record = {**(record if method == "PATCH" else {}), **data, "id": record_id}
        store[record_id] = record
        return 200, json.dumps(record).encode()

    async def control_received(self, request: web.Request) -> web.Response:
        return web.json_response(self.received)

    async def control_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "system": "bench-target",
                "latency_ms": self.latency * 1000,
                "counts": {name: len(store) for name, store in self.records.items()},
                "requests": dict(self.counts),
                "in_flight": self.in_flight,
                "most_in_flight": self.most_in_flight,
                "idempotency_keys": len(self.answers),
            }
        )


def _object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _json(status: int, data: dict[str, Any]) -> web.Response:
    return web.json_response(data, status=status)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub.management.benchkit.target",
        description="Serve the bench's target: records kept in memory, each answer after --latency-ms.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8120)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be 0 or more")
    target = BenchTarget(api_key=args.api_key, latency_ms=args.latency_ms)
    print(f"bench target on http://{args.host}:{args.port}, answers after {args.latency_ms:g} ms", flush=True)
    web.run_app(
        target.app(),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        backlog=4096,
        loop=uvloop.new_event_loop() if uvloop else None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
