"""The generic REST/JSON connector."""

import os
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from common.paths import get_path
from connectors.auth import auth_headers, forget_token, secret_header_names
from connectors.base import CheckResult, Connector, ConnectorError, ErrorClass, Exchange, Page, PushResult
from connectors.models import AuthScheme
from connectors.redaction import Redactor

BODY_SUMMARY_CHARS = 2000
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)
_sessions = threading.local()


def session_for(system) -> requests.Session:
    """One keep-alive session per system per thread, rebuilt when the system's settings change."""
    cache = getattr(_sessions, "by_system", None)
    if cache is None:
        cache = _sessions.by_system = {}
    key = (system.pk, system.updated_at)
    session = cache.get(key)
    if session is None:
        for stale in [k for k in cache if k[0] == system.pk]:
            cache.pop(stale).close()
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "integration-hub/1.0"
        # Reading proxy settings from the environment on every request is a measurable share of a
        # delivery's CPU; only pay for it when a proxy is actually configured.
        session.trust_env = any(os.environ.get(name) for name in PROXY_VARIABLES)
        cache[key] = session
    return session


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def classify_status(status: int) -> ErrorClass:
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status in (401, 403):
        return ErrorClass.AUTH_FAILURE
    if status == 408:
        return ErrorClass.TIMEOUT
    if status >= 500:
        return ErrorClass.SERVER_ERROR
    return ErrorClass.REJECTED


class RestConnector(Connector):
    label = "Generic REST / JSON"

    def __init__(self, system) -> None:
        super().__init__(system)
        self.session = session_for(system)
        self.redactor = Redactor.for_system(system)
        options = system.settings or {}
        self.update_method = options.get("update_method", "PATCH").upper()
        self.records_path = options.get("list_records_path", "data")
        self.next_path = options.get("list_next_path", "next")
        self.since_param = options.get("since_param", "updated_since")
        self.limit_param = options.get("limit_param", "limit")
        self.page_param = options.get("page_param", "page")

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.system.base_url.rstrip("/") + "/" + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[requests.Response, Exchange]:
        """Send one request with auth; raise ConnectorError for anything but a 2xx."""
        url = self.url(path)
        all_headers = {"Accept": "application/json", **(headers or {})}
        if self.system.api_version:
            all_headers.setdefault("X-Api-Version", self.system.api_version)
        for retry_auth in (True, False):
            exchange = Exchange(method=method, url=url)
            started = time.perf_counter()
            try:
                sent_headers = {**all_headers, **auth_headers(self.system, self.session)}
                exchange.request_headers = self.redactor.headers(
                    sent_headers, secret_header_names(self.system)
                )
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers=sent_headers,
                    timeout=(self.system.connect_timeout, self.system.read_timeout),
                )
            except ConnectorError as exc:
                exc.exchange = exchange
                raise
            except requests.Timeout as exc:
                exchange.duration_ms = (time.perf_counter() - started) * 1000
                raise ConnectorError(
                    f"{method} {path} timed out after {exchange.duration_ms:.0f} ms",
                    ErrorClass.TIMEOUT,
                    exchange=exchange,
                ) from exc
            except requests.ConnectionError as exc:
                exchange.duration_ms = (time.perf_counter() - started) * 1000
                raise ConnectorError(
                    f"{method} {path}: connection failed ({type(exc).__name__})",
                    ErrorClass.UNREACHABLE,
                    exchange=exchange,
                ) from exc
            except requests.RequestException as exc:
                exchange.duration_ms = (time.perf_counter() - started) * 1000
                raise ConnectorError(
                    f"{method} {path}: {exc}", ErrorClass.UNKNOWN, exchange=exchange
                ) from exc
            exchange.duration_ms = (time.perf_counter() - started) * 1000
            if json is not None:
                exchange.request_body = self.redactor.text(_json_text(json))[:BODY_SUMMARY_CHARS]
            exchange.status = response.status_code
            exchange.response_headers = {
                k: v
                for k, v in response.headers.items()
                if k.lower() in ("content-type", "retry-after", "idempotent-replayed", "location")
            }
            exchange.response_body = self.redactor.text(response.text[:BODY_SUMMARY_CHARS])
            if response.status_code == 401 and retry_auth and self.system.auth_scheme == AuthScheme.OAUTH2:
                forget_token(self.system)  # the token may have been revoked early: fetch a new one once
                continue
            break
        if response.status_code >= 300:
            error_class = classify_status(response.status_code)
            detail = self.redactor.text(_error_detail(response))
            raise ConnectorError(
                f"{method} {path} answered {response.status_code}{': ' + detail if detail else ''}",
                error_class,
                status=response.status_code,
                exchange=exchange,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response, exchange

    def push(
        self,
        *,
        operation: str,
        resource: str,
        record: dict[str, Any],
        target_id: str | None,
        idempotency_key: str,
        id_path: str = "id",
    ) -> PushResult:
        headers = {"Idempotency-Key": idempotency_key}
        if operation == "create":
            response, exchange = self.request("POST", resource, json=record, headers=headers)
        elif operation == "update":
            response, exchange = self.request(
                self.update_method, f"{resource.rstrip('/')}/{target_id}", json=record, headers=headers
            )
        elif operation == "delete":
            try:
                response, exchange = self.request(
                    "DELETE", f"{resource.rstrip('/')}/{target_id}", headers=headers
                )
            except ConnectorError as exc:
                if exc.status in (404, 410):  # already gone: the effect we wanted
                    return PushResult(
                        target_id=target_id or "",
                        status=exc.status,
                        body=None,
                        exchange=exc.exchange or Exchange(),
                    )
                raise
            return PushResult(
                target_id=target_id or "", status=response.status_code, body=None, exchange=exchange
            )
        else:
            raise ValueError(f"unknown operation {operation!r}")
        body = _json_body(response, exchange)
        new_id = target_id
        if operation == "create":
            found = get_path(body, id_path) if isinstance(body, dict) else None
            if found in (None, ""):
                raise ConnectorError(
                    f"the created record's answer has no {id_path!r}",
                    ErrorClass.MALFORMED_RESPONSE,
                    status=response.status_code,
                    exchange=exchange,
                )
            new_id = str(found)
        return PushResult(
            target_id=str(new_id or ""),
            status=response.status_code,
            body=body,
            exchange=exchange,
            replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
        )

    def fetch(self, *, resource: str, since: str | None, page_token: str | None, limit: int) -> Page:
        params: dict[str, Any] = {self.limit_param: limit}
        if since:
            params[self.since_param] = since
        if page_token:
            params[self.page_param] = page_token
        response, exchange = self.request("GET", resource, params=params)
        body = _json_body(response, exchange)
        if isinstance(body, list):
            return Page(records=body, next_token=None)
        records = get_path(body, self.records_path) if self.records_path else body
        if not isinstance(records, list):
            raise ConnectorError(
                f"list answer has no {self.records_path!r} array",
                ErrorClass.MALFORMED_RESPONSE,
                exchange=exchange,
            )
        next_token = get_path(body, self.next_path) if self.next_path else None
        return Page(records=records, next_token=str(next_token) if next_token else None)

    def check(self, resource: str | None = None) -> CheckResult:
        started = time.perf_counter()
        path = resource or (self.system.settings or {}).get("health_path", "/")
        try:
            response, _ = self.request("GET", path, params={self.limit_param: 1} if resource else None)
        except ConnectorError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            if exc.error_class in (ErrorClass.UNREACHABLE, ErrorClass.TIMEOUT):
                return CheckResult(
                    False, None, elapsed, f"Could not reach {self.system.base_url}: {exc.message}"
                )
            if exc.error_class == ErrorClass.AUTH_FAILURE:
                return CheckResult(
                    True, False, elapsed, "Reachable, but the credentials were refused.", exc.status
                )
            return CheckResult(
                True, None, elapsed, f"Reachable; it answered {exc.status} for {path}.", exc.status
            )
        elapsed = (time.perf_counter() - started) * 1000
        return CheckResult(
            True,
            True,
            elapsed,
            f"Connected: {path} answered {response.status_code} in {elapsed:.0f} ms.",
            response.status_code,
        )


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _json_body(response: requests.Response, exchange: Exchange) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ConnectorError(
            f"answer {response.status_code} was not JSON: {exchange.response_body[:80]!r}",
            ErrorClass.MALFORMED_RESPONSE,
            status=response.status_code,
            exchange=exchange,
        ) from exc


def _error_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str):
                extra = body.get("fields")
                return body[key] + (f" {extra}" if extra else "")
    return _json_text(body)[:200]
