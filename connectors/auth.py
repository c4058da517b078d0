"""Sign-in methods for outbound calls, as one table: `AUTH_SCHEMES` says for each method its label,
the secrets it needs (with their labels), its non-secret settings and how it builds the request
headers. The System model's choices, the system and credentials forms, the detail page and the
connectors all read it, so a new method is one entry here."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import requests

from connectors.base import ConnectorError, ErrorClass
from connectors.config import config_load, header_name, setting, url_or_path

if TYPE_CHECKING:
    from connectors.models import System


class AuthScheme(StrEnum):
    NONE = "none"
    API_KEY = "api_key"
    BEARER = "bearer"
    BASIC = "basic"
    OAUTH2 = "oauth2_client_credentials"


@dataclass(frozen=True)
class Secret:
    """One write-only credential: its input label, the noun for "Enter the …", and whether it is typed
    unseen."""

    label: str
    noun: str
    masked: bool = True


@dataclass
class NoSettings:
    """A sign-in method without settings of its own."""


@dataclass
class ApiKeySettings:
    header: str = setting(
        "X-Api-Key",
        label="Header for the API key",
        help="The vendor's documentation names it.",
        input_name="api_key_header",
        required="Enter the name of the header that carries the API key.",
        validators=(header_name,),
    )


@dataclass
class OAuth2Settings:
    token_url: str = setting(
        "/oauth/token",
        label="Token URL",
        help="Full URL, or a path on the base URL such as /oauth/token.",
        required="Enter the token URL, e.g. /oauth/token.",
        validators=(url_or_path,),
    )
    scope: str = setting("", label="Scope", help="Optional; space separated.")


@dataclass(frozen=True)
class AuthMethod:
    label: str
    headers: Callable[["System", requests.Session], dict[str, str]]
    secrets: dict[str, Secret] = field(default_factory=dict)
    settings: type = NoSettings  # stored in System.auth_config
    # Forget what was cached after a 401, so that one retry signs in afresh.
    renew: Callable[["System"], None] | None = None


def auth_settings(system: "System"):
    """The system's sign-in settings, typed (an ApiKeySettings, OAuth2Settings or NoSettings)."""
    return config_load(auth_method(system).settings, system.auth_config)


def auth_method(system: "System") -> AuthMethod:
    return AUTH_SCHEMES.get(system.auth_scheme, AUTH_SCHEMES[AuthScheme.NONE])


def auth_headers(system: "System", session: requests.Session) -> dict[str, str]:
    return auth_method(system).headers(system, session)


def auth_renew(system: "System") -> bool:
    """Drop cached sign-in state after a 401; True when a second try may succeed."""
    renew = auth_method(system).renew
    if renew is None:
        return False
    renew(system)
    return True


def _credential(system: "System", name: str) -> str:
    return (system.credentials or {}).get(name, "")


def _no_headers(system: "System", session: requests.Session) -> dict[str, str]:
    return {}


def _api_key_headers(system: "System", session: requests.Session) -> dict[str, str]:
    return {auth_settings(system).header: _credential(system, "api_key")}


def _bearer_headers(system: "System", session: requests.Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {_credential(system, 'token')}"}


def _basic_headers(system: "System", session: requests.Session) -> dict[str, str]:
    basic = requests.auth._basic_auth_str(_credential(system, "username"), _credential(system, "password"))
    return {"Authorization": basic}


def _oauth2_headers(system: "System", session: requests.Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {oauth2_token(system, session)}"}


_token_lock = threading.Lock()
# (system id, client id, token url, scope) -> (access token, monotonic expiry). Per process by design:
# each worker fetches its own token once an hour, which every OAuth2 server tolerates.
_token_cache: dict[tuple, tuple[str, float]] = {}


def _token_key(system: "System") -> tuple:
    return (system.pk, _credential(system, "client_id"), token_url(system), auth_settings(system).scope)


def token_url(system: "System") -> str:
    url = auth_settings(system).token_url
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
    data = {
        "grant_type": "client_credentials",
        "client_id": _credential(system, "client_id"),
        "client_secret": _credential(system, "client_secret"),
    }
    if scope := auth_settings(system).scope:
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


AUTH_SCHEMES: dict[AuthScheme, AuthMethod] = {
    AuthScheme.NONE: AuthMethod("No authentication", _no_headers),
    AuthScheme.API_KEY: AuthMethod(
        "API key in a header",
        _api_key_headers,
        secrets={"api_key": Secret("API key", "API key")},
        settings=ApiKeySettings,
    ),
    AuthScheme.BEARER: AuthMethod(
        "Bearer token", _bearer_headers, secrets={"token": Secret("Bearer token", "bearer token")}
    ),
    AuthScheme.BASIC: AuthMethod(
        "Username and password (Basic)",
        _basic_headers,
        secrets={
            "username": Secret("Username", "username", masked=False),
            "password": Secret("Password", "password"),
        },
    ),
    AuthScheme.OAUTH2: AuthMethod(
        "OAuth2 client credentials",
        _oauth2_headers,
        secrets={
            "client_id": Secret("Client ID", "client ID", masked=False),
            "client_secret": Secret("Client secret", "client secret"),
        },
        settings=OAuth2Settings,
        renew=forget_token,
    ),
}
