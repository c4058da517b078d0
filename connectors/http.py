"""What every connector over HTTP shares: a keep-alive session per system, sign-in headers, one
request with a redacted summary, failures classified into the taxonomy, deletes that tolerate
"already gone", and the connection check. A connector over HTTP subclasses `HttpConnector` and
writes what differs in its API: `create_request` and `update_request` (the shape of a write),
`created_id` (where a create's answer keeps the new id), `fetch` and `page_params` (see rest.py
and jsonapi.py)."""

import json
import os
import threading
import time
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from common.paths import get_path
from connectors import asynchttp
from connectors.apiversion import NoPlaceForVersion
from connectors.auth import auth_headers, auth_renew, held_secrets
from connectors.base import (
    CheckResult,
    Connector,
    ConnectorError,
    ErrorClass,
    Exchange,
    LookupResult,
    Page,
    PushResult,
)
from connectors.deprecation import deprecation_notice
from connectors.netpolicy import GuardedAdapter, refusal
from connectors.redaction import Redactor

BODY_SUMMARY_CHARS = 2000
ALWAYS_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
KEPT_RESPONSE_HEADERS = frozenset(
    {"content-type", "retry-after", "idempotent-replayed", "location", "deprecation", "sunset", "warning"}
)
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
    # Where it may send is part of the key: an unsaved system (no pk, no updated_at) gets its own.
    key = (system.pk, system.updated_at, tuple(system.outbound_urls()))
    session = cache.get(key)
    if session is None:
        for stale in [k for k in cache if k[0] == system.pk]:
            cache.pop(stale).close()
        session = requests.Session()
        # Every connection passes the outbound policy, and goes only to the system's own hosts.
        adapter = GuardedAdapter(
            pool_connections=4, pool_maxsize=8, max_retries=0, only_to=system.outbound_urls()
        )
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


def transport_error(
    method: str, path: str, exc: requests.RequestException, exchange: Exchange
) -> ConnectorError:
    """A request that got no answer, named. A POST whose request may have been written before
    the answer was lost is "outcome unknown": the target may have created the record, so it must
    not simply be sent again. Other methods repeat safely and keep the plain names."""
    if words := refusal(exc):  # nothing was sent, and sending again will not help: a setting will
        return ConnectorError(f"{method} {path}: {words}", ErrorClass.OUTBOUND_REFUSED, exchange=exchange)
    sent = not _before_sending(exc)
    if sent and method == "POST":
        how = "no answer in time" if isinstance(exc, requests.Timeout) else "the connection dropped"
        message = (
            f"{method} {path}: sent, but {how} after {exchange.duration_ms:.0f} ms; "
            "the system may have taken it"
        )
        return ConnectorError(message, ErrorClass.OUTCOME_UNKNOWN, exchange=exchange)
    if isinstance(exc, requests.Timeout):  # before ConnectionError: a connect timeout is both
        message = f"{method} {path} timed out after {exchange.duration_ms:.0f} ms"
        return ConnectorError(message, ErrorClass.TIMEOUT, exchange=exchange)
    if isinstance(exc, requests.ConnectionError):
        message = f"{method} {path}: {refusal(exc) or f'connection failed ({_cause_name(exc)})'}"
        return ConnectorError(message, ErrorClass.UNREACHABLE, exchange=exchange)
    return ConnectorError(f"{method} {path}: {exc}", ErrorClass.UNKNOWN, exchange=exchange)


def _before_sending(exc: requests.RequestException) -> bool:
    """Whether the request certainly never reached the system: no connection was made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else None
        reason = getattr(cause, "reason", cause)  # urllib3 wraps connect failures in MaxRetryError
        return isinstance(reason, (NewConnectionError, NameResolutionError, ConnectTimeoutError))
    return not isinstance(exc, requests.Timeout)


def _cause_name(exc: requests.RequestException) -> str:
    cause = exc.args[0] if exc.args else exc
    return type(getattr(cause, "reason", cause)).__name__


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def json_body(response: requests.Response, exchange: Exchange) -> Any:
    """The answer's JSON, None for an empty answer; a MALFORMED_RESPONSE when it is not JSON."""
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


class HttpConnector(Connector):
    """A connector whose system speaks HTTP and JSON (of some flavour: `media_type`)."""

    media_type = "application/json"

    def __init__(self, system) -> None:
        super().__init__(system)
        self.versioning = system.version_placement()
        self.session = session_for(system)
        self.redactor = Redactor.for_system(system)

    def url(self, path: str) -> str:
        """A path on the base URL, or a full URL on the same origin (a server's own next-page link).
        Anything elsewhere is refused: it would carry our credentials to another host."""
        base = self.system.base_url.rstrip("/")
        if not path.lower().startswith(("http://", "https://")):
            url = base + "/" + path.lstrip("/")
            if _host(url) != _host(base):  # never, for a path; a stored row must not prove otherwise
                raise ConnectorError(
                    f"refusing {path}: it leads away from {_origin(base)}", ErrorClass.REJECTED
                )
            try:
                return self.versioning.url(url)
            except NoPlaceForVersion as exc:
                raise ConnectorError(f"{path}: {exc}", ErrorClass.REJECTED) from None
        if _origin(path) != _origin(base):
            raise ConnectorError(
                f"refusing to follow {path}: it is not on {_origin(base)}", ErrorClass.MALFORMED_RESPONSE
            )
        return path

    # The settings naming the page-size and changed-since query parameters; None: not sent.
    limit_setting: str | None = None
    since_setting: str | None = None

    def page_params(self, *, limit: int, since: str | None = None) -> dict[str, Any]:
        """The query parameters that ask for one page of `limit` records changed since `since`."""
        params: dict[str, Any] = {}
        if self.limit_setting:
            params[getattr(self.config, self.limit_setting)] = limit
        if since and self.since_setting:
            params[getattr(self.config, self.since_setting)] = since
        return params

    def error_detail(self, body: Any) -> str:
        """The system's own words for a failure, from its error answer."""
        if isinstance(body, dict):
            for key in ("error", "message", "detail"):
                if isinstance(body.get(key), str):
                    extra = body.get("fields")
                    return body[key] + (f" {extra}" if extra else "")
        return self.redactor.text(json_text(body), 200)

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
        sent = self._request_headers(json, headers)
        response, exchange = self._send(method, path, sent, json, params)
        if response.status_code == 401 and auth_renew(self.system):
            # The token may have been revoked early: sign in afresh, once.
            response, exchange = self._send(method, path, sent, json, params)
        if response.status_code >= 300:
            raise self._failure(method, path, response, exchange)
        return response, exchange

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[asynchttp.Answer, Exchange]:
        """`request` on the running event loop (connectors.asynchttp). Redirects are not followed:
        a 3xx is a failure like any other answer that is not a 2xx."""
        sent = self._request_headers(json, headers)
        response, exchange = await self._asend(method, path, sent, json, params)
        if response.status_code == 401 and auth_renew(self.system):
            response, exchange = await self._asend(method, path, sent, json, params)
        if response.status_code >= 300:
            raise self._failure(method, path, response, exchange)
        return response, exchange

    def _request_headers(self, body: Any, headers: dict[str, str] | None) -> dict[str, str]:
        sent = {"Accept": self.media_type, **(headers or {})}
        if body is not None:
            sent["Content-Type"] = self.media_type
        for name, value in self.versioning.headers().items():
            sent.setdefault(name, value)
        return sent

    def _signed(self, headers: dict[str, str], exchange: Exchange) -> dict[str, str]:
        """The headers with sign-in added, and their redacted copy on the exchange."""
        signed = auth_headers(self.system, self.session)
        # What we sign with is secret in every form, and so is a token obtained just now.
        self.redactor.add([*signed.values(), *held_secrets(self.system)])
        sent = {**headers, **signed}
        secret = ALWAYS_SECRET_HEADERS | {name.lower() for name in signed}
        exchange.request_headers = self.redactor.headers(sent, secret)
        return sent

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: Any, params: dict | None
    ) -> tuple[requests.Response, Exchange]:
        url = self.url(path)
        params = self.versioning.params(url, params)
        exchange = Exchange(method=method, url=self.redactor.text(url))
        started = time.perf_counter()
        try:
            sent = self._signed(headers, exchange)
            response = self.session.request(
                method,
                url,
                json=body,
                params=params,
                headers=sent,
                timeout=(self.system.connect_timeout, self.system.read_timeout),
            )
        except ConnectorError as exc:
            exc.exchange = exchange
            self.redactor.error(exc)
            raise
        except requests.RequestException as exc:  # its text may quote a header value
            exchange.duration_ms = (time.perf_counter() - started) * 1000
            raise self.redactor.error(transport_error(method, path, exc, exchange)) from exc
        self._answered(response, exchange, body, started)
        return response, exchange

    async def _asend(
        self, method: str, path: str, headers: dict[str, str], body: Any, params: dict | None
    ) -> tuple[asynchttp.Answer, Exchange]:
        url = self.url(path)
        params = self.versioning.params(url, params)
        exchange = Exchange(method=method, url=self.redactor.text(url))
        started = time.perf_counter()
        try:
            sent = self._signed(headers, exchange)
            response = await asynchttp.send(self.system, method, url, headers=sent, body=body, params=params)
        except ConnectorError as exc:
            exc.exchange = exchange
            self.redactor.error(exc)
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            exchange.duration_ms = (time.perf_counter() - started) * 1000
            raise self.redactor.error(asynchttp.transport_error(method, path, exc, exchange)) from exc
        self._answered(response, exchange, body, started)
        return response, exchange

    def _answered(self, response, exchange: Exchange, body: Any, started: float) -> None:
        """Fill the exchange with what was sent and the answer, redacted."""
        exchange.duration_ms = (time.perf_counter() - started) * 1000
        if body is not None:
            exchange.request_body = self.redactor.text(json_text(body), BODY_SUMMARY_CHARS)
        exchange.status = response.status_code
        exchange.response_headers = {
            k: self.redactor.text(v)
            for k, v in response.headers.items()
            if k.lower() in KEPT_RESPONSE_HEADERS
        }
        exchange.response_body = self.redactor.text(response.text, BODY_SUMMARY_CHARS)
        if notice := deprecation_notice(response.headers):
            # Shown on the system's page and in alerts: a careless API may echo a credential here.
            exchange.deprecation = replace(
                notice,
                warning=self.redactor.text(notice.warning),
                link=self.redactor.text(notice.link),
                sunset_link=self.redactor.text(notice.sunset_link),
            )

    def _failure(
        self, method: str, path: str, response: requests.Response, exchange: Exchange
    ) -> ConnectorError:
        try:
            detail = self.error_detail(response.json())
        except ValueError:
            detail = self.redactor.text(response.text, 200).strip()
        detail = self.redactor.text(detail)
        return ConnectorError(
            f"{method} {path} answered {response.status_code}{': ' + detail if detail else ''}",
            classify_status(response.status_code),
            status=response.status_code,
            exchange=exchange,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def create_request(self, resource: str, record: dict[str, Any]) -> tuple[str, str, Any]:
        """The request that creates `record`: method, path and JSON body."""
        return "POST", resource, record

    def keyed_create_request(self, resource: str, key: str, record: dict[str, Any]) -> tuple[str, str, Any]:
        """The request that creates or replaces the record named by our `key` (the system's own
        upsert): sending it twice leaves one record."""
        return "PUT", member_path(resource, key), record

    def update_request(
        self, resource: str, target_id: str | None, record: dict[str, Any]
    ) -> tuple[str, str, Any]:
        """The request that updates record `target_id` with `record`: method, path and JSON body."""
        return "PATCH", member_path(resource, target_id), record

    def created_id(self, body: Any, id_path: str) -> Any:
        """Where the answer to a create keeps the new record's id."""
        return get_path(body, id_path) if isinstance(body, dict) else None

    def push(
        self,
        *,
        operation: str,
        resource: str,
        record: dict[str, Any],
        target_id: str | None,
        idempotency_key: str,
        id_path: str = "id",
        key: str | None = None,
    ) -> PushResult:
        """A 2xx to a create is a success even when its answer is empty, not JSON or lacks the id:
        the record exists. The result's target_id is then "" and the caller finds the id by
        lookup; repeating the create would make a second record."""
        call = self.push_call(operation, resource, record, target_id, idempotency_key, id_path, key)
        try:
            response, exchange = self.request(
                call.method, call.path, json=call.document, headers=call.headers
            )
        except ConnectorError as exc:
            return call.refused(exc)
        return call.result(self, response, exchange)

    async def apush(
        self,
        *,
        operation: str,
        resource: str,
        record: dict[str, Any],
        target_id: str | None,
        idempotency_key: str,
        id_path: str = "id",
        key: str | None = None,
    ) -> PushResult:
        """`push` on the running event loop."""
        call = self.push_call(operation, resource, record, target_id, idempotency_key, id_path, key)
        try:
            response, exchange = await self.arequest(
                call.method, call.path, json=call.document, headers=call.headers
            )
        except ConnectorError as exc:
            return call.refused(exc)
        return call.result(self, response, exchange)

    def push_call(self, operation, resource, record, target_id, idempotency_key, id_path, key) -> "PushCall":
        headers = {"Idempotency-Key": idempotency_key}
        if operation == "delete":
            return PushCall(operation, "DELETE", member_path(resource, target_id), None, headers, target_id)
        if operation not in ("create", "update"):
            raise ValueError(f"unknown operation {operation!r}")
        if operation == "create" and key:
            method, path, document = self.keyed_create_request(resource, key, record)
        elif operation == "create":
            method, path, document = self.create_request(resource, record)
        else:
            method, path, document = self.update_request(resource, target_id, record)
        return PushCall(operation, method, path, document, headers, target_id, resource, id_path, key)

    def list_records(self, path: str, params: dict[str, Any] | None) -> Page:
        """One page of a list answer: its records, as mappings read them, and the next page."""
        raise NotImplementedError(f"{type(self).__name__} must implement list_records(path, params)")

    def lookup(
        self, *, resource: str, param: str, field: str, value: str, id_path: str = "id"
    ) -> LookupResult:
        page = self.list_records(resource, {param: value})
        matches = [r for r in page.records if isinstance(r, dict) and _same(get_path(r, field), value)]
        ids = [str(get_path(r, id_path)) for r in matches if get_path(r, id_path) not in (None, "")]
        return LookupResult(target_ids=ids, listed=len(page.records))

    def document(self, *, path: str) -> str:
        # API descriptions come as JSON or YAML, whatever this API's own records are in.
        accept = {"Accept": "application/json, application/yaml;q=0.9, */*;q=0.5"}
        response, _ = self.request("GET", path, headers=accept)
        return response.text

    def check(self, *, path: str) -> CheckResult:
        started = time.perf_counter()
        try:
            response, exchange = self.request("GET", path, params=self.page_params(limit=1))
        except ConnectorError as exc:
            result = self._check_failed(exc, path, (time.perf_counter() - started) * 1000)
            result.deprecation = exc.exchange.deprecation if exc.exchange else None
            return result
        elapsed = (time.perf_counter() - started) * 1000
        return CheckResult(
            True,
            True,
            elapsed,
            f"Connected: {path} answered {response.status_code} in {elapsed:.0f} ms.",
            response.status_code,
            deprecation=exchange.deprecation,
        )

    def _check_failed(self, exc: ConnectorError, path: str, elapsed: float) -> CheckResult:
        if exc.error_class in (ErrorClass.UNREACHABLE, ErrorClass.TIMEOUT):
            return CheckResult(
                False,
                None,
                elapsed,
                f"Could not reach {self.system.base_url}: {exc.message}",
                refused=refusal(exc),
            )
        if exc.error_class == ErrorClass.AUTH_FAILURE:
            return CheckResult(
                True, False, elapsed, "Reachable, but the credentials were refused.", exc.status
            )
        return CheckResult(
            True, None, elapsed, f"Reachable; it answered {exc.status} for {path}.", exc.status
        )


@dataclass
class PushCall:
    """The request a push makes, and how its answer (or refusal) becomes a PushResult."""

    operation: str
    method: str
    path: str
    document: Any
    headers: dict[str, str]
    target_id: str | None
    resource: str = ""
    id_path: str = "id"
    key: str | None = None

    def refused(self, exc: ConnectorError) -> PushResult:
        """The refusals that are the effect we wanted after all; any other is raised."""
        if self.operation == "delete" and exc.status in (404, 410):  # already gone
            return PushResult(
                target_id=self.target_id or "",
                status=exc.status,
                body=None,
                exchange=exc.exchange or Exchange(),
            )
        if self.operation == "create" and self.key and exc.status == 409:  # made by an earlier try
            return PushResult(target_id=self.key, status=409, body=None, exchange=exc.exchange or Exchange())
        raise exc

    def result(self, connector: "HttpConnector", response, exchange: Exchange) -> PushResult:
        if self.operation == "delete":
            return PushResult(
                target_id=self.target_id or "", status=response.status_code, body=None, exchange=exchange
            )
        try:
            body = json_body(response, exchange)
        except ConnectorError:
            body = None  # the call succeeded; only its answer is unreadable
        new_id: Any = self.target_id
        if self.operation == "create":
            new_id = (
                connector.created_id(body, self.id_path)
                or _id_from_location(response, self.resource)
                or self.key
            )
        return PushResult(
            target_id="" if new_id in (None, "") else str(new_id),
            status=response.status_code,
            body=body,
            exchange=exchange,
            replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
        )


def _same(found: Any, value: str) -> bool:
    return found is not None and not isinstance(found, (dict, list)) and str(found) == value


def _id_from_location(response: requests.Response, resource: str) -> str | None:
    """The new record's id from a `Location: /resource/<id>` header, which many APIs send with
    201 instead of a body."""
    location = response.headers.get("Location", "")
    path = urlsplit(location).path.rstrip("/")
    collection = resource.split("?", 1)[0].rstrip("/")
    if collection and path.startswith(collection + "/"):
        rest = path[len(collection) + 1 :]
        if rest and "/" not in rest:
            return rest
    return None


def member_path(resource: str, target_id: str | None) -> str:
    """The path of one record in a collection: ("/people", "7") -> "/people/7"."""
    return f"{resource.rstrip('/')}/{target_id}"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
