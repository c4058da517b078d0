"""Encryption at rest for credentials and webhook secrets (Fernet, with key rotation).

The keys are HUB_ENCRYPTION_KEYS only (the first encrypts, all decrypt); nothing is derived from
SECRET_KEY, so changing it leaves every secret readable. With DEBUG on and no keys set, the
settings supply a development key kept in var/hub.env (hub/localenv.py). A value none of the
keys opens is read as `Unreadable`, never an exception: pages, webhooks and deliveries then say
what is wrong instead of answering 500, and `manage.py rotate_keys` re-encrypts everything under
the first key (README "Keys").
"""

import base64
import hashlib
import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

# Every Fernet token starts with its version byte 0x80, base64 "gAAAAA".
TOKEN_PREFIX = "gAAAAA"


class Unreadable(dict):
    """A stored secret that none of HUB_ENCRYPTION_KEYS opens: empty to whoever only reads it, and
    written back as the very ciphertext it was read from, so the right key can still open it."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def __repr__(self) -> str:
        return "<Unreadable secret>"


def is_unreadable(value: Any) -> bool:
    return isinstance(value, Unreadable)


@cache
def _fernet() -> MultiFernet:
    keys = list(settings.HUB_ENCRYPTION_KEYS)
    if not keys:
        raise ImproperlyConfigured("HUB_ENCRYPTION_KEYS is empty: stored credentials have no key.")
    return fernet_for(keys)


def fernet_for(keys: list[str]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


class KeyRing:
    """The keys of a rotation: the first encrypts; it, the rest and `extra` (old keys) decrypt."""

    def __init__(self, keys: list[str], *, extra: list[str] = ()) -> None:
        self.first = fernet_for(keys[:1])
        self.any = fernet_for([*keys, *extra])

    def is_current(self, token: str) -> bool:
        """Whether the first key already opens it."""
        try:
            self.first.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str | None:
        """The value re-encrypted under the first key; None when no key opens it."""
        try:
            return self.any.rotate(token.encode()).decode()
        except InvalidToken:
            return None


def legacy_key(secret_key: str) -> str:
    """The key earlier versions derived from SECRET_KEY, for `rotate_keys --old-secret-key` only."""
    digest = hashlib.sha256(b"hub-credentials:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def forget_keys() -> None:
    """Read HUB_ENCRYPTION_KEYS again on next use (the keys are cached per process)."""
    _fernet.cache_clear()


@receiver(setting_changed)
def _keys_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "HUB_ENCRYPTION_KEYS":
        forget_keys()


def encrypt(value: Any) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt(token: str) -> Any:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted with the configured HUB_ENCRYPTION_KEYS") from exc


def read(token: str) -> Any:
    """The stored value, or `Unreadable` when no configured key opens it."""
    try:
        return decrypt(token)
    except ValueError:
        return Unreadable(token)


class EncryptedJSONField(models.TextField):
    """Stores any JSON value encrypted; the database only ever sees ciphertext."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {} if not self.null else None
        return read(value)

    def to_python(self, value):
        if isinstance(value, str) and value.startswith(TOKEN_PREFIX):
            return read(value)
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        if is_unreadable(value):
            return value.token
        return encrypt(value)
