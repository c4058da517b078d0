"""One sandbox business system: records, auth, rate limit, faults, idempotency and the control API.

Everything here is transport-agnostic: the HTTP layer hands in method, path, query, headers and
body and writes back the returned :class:`Response`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .config import DEMO_CREDENTIALS, DEMO_WEBHOOK_SECRETS
from .faults import AFTER_COMMIT, Fault, FaultError, SlidingWindow
from .specs import SYSTEM_SPECS, TYPE_CHECKS, ResourceSpec
from .store import ResourceStore, decode_page_token, encode_page_token
from .timeutil import MonotonicClock, normalize_timestamp
from .webhooks import WebhookConfig, WebhookSender

REQUEST_LOG_SIZE = 10_000
IDEMPOTENCY_STORE_SIZE = 100_000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
TOKEN_TTL_SECONDS = 3600
LOGGED_HEADERS = ("Idempotency-Key", "Content-Type", "User-Agent", "X-Request-Id")
_LIST_PARAMS = frozenset({"updated_since", "limit", "page"})
_JSON = "application/json"


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = _JSON
    drop: bool = False  # close the connection without answering


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = b"" if status == 204 else json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, headers or {})


def error_response(status: int, message: str, **extra: Any) -> Response:
    return json_response(status, {"error": message, **extra})


class ApiError(Exception):
    """Raised inside request handling; becomes a JSON error response."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields

    def response(self) -> Response:
        if self.fields:
            return error_response(self.status, self.message, fields=self.fields)
        return error_response(self.status, self.message)


@dataclass(slots=True)
class _Outcome:
    """Result of a write: the response plus webhook events to emit."""

    response: Response
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class SandboxSystem:
    """State and behaviour of one fake vendor API. Safe to use from many threads."""

    def __init__(
        self,
        name: str,
        *,
        rate_limit: float | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        duplicate_rate: float = 0.05,
        webhooks_enabled: bool | None = None,
    ) -> None:
        if name not in SYSTEM_SPECS:
            raise ValueError(f"unknown sandbox system {name!r}")
        self.name = name
        self.spec = SYSTEM_SPECS[name]
        self.credentials: dict[str, str] = dict(DEMO_CREDENTIALS[name])
        self.lock = threading.Lock()
        self._rng = random.Random()
        self._clock = MonotonicClock()
        self._next_number = 0  # ids are never reused, not even after reset
        self._initial_rate_limit = rate_limit
        self._tokens: dict[str, float] = {}
        self.webhooks = WebhookSender(
            name,
            self.spec.signature,
            WebhookConfig(
                url=webhook_url,
                secret=webhook_secret if webhook_secret is not None else DEMO_WEBHOOK_SECRETS[name],
                duplicate_rate=duplicate_rate,
                enabled=bool(webhook_url) if webhooks_enabled is None else webhooks_enabled,
            ),
        )
        self._reset_locked()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.webhooks.start()

    def stop(self) -> None:
        self.webhooks.stop()

    def reset(self) -> None:
        """Wipe records (re-seeding demo data), request log, faults, idempotency keys and counters."""
        with self.lock:
            self._reset_locked()
        self.webhooks.reset_stats()

    def _reset_locked(self) -> None:
        self.stores: dict[str, ResourceStore] = {name: ResourceStore() for name in self.spec.resources}
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.faults: list[Fault] = []
        self._idempotency: OrderedDict[str, tuple[str, str, Response]] = OrderedDict()
        # How the records of each resource are sent (API reads and webhooks), as a new release of
        # the vendor's API would change them: {"rename": {old: new}, "as_text": [field, ...]}.
        self.shapes: dict[str, dict[str, Any]] = {}
        self._received: dict[str, tuple[str, float]] = {}
        self._window = SlidingWindow()
        self.rate_limit: float | None = self._initial_rate_limit
        self.rate_limit_enforced = True
        self.total_requests = 0
        self.throttled = 0
        self.over_limit = 0
        self.faults_applied = 0
        now = time.time()
        for resource, records in self.spec.seed.items():
            for record in records:
                self._create_locked(self.spec.resources[resource], dict(record), self._clock.tick(), now, [])

    # -- direct (in-process) access ----------------------------------------------------------------

    def records(self, resource: str) -> list[dict[str, Any]]:
        """All records of a resource, ordered by (updated_at, id)."""
        with self.lock:
            return self._store(resource).ordered()

    def get(self, resource: str, record_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self._store(resource).get(record_id)

    def add_fault(self, mode: str, **options: Any) -> dict[str, Any]:
        """Activate a fault, e.g. ``add_fault("500", count=3)`` or ``add_fault("slow", delay=2, rate=0.5)``."""
        fault = Fault.from_dict({"mode": mode, **options})
        with self.lock:
            self.faults.append(fault)
            return fault.to_dict()

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def set_rate_limit(self, per_second: float | None, *, enforce: bool = True) -> None:
        """``enforce=False`` only counts over-limit arrivals (``over_limit``) without answering 429."""
        if per_second is not None and (
            isinstance(per_second, bool) or not isinstance(per_second, int | float) or per_second <= 0
        ):
            raise ValueError("per_second must be a positive number or None")
        with self.lock:
            self.rate_limit = None if per_second is None else float(per_second)
            self.rate_limit_enforced = enforce
            self._window.clear()

    def configure_webhook(
        self,
        *,
        url: str | None = None,
        secret: str | None = None,
        duplicate_rate: float | None = None,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        """Change outbound webhook settings; giving a url enables sending unless ``enabled=False``."""
        if duplicate_rate is not None and not 0 <= duplicate_rate <= 1:
            raise ValueError("duplicate_rate must be between 0 and 1")
        config = self.webhooks.config
        if url is not None:
            config.url = url
        if secret is not None:
            config.secret = secret
        if duplicate_rate is not None:
            config.duplicate_rate = float(duplicate_rate)
        if enabled is not None:
            config.enabled = enabled
        elif url is not None:
            config.enabled = True
        return config.to_dict()

    def requests_since(self, since: float = 0.0) -> list[dict[str, Any]]:
        with self.lock:
            return [entry for entry in self.request_log if entry["received_at"] >= since]

    def received(self) -> list[dict[str, Any]]:
        """Every record created since the last reset: when its create arrived, and its current state."""
        with self.lock:
            return [
                {
                    "resource": resource,
                    "id": record_id,
                    "received_at": received_at,
                    "record": self.stores[resource].get(record_id),
                }
                for record_id, (resource, received_at) in self._received.items()
            ]

    def touch(self, resource: str, ids: Iterable[str] | None, updated_at: str) -> int:
        """Set ``updated_at`` of records (all when ids is None) to an exact value; no webhooks."""
        stamp = normalize_timestamp(updated_at)
        with self.lock:
            store = self._store(resource)
            wanted = list(store.records) if ids is None else list(ids)
            missing = [record_id for record_id in wanted if store.get(record_id) is None]
            if missing:
                raise KeyError(f"unknown {resource} ids: {', '.join(missing[:5])}")
            for record_id in wanted:
                store.put({**store.records[record_id], "updated_at": stamp})
            return len(wanted)

    def seed(
        self, resource: str, records: Iterable[dict[str, Any]], updated_at: str | None = None
    ) -> list[dict[str, Any]]:
        """Bulk-create records without webhooks (validation applies; all-or-nothing)."""
        stamp = normalize_timestamp(updated_at) if updated_at is not None else None
        records = list(records)
        with self.lock:
            spec = self._spec(resource)
            for position, data in enumerate(records):
                if not isinstance(data, dict):
                    raise ApiError(422, f"records[{position}] must be an object")
                # Dry run first so a bad record in the batch leaves nothing half-seeded.
                draft = self._prepare_new(spec, data, stamp or self._clock.tick(), self._peek_id(spec))
                self._validate(spec, draft, check_refs=True)
            received_at = time.time()
            return [
                self._create_locked(spec, dict(data), stamp or self._clock.tick(), received_at, [])
                for data in records
            ]

    def expire_tokens(self) -> None:
        """Invalidate every issued OAuth token (accounting), so clients must fetch a new one."""
        with self.lock:
            self._tokens.clear()

    def state(self) -> dict[str, Any]:
        with self.lock:
            self._drop_expired_faults_locked()
            state = {
                "system": self.name,
                "counts": {name: len(store) for name, store in self.stores.items()},
                "faults": [fault.to_dict() for fault in self.faults],
                "rate_limit": self.rate_limit,
                "rate_limit_enforced": self.rate_limit_enforced,
                "requests": self.total_requests,
                "throttled": self.throttled,
                "over_limit": self.over_limit,
                "faults_applied": self.faults_applied,
                "idempotency_keys": len(self._idempotency),
            }
        state["webhooks"] = self.webhooks.snapshot()
        return state

    # -- HTTP entry points -----------------------------------------------------------------------

    def handle_api(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        """Serve one request to the vendor API (anything outside ``/_control/``)."""
        received_at = time.time()
        parts = [part for part in path.split("/") if part]
        fault_mode: str | None = None
        if self.spec.auth == "oauth2" and parts == ["oauth", "token"]:
            response = self._token_endpoint(method, headers, body)
        elif parts and parts[0] in self.spec.resources and len(parts) <= 2:
            response, fault_mode = self._resource_request(method, parts, query, headers, body, received_at)
        else:
            response = error_response(404, f"no such endpoint: {path}")
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "status": None if response.drop else response.status,
            "received_at": received_at,
            "duration_ms": round((time.time() - received_at) * 1000, 3),
            "body_size": len(body),
            "headers": {name: headers[name] for name in LOGGED_HEADERS if headers.get(name) is not None},
            "fault": fault_mode,
        }
        with self.lock:
            self.request_log.append(entry)
        return response

    def handle_control(self, method: str, path: str, query: str, body: bytes) -> Response:
        """Serve ``/_control/...``: unauthenticated test and benchmark controls."""
        action = path.removeprefix("/_control/").strip("/")
        handler = _CONTROL_ROUTES.get((method, action))
        if handler is None:
            return error_response(404, f"no such control endpoint: {method} {path}")
        try:
            data = _parse_json(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ApiError(400, "body must be a JSON object")
            return handler(self, data, _parse_query(query))
        except ApiError as exc:
            return exc.response()
        except (ValueError, FaultError) as exc:
            return error_response(400, str(exc))
        except KeyError as exc:
            return error_response(404, str(exc.args[0]) if exc.args else "not found")

    # -- resource requests -----------------------------------------------------------------------

    def _resource_request(
        self,
        method: str,
        parts: list[str],
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        received_at: float,
    ) -> tuple[Response, str | None]:
        resource = parts[0]
        with self.lock:
            self.total_requests += 1
            admitted, window_full = self._window.check(received_at, self.rate_limit, self.rate_limit_enforced)
            if window_full:
                self.over_limit += 1
            if not admitted:
                self.throttled += 1
                response = error_response(429, "rate limit exceeded")
                response.headers.update(_retry_after(1))
                return response, None
            fault = self._pick_fault(method, resource)
        if fault is not None and fault.mode not in AFTER_COMMIT:
            if fault.mode != "slow":
                return _fault_response(fault), fault.mode
            time.sleep(fault.delay)
        if not self._authenticated(headers):
            return error_response(401, "invalid credentials"), (fault.mode if fault else None)
        try:
            response = self._dispatch(method, parts, query, headers, body, received_at)
        except ApiError as exc:
            response = exc.response()
        if fault is not None and fault.mode in AFTER_COMMIT:
            return _fault_response(fault), fault.mode
        return response, (fault.mode if fault else None)

    def _pick_fault(self, method: str, resource: str) -> Fault | None:
        self._drop_expired_faults_locked()
        for fault in self.faults:
            if fault.matches(method, resource) and fault.roll(self._rng):
                fault.applied += 1
                self.faults_applied += 1
                if fault.exhausted:
                    self.faults.remove(fault)
                return fault
        return None

    def _drop_expired_faults_locked(self) -> None:
        now = time.time()
        self.faults[:] = [fault for fault in self.faults if not fault.expired(now)]

    def _dispatch(
        self,
        method: str,
        parts: list[str],
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        received_at: float,
    ) -> Response:
        spec = self.spec.resources[parts[0]]
        record_id = parts[1] if len(parts) == 2 else None
        allowed = ("GET", "PUT", "PATCH", "DELETE") if record_id else ("GET", "POST")
        if method not in allowed:
            response = error_response(405, f"method {method} not allowed here")
            response.headers["Allow"] = ", ".join(allowed)
            return response
        if method == "GET":
            return self._list(spec, query) if record_id is None else self._retrieve(spec, record_id)

        data: dict[str, Any] | None = None
        parse_error: ApiError | None = None
        if method != "DELETE":
            try:
                parsed = _parse_json(body)
            except ApiError as exc:
                parse_error = exc
            else:
                if isinstance(parsed, dict):
                    data = parsed
                else:
                    parse_error = ApiError(400, "request body must be a JSON object")

        key = headers.get("Idempotency-Key")
        with self.lock:
            if key:
                stored = self._idempotency.get(key)
                if stored is not None:
                    stored_method, stored_path, stored_response = stored
                    if (stored_method, stored_path) != (method, "/".join(parts)):
                        raise ApiError(422, "Idempotency-Key was already used for a different request")
                    return Response(
                        stored_response.status,
                        stored_response.body,
                        {**stored_response.headers, "Idempotent-Replayed": "true"},
                    )
            if parse_error is not None:
                raise parse_error
            outcome = self._write_locked(method, spec, record_id, data, received_at)
            if key and 200 <= outcome.response.status < 300:
                # Only successful results are kept, so a corrected retry with the same key can succeed.
                self._idempotency[key] = (method, "/".join(parts), outcome.response)
                if len(self._idempotency) > IDEMPOTENCY_STORE_SIZE:
                    self._idempotency.popitem(last=False)
            # Emitting under the lock keeps webhook order equal to change order.
            for event_type, record in outcome.events:
                self.webhooks.emit(event_type, self._as_sent(spec.name, record))
        return outcome.response

    def _list(self, spec: ResourceSpec, query: str) -> Response:
        params = _parse_query(query)
        since = after = None
        try:
            if params.get("updated_since"):
                since = normalize_timestamp(params["updated_since"])
        except ValueError as exc:
            raise ApiError(400, "updated_since must be an ISO-8601 timestamp") from exc
        if params.get("page"):
            try:
                after = decode_page_token(params["page"])
            except ValueError as exc:
                raise ApiError(400, "invalid page token") from exc
        try:
            limit = int(params.get("limit") or DEFAULT_PAGE_SIZE)
        except ValueError as exc:
            raise ApiError(400, "limit must be an integer") from exc
        if limit < 1:
            raise ApiError(400, "limit must be at least 1")
        limit = min(limit, MAX_PAGE_SIZE)
        filters = {name: value for name, value in params.items() if name not in _LIST_PARAMS}
        with self.lock:
            items, next_key = self.stores[spec.name].page(
                since=since, after=after, limit=limit, filters=filters
            )
            items = [self._as_sent(spec.name, item) for item in items]
        return json_response(200, {"data": items, "next": encode_page_token(next_key) if next_key else None})

    def _retrieve(self, spec: ResourceSpec, record_id: str) -> Response:
        with self.lock:
            record = self.stores[spec.name].get(record_id)
            if record is not None:
                record = self._as_sent(spec.name, record)
        if record is None:
            raise ApiError(404, f"{spec.noun} {record_id} not found")
        return json_response(200, record)

    def _as_sent(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """A stored record as the API sends it now (top-level fields renamed or sent as text)."""
        shape = self.shapes.get(resource)
        if not shape:
            return record
        sent = {shape["rename"].get(key, key): value for key, value in record.items()}
        for name in shape["as_text"]:
            if sent.get(name) is not None:
                sent[name] = str(sent[name])
        return sent

    def _write_locked(
        self,
        method: str,
        spec: ResourceSpec,
        record_id: str | None,
        data: dict[str, Any] | None,
        received_at: float,
    ) -> _Outcome:
        store = self.stores[spec.name]
        events: list[tuple[str, dict[str, Any]]] = []
        if method == "POST":
            assert data is not None
            record = self._create_locked(spec, data, self._clock.tick(), received_at, events)
            return _Outcome(json_response(201, record), events)

        assert record_id is not None
        old = store.get(record_id)
        if old is None:
            raise ApiError(404, f"{spec.noun} {record_id} not found")
        if method == "DELETE":
            store.delete(record_id)
            _add_event(events, spec.event_name("deleted"), old)
            return _Outcome(json_response(204, None), events)

        assert data is not None
        fields = _client_fields(data)
        now = self._clock.tick()
        if method == "PUT":
            merged = self._apply_defaults(spec, {"id": record_id, **fields}, now)
        else:
            merged = {**old, **fields}
        self._validate(spec, merged, check_refs=False)
        record = {
            "id": record_id,
            **{name: value for name, value in merged.items() if name not in _SERVER_FIELDS},
            "created_at": old["created_at"],
            "updated_at": now,
        }
        store.put(record)
        _add_event(events, spec.event_name("updated"), record)
        self._add_transition_event(spec, old, record, events)
        return _Outcome(json_response(200, record), events)

    def _create_locked(
        self,
        spec: ResourceSpec,
        data: dict[str, Any],
        now: str,
        received_at: float,
        events: list[tuple[str, dict[str, Any]]],
    ) -> dict[str, Any]:
        """Validate, store and apply side effects of a new record; append its webhook events."""
        record_id = self._peek_id(spec)
        prepared = self._prepare_new(spec, data, now, record_id)
        self._validate(spec, prepared, check_refs=True)
        self._next_number += 1
        record = {**prepared, "created_at": now, "updated_at": now}
        self.stores[spec.name].put(record)
        self._received[record_id] = (spec.name, received_at)
        _add_event(events, spec.event_name("created"), record)
        self._add_transition_event(spec, None, record, events)
        if spec.name == "adjustments":
            self._apply_adjustment(record, now, events)
        return record

    def _peek_id(self, spec: ResourceSpec) -> str:
        return f"{spec.prefix}_{self._next_number + 1:06d}"

    def _prepare_new(
        self, spec: ResourceSpec, data: dict[str, Any], now: str, record_id: str
    ) -> dict[str, Any]:
        return self._apply_defaults(spec, {"id": record_id, **_client_fields(data)}, now)

    @staticmethod
    def _apply_defaults(spec: ResourceSpec, record: dict[str, Any], now: str) -> dict[str, Any]:
        computed = []
        for name, default in spec.defaults.items():
            if record.get(name) is not None:
                continue
            if callable(default):
                computed.append((name, default))
            else:
                record[name] = default
        for name, factory in computed:
            record[name] = factory(record, now)
        return record

    def _validate(self, spec: ResourceSpec, record: dict[str, Any], *, check_refs: bool) -> None:
        errors: dict[str, str] = {}
        for name in spec.required:
            if record.get(name) in (None, ""):
                errors[name] = "required"
        for name, kind in spec.types.items():
            value = record.get(name)
            if value is None or name in errors:
                continue
            check, message = TYPE_CHECKS[kind]
            if not check(value):
                errors[name] = message
        for name, options in spec.choices.items():
            value = record.get(name)
            if value is not None and name not in errors and value not in options:
                errors[name] = f"must be one of {', '.join(options)}"
        if spec.validator is not None:
            for name, message in spec.validator(record).items():
                errors.setdefault(name, message)
        if errors:
            raise ApiError(422, "validation failed", errors)
        if spec.name == "products":
            self._check_unique_sku(record)
        if check_refs and spec.name == "adjustments":
            lookup = self._products_by_sku()
            for index, line in enumerate(record["lines"]):
                if line["sku"] not in lookup:
                    raise ApiError(
                        422,
                        f"unknown sku {line['sku']}",
                        {f"lines[{index}].sku": f"unknown sku {line['sku']}"},
                    )

    def _check_unique_sku(self, record: dict[str, Any]) -> None:
        existing = self._products_by_sku().get(record["sku"])
        if existing is not None and existing["id"] != record["id"]:
            raise ApiError(422, f"sku {record['sku']} already exists", {"sku": "already exists"})

    def _products_by_sku(self) -> dict[str, dict[str, Any]]:
        return {product["sku"]: product for product in self.stores["products"].records.values()}

    def _apply_adjustment(
        self, adjustment: dict[str, Any], now: str, events: list[tuple[str, dict[str, Any]]]
    ) -> None:
        products = self._products_by_sku()
        changed: dict[str, dict[str, Any]] = {}
        for line in adjustment["lines"]:
            product = changed.get(line["sku"]) or products[line["sku"]]
            changed[line["sku"]] = {
                **product,
                "stock": (product.get("stock") or 0) + line["quantity"],
                "updated_at": now,
            }
        for product in changed.values():
            self.stores["products"].put(product)
            _add_event(events, "product.updated", product)

    @staticmethod
    def _add_transition_event(
        spec: ResourceSpec,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        events: list[tuple[str, dict[str, Any]]],
    ) -> None:
        if spec.transition is None:
            return
        name, events_by_value = spec.transition
        value = new.get(name)
        if value in events_by_value and (old is None or old.get(name) != value):
            events.append((events_by_value[value], new))

    # -- auth ------------------------------------------------------------------------------------

    def _authenticated(self, headers: Mapping[str, str]) -> bool:
        credentials = self.credentials
        auth = self.spec.auth
        if auth == "api_key":
            return _same(headers.get("X-Api-Key"), credentials["api_key"])
        scheme, _, value = (headers.get("Authorization") or "").partition(" ")
        scheme = scheme.lower()
        if auth == "bearer":
            return scheme == "bearer" and _same(value.strip(), credentials["token"])
        if auth == "basic":
            user, password = _basic_credentials(scheme, value)
            return _same(user, credentials["username"]) & _same(password, credentials["password"])
        if auth == "oauth2":
            if scheme != "bearer":
                return False
            with self.lock:
                expires_at = self._tokens.get(value.strip())
            return expires_at is not None and expires_at > time.time()
        return False

    def _token_endpoint(self, method: str, headers: Mapping[str, str], body: bytes) -> Response:
        """OAuth2 client-credentials grant (RFC 6749 section 4.4)."""
        if method != "POST":
            return error_response(405, "use POST")
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form: dict[str, str]
        if content_type == _JSON:
            try:
                parsed = json.loads(body or b"{}")
            except ValueError:
                return json_response(400, {"error": "invalid_request"})
            form = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
        else:
            form = _parse_query(body.decode("utf-8", "replace"))
        if form.get("grant_type") != "client_credentials":
            return json_response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
            )
        scheme, _, value = (headers.get("Authorization") or "").partition(" ")
        client_id, client_secret = _basic_credentials(scheme.lower(), value)
        if client_id is None:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        valid = _same(client_id, self.credentials["client_id"]) & _same(
            client_secret, self.credentials["client_secret"]
        )
        if not valid:
            return json_response(
                401,
                {"error": "invalid_client", "error_description": "invalid credentials"},
                {"WWW-Authenticate": 'Basic realm="accounting"'},
            )
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self.lock:
            if len(self._tokens) > 1000:
                self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + TOKEN_TTL_SECONDS
        return json_response(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS},
            {"Cache-Control": "no-store"},
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _store(self, resource: str) -> ResourceStore:
        if resource not in self.stores:
            raise KeyError(f"{self.name} has no resource {resource!r}")
        return self.stores[resource]

    def _spec(self, resource: str) -> ResourceSpec:
        if resource not in self.spec.resources:
            raise KeyError(f"{self.name} has no resource {resource!r}")
        return self.spec.resources[resource]


# -- control API ---------------------------------------------------------------------------------


def _control_state(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    return json_response(200, system.state())


def _control_list_faults(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    with system.lock:
        system._drop_expired_faults_locked()
        return json_response(200, {"faults": [fault.to_dict() for fault in system.faults]})


def _control_add_fault(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    fault = Fault.from_dict(data)
    with system.lock:
        system.faults.append(fault)
    return json_response(201, fault.to_dict())


def _control_clear_faults(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    system.clear_faults()
    return json_response(200, {"faults": []})


def _control_rate_limit(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    if "per_second" not in data:
        raise ApiError(422, "per_second is required (a number or null)", {"per_second": "required"})
    system.set_rate_limit(data["per_second"], enforce=bool(data.get("enforce", True)))
    return json_response(200, {"rate_limit": system.rate_limit, "enforce": system.rate_limit_enforced})


def _control_requests(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    since = float(query.get("since") or 0)
    return json_response(200, system.requests_since(since))


def _control_received(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    return json_response(200, system.received())


def _control_reset(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    system.reset()
    return json_response(200, system.state())


def _control_webhook(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    unknown = set(data) - {"url", "secret", "duplicate_rate", "enabled"}
    if unknown:
        raise ApiError(422, f"unknown settings: {', '.join(sorted(unknown))}")
    duplicate_rate = data.get("duplicate_rate")
    if duplicate_rate is not None and not isinstance(duplicate_rate, int | float):
        raise ApiError(422, "duplicate_rate must be a number", {"duplicate_rate": "must be a number"})
    config = system.configure_webhook(
        url=data.get("url"),
        secret=data.get("secret"),
        duplicate_rate=duplicate_rate,
        enabled=data.get("enabled"),
    )
    return json_response(200, config)


def _control_get_webhook(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    return json_response(200, system.webhooks.snapshot())


def _control_touch(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    resource, updated_at, ids = data.get("resource"), data.get("updated_at"), data.get("ids")
    if not isinstance(resource, str) or not isinstance(updated_at, str):
        raise ApiError(422, "resource and updated_at are required")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise ApiError(422, "ids must be a list of strings")
    return json_response(200, {"touched": system.touch(resource, ids, updated_at)})


def _control_seed(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    resource, records = data.get("resource"), data.get("records")
    if not isinstance(resource, str) or not isinstance(records, list):
        raise ApiError(422, "resource and records (a list) are required")
    created = system.seed(resource, records, data.get("updated_at"))
    return json_response(201, {"data": created})


def _control_shape(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    resource, rename, as_text = data.get("resource"), data.get("rename") or {}, data.get("as_text") or []
    if resource not in system.spec.resources:
        raise ApiError(422, f"resource must be one of {', '.join(system.spec.resources)}")
    if not isinstance(rename, dict) or not all(isinstance(v, str) for v in rename.values()):
        raise ApiError(422, "rename must map field names to new names")
    if not isinstance(as_text, list) or not all(isinstance(v, str) for v in as_text):
        raise ApiError(422, "as_text must be a list of field names")
    with system.lock:
        system.shapes[resource] = {"rename": dict(rename), "as_text": list(as_text)}
    return json_response(200, {"resource": resource, "rename": rename, "as_text": as_text})


def _control_expire_tokens(system: SandboxSystem, data: dict[str, Any], query: dict[str, str]) -> Response:
    system.expire_tokens()
    return json_response(200, {"expired": True})


_CONTROL_ROUTES = {
    ("GET", "state"): _control_state,
    ("GET", "faults"): _control_list_faults,
    ("POST", "faults"): _control_add_fault,
    ("DELETE", "faults"): _control_clear_faults,
    ("PUT", "rate-limit"): _control_rate_limit,
    ("GET", "requests"): _control_requests,
    ("GET", "received"): _control_received,
    ("POST", "reset"): _control_reset,
    ("GET", "webhook"): _control_get_webhook,
    ("PUT", "webhook"): _control_webhook,
    ("POST", "touch"): _control_touch,
    ("POST", "seed"): _control_seed,
    ("POST", "expire-tokens"): _control_expire_tokens,
    ("PUT", "shape"): _control_shape,
}


# -- module helpers ------------------------------------------------------------------------------

_SERVER_FIELDS = frozenset({"id", "created_at", "updated_at"})


def _client_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in data.items() if name not in _SERVER_FIELDS}


def _add_event(
    events: list[tuple[str, dict[str, Any]]], event_type: str | None, record: dict[str, Any]
) -> None:
    if event_type is not None:
        events.append((event_type, record))


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "request body is not valid JSON") from exc


def _parse_query(query: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}


def _same(given: str | None, expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic_credentials(scheme: str, value: str) -> tuple[str | None, str | None]:
    if scheme != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, None)


def _retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


def _fault_response(fault: Fault) -> Response:
    mode = fault.mode
    if mode in ("drop", "drop_after"):
        return Response(0, drop=True)
    if mode == "garbage":
        return Response(200, b"<html><body>oops</body></html>", content_type="text/html")
    if mode == "401":
        return error_response(401, "invalid credentials")
    if mode in ("429", "503"):
        response = error_response(
            int(mode), "rate limit exceeded" if mode == "429" else "service unavailable"
        )
        response.headers.update(_retry_after(fault.retry_after))
        return response
    return error_response(500, "internal server error")
