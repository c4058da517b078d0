"""Auth schemes for outbound calls: API key header, bearer, basic, OAuth2 client credentials."""

import threading
import time
from typing import TYPE_CHECKING

import requests

from connectors.base import ConnectorError, ErrorClass
from connectors.models import AuthScheme

if TYPE_CHECKING:
    from connectors.models import System

_token_lock = threading.Lock()
# (system id, client id, token url) -> (access token, monotonic expiry). Per process by design:
# each worker fetches its own token once an hour, which every OAuth2 server tolerates.
_token_cache: dict[tuple, tuple[str, float]] = {}


def auth_headers(system: "System", session: requests.Session) -> dict[str, str]:
    scheme = system.auth_scheme
    creds = system.credentials or {}
    config = system.auth_config or {}
    if scheme == AuthScheme.API_KEY:
        return {config.get("header", "X-Api-Key"): creds.get("api_key", "")}
    if scheme == AuthScheme.BEARER:
        return {"Authorization": f"Bearer {creds.get('token', '')}"}
    if scheme == AuthScheme.BASIC:
        basic = requests.auth._basic_auth_str(creds.get("username", ""), creds.get("password", ""))
        return {"Authorization": basic}
    if scheme == AuthScheme.OAUTH2:
        return {"Authorization": f"Bearer {oauth2_token(system, session)}"}
    return {}


def secret_header_names(system: "System") -> set[str]:
    names = {"authorization", "cookie", "proxy-authorization"}
    if system.auth_scheme == AuthScheme.API_KEY:
        names.add((system.auth_config or {}).get("header", "X-Api-Key").lower())
    return names


def _token_key(system: "System") -> tuple:
    config = system.auth_config or {}
    return (
        system.pk,
        (system.credentials or {}).get("client_id"),
        token_url(system),
        config.get("scope", ""),
    )


def token_url(system: "System") -> str:
    url = (system.auth_config or {}).get("token_url") or "/oauth/token"
    if url.startswith("/"):
        url = system.base_url.rstrip("/") + url
    return url


def forget_token(system: "System") -> None:
    with _token_lock:
        _token_cache.pop(_token_key(system), None)


def oauth2_token(system: "System", session: requests.Session) -> str:
    key = _token_key(system)
    with _token_lock:
        cached = _token_cache.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
    creds = system.credentials or {}
    data = {
        "grant_type": "client_credentials",
        "client_id": creds.get("client_id", ""),
        "client_secret": creds.get("client_secret", ""),
    }
    if scope := (system.auth_config or {}).get("scope"):
        data["scope"] = scope
    try:
        response = session.post(
            token_url(system), data=data, timeout=(system.connect_timeout, system.read_timeout)
        )
    except requests.Timeout as exc:
        raise ConnectorError(f"token endpoint timed out: {exc}", ErrorClass.TIMEOUT) from exc
    except requests.ConnectionError as exc:
        raise ConnectorError(f"token endpoint unreachable: {exc}", ErrorClass.UNREACHABLE) from exc
    if response.status_code in (400, 401, 403):
        raise ConnectorError(
            f"token endpoint refused the client credentials ({response.status_code})",
            ErrorClass.AUTH_FAILURE,
            status=response.status_code,
        )
    if response.status_code >= 500:
        raise ConnectorError(f"token endpoint error {response.status_code}", ErrorClass.SERVER_ERROR)
    try:
        body = response.json()
        token = body["access_token"]
        lifetime = float(body.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConnectorError(
            "token endpoint answered without an access_token", ErrorClass.MALFORMED_RESPONSE
        ) from exc
    with _token_lock:
        # Renew a minute early so a token never expires mid-request.
        _token_cache[key] = (token, time.monotonic() + max(lifetime - 60, lifetime / 2))
    return token
