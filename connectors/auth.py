"""Sign-in methods for outbound calls, as one table: `AUTH_SCHEMES` says for each method its label,
the secrets it needs (with their labels), its non-secret settings and how it builds the request
headers. The System model's choices, the system and credentials forms, the detail page and the
connectors all read it, so a new method is one entry here."""

import base64
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import requests
from django.core.exceptions import ValidationError

from connectors.base import ConnectorError, ErrorClass
from connectors.config import config_load, header_name, setting, url_or_path
from connectors.netpolicy import outbound_allowed, refusal

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
        validators=(url_or_path, outbound_allowed),
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
    # What the hub makes from the credentials that a target may echo: redacted like them.
    derived: Callable[["System"], list[str]] | None = None


def auth_settings(system: "System"):
    """The system's sign-in settings, typed (an ApiKeySettings, OAuth2Settings or NoSettings)."""
    return config_load(auth_method(system).settings, system.auth_config)


def auth_method(system: "System") -> AuthMethod:
    return AUTH_SCHEMES.get(system.auth_scheme, AUTH_SCHEMES[AuthScheme.NONE])


def auth_headers(system: "System", session: requests.Session) -> dict[str, str]:
    return auth_method(system).headers(system, session)


def held_secrets(system: "System") -> list[str]:
    """Secrets this process made from the system's credentials: the base64 of a Basic pair, the
    OAuth tokens it obtained. Redacted wherever the credentials themselves are."""
    derived = auth_method(system).derived
    return derived(system) if derived else []


# How the form and the services name a control character a secret must not contain.
CONTROL_NAMES = {"\n": "a line break", "\r": "a line break", "\t": "a tab", "\x00": "a null character"}


def secret_characters(value: str) -> None:
    """Refuse control characters (line breaks, tabs, NUL and the rest of C0 and C1): no system
    issues secrets with them, a header cannot carry them, and one pasted by mistake would end up
    in error messages instead of being sent."""
    for position, char in enumerate(value, start=1):
        if unicodedata.category(char) == "Cc":
            name = CONTROL_NAMES.get(char, f"an invisible control character (U+{ord(char):04X})")
            raise ValidationError(
                f"This contains {name} at character {position}. Secrets never contain line breaks, "
                "tabs or other invisible characters: copy it again without them.",
                code="control_character",
            )


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


def _basic_derived(system: "System") -> list[str]:
    """The base64 of user:password, as requests encodes it (Latin-1) and as UTF-8 clients do."""
    pair = f"{_credential(system, 'username')}:{_credential(system, 'password')}"
    found = {base64.b64encode(pair.encode("utf-8")).decode()}
    if all(ord(c) < 256 for c in pair):
        found.add(base64.b64encode(pair.encode("latin-1")).decode())
    return sorted(found)


def _oauth2_headers(system: "System", session: requests.Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {oauth2_token(system, session)}"}


_token_lock = threading.Lock()
# (system id, client id, token url, scope) -> (access token, monotonic expiry, every token in the
# answer). Per process by design: each worker fetches its own token once an hour, which every OAuth2
# server tolerates.
_token_cache: dict[tuple, tuple[str, float, tuple[str, ...]]] = {}


def _token_key(system: "System") -> tuple:
    return (system.pk, _credential(system, "client_id"), token_url(system), auth_settings(system).scope)


def token_url(system: "System") -> str:
    url = auth_settings(system).token_url
    if url.startswith("/"):
        url = system.base_url.rstrip("/") + url
    return url


def _tokens_held(system: "System") -> list[str]:
    """The access, refresh and other tokens this process obtained for the system."""
    with _token_lock:
        return [
            token for key, (_, _, tokens) in _token_cache.items() if key[0] == system.pk for token in tokens
        ]


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
        raise ConnectorError(
            f"token endpoint unreachable: {refusal(exc) or exc}", ErrorClass.UNREACHABLE
        ) from exc
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
        # The refresh and id tokens too: never used, but as secret if a target repeats them.
        tokens = (token, *(v for k, v in body.items() if k.endswith("token") and isinstance(v, str)))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConnectorError(
            "token endpoint answered without an access_token", ErrorClass.MALFORMED_RESPONSE
        ) from exc
    with _token_lock:
        # Renew a minute early so a token never expires mid-request.
        _token_cache[key] = (token, time.monotonic() + max(lifetime - 60, lifetime / 2), tokens)
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
        derived=_basic_derived,
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
        derived=_tokens_held,
    ),
}
