"""Inbound webhook signature checks, per system: plain HMAC-SHA256 and the timestamped scheme."""

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from connectors.models import SignatureEncoding, SignatureScheme, System


class SignatureError(Exception):
    """The request's signature is missing, wrong or too old; answered 401."""


def _digest(secret: str, message: bytes, encoding: str) -> str:
    raw = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(raw).decode() if encoding == SignatureEncoding.BASE64 else raw.hex()


def _same(expected: str, given: str, encoding: str) -> bool:
    if encoding == SignatureEncoding.HEX:
        given = given.lower()
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def sign(system: System, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value a correct sender would send; used by tests, the bench and the sandbox docs."""
    if system.signature_scheme == SignatureScheme.TIMESTAMPED:
        timestamp = int(time.time()) if timestamp is None else timestamp
        signature = _digest(system.secret, f"{timestamp}.".encode() + body, system.signature_encoding)
        return f"t={timestamp},v1={signature}"
    return system.signature_prefix + _digest(system.secret, body, system.signature_encoding)


def verify_signature(
    system: System, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> None:
    scheme = system.signature_scheme
    if scheme == SignatureScheme.NONE:
        return
    if not system.secret:
        raise SignatureError(
            f"{system.name} has no webhook secret configured, so its signature cannot be checked"
        )
    header = headers.get(system.signature_header)
    if not header:
        raise SignatureError(f"missing signature header {system.signature_header}")
    if scheme == SignatureScheme.HMAC_SHA256:
        given = header.strip()
        if system.signature_prefix and given.startswith(system.signature_prefix):
            given = given[len(system.signature_prefix) :]
        if not _same(
            _digest(system.secret, body, system.signature_encoding), given, system.signature_encoding
        ):
            raise SignatureError(f"signature in {system.signature_header} does not match the body")
        return
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError(f"{system.signature_header} has no t=<unix time> part") from None
    now = time.time() if now is None else now
    age = now - timestamp
    if abs(age) > system.signature_tolerance_seconds:
        raise SignatureError(
            f"stale signature: timestamp is {abs(age):.0f} s {'old' if age > 0 else 'in the future'} "
            f"(tolerance {system.signature_tolerance_seconds} s)"
        )
    expected = _digest(system.secret, f"{timestamp}.".encode() + body, system.signature_encoding)
    if not any(_same(expected, given, system.signature_encoding) for given in parts.get("v1", [])):
        raise SignatureError(f"signature in {system.signature_header} does not match the body and timestamp")
