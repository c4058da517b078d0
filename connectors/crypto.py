"""Encryption at rest for credentials and webhook secrets (Fernet, with key rotation)."""

import base64
import hashlib
import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@cache
def _fernet() -> MultiFernet:
    keys = list(settings.HUB_ENCRYPTION_KEYS)
    if not keys:
        digest = hashlib.sha256(b"hub-credentials:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def encrypt(value: Any) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt(token: str) -> Any:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted with the configured HUB_ENCRYPTION_KEYS") from exc


class EncryptedJSONField(models.TextField):
    """Stores any JSON value encrypted; the database only ever sees ciphertext."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {} if not self.null else None
        return decrypt(value)

    def to_python(self, value):
        if isinstance(value, str) and value.startswith("gAAAA"):
            return decrypt(value)
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt(value)
