"""Inbound webhook signature checks, per system. One verifier per scheme, in SCHEMES:

- plain HMAC-SHA256 of the body, hexadecimal or Base64, after an optional prefix (GitHub's
  X-Hub-Signature-256: sha256=<hex>, Shopify's X-Shopify-Hmac-Sha256: <base64>, the sandbox systems);
- "t=…,v1=…" over "{t}.{body}" (Stripe-Signature);
- Standard Webhooks (Svix): webhook-id, webhook-timestamp and webhook-signature: "v1,<base64>" over
  "{id}.{timestamp}.{body}", keyed with the Base64 part of a "whsec_…" secret;
- Slack: X-Slack-Signature: "v0=<hex>" over "v0:{timestamp}:{body}", X-Slack-Request-Timestamp.
- Zendesk: X-Zendesk-Webhook-Signature: Base64 over "{timestamp}{body}", the time (ISO 8601) in the
  signature header's name plus "-Timestamp".

Timestamped schemes refuse a time further than the system's tolerance from now; every comparison is
constant-time."""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.models import SignatureEncoding, SignatureScheme, System

STANDARD_WEBHOOKS_SECRET_PREFIX = "whsec_"
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"


class SignatureError(Exception):
    """The request's signature is missing, wrong or too old; answered 401."""


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _written(raw: bytes, encoding: str) -> str:
    return base64.b64encode(raw).decode() if encoding == SignatureEncoding.BASE64 else raw.hex()


def _digest(secret: str, message: bytes, encoding: str) -> str:
    return _written(_hmac(secret.encode(), message), encoding)


def _same(expected: str, given: str, encoding: str) -> bool:
    if encoding == SignatureEncoding.HEX:
        given = given.lower()
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the Base64 after "whsec_" (the prefix is optional)."""
    try:
        return base64.b64decode(secret.strip().removeprefix(STANDARD_WEBHOOKS_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(
            "the signing secret is not in the Standard Webhooks form whsec_<Base64>; copy it again from "
            "the sender's webhook settings"
        ) from None


def _header(system: System, headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"missing signature header {name}")
    return value.strip()


def _timestamp(system: System, text: str, where: str, now: float | None) -> int:
    """The sender's unix time, refused when it is further from now than the system allows."""
    try:
        timestamp = int(text)
    except ValueError:
        raise SignatureError(f"{where} has no <unix time> in whole seconds") from None
    now = time.time() if now is None else now
    age = now - timestamp
    if abs(age) > system.signature_tolerance_seconds:
        raise SignatureError(
            f"stale signature: timestamp is {abs(age):.0f} s {'old' if age > 0 else 'in the future'} "
            f"(tolerance {system.signature_tolerance_seconds} s)"
        )
    return timestamp


# -- the schemes: each a verifier and a signer (the headers a correct sender sends) ---------------


def _verify_hmac(system: System, body: bytes, headers: Mapping[str, str], now: float | None) -> None:
    given = _header(system, headers, system.signature_header)
    if system.signature_prefix and given.startswith(system.signature_prefix):
        given = given[len(system.signature_prefix) :]
    expected = _digest(system.secret, body, system.signature_encoding)
    if not _same(expected, given, system.signature_encoding):
        raise SignatureError(f"signature in {system.signature_header} does not match the body")


def _sign_hmac(system: System, body: bytes, timestamp: int, message_id: str) -> dict[str, str]:
    return {
        system.signature_header: system.signature_prefix
        + _digest(system.secret, body, system.signature_encoding)
    }


def _verify_timestamped(system: System, body: bytes, headers: Mapping[str, str], now: float | None) -> None:
    parts: dict[str, list[str]] = {}
    for item in _header(system, headers, system.signature_header).split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    if "t" not in parts:
        raise SignatureError(f"{system.signature_header} has no t=<unix time> part")
    timestamp = _timestamp(system, parts["t"][0], f"{system.signature_header}'s t= part", now)
    expected = _digest(system.secret, f"{timestamp}.".encode() + body, system.signature_encoding)
    if not any(_same(expected, given, system.signature_encoding) for given in parts.get("v1", [])):
        raise SignatureError(f"signature in {system.signature_header} does not match the body and timestamp")


def _sign_timestamped(system: System, body: bytes, timestamp: int, message_id: str) -> dict[str, str]:
    signature = _digest(system.secret, f"{timestamp}.".encode() + body, system.signature_encoding)
    return {system.signature_header: f"t={timestamp},v1={signature}"}


def standard_webhooks_headers(system: System) -> tuple[str, str]:
    """The id and timestamp headers that go with the signature header: webhook-signature gives
    webhook-id and webhook-timestamp, svix-signature gives svix-id and svix-timestamp."""
    stem = system.signature_header.lower().removesuffix("signature")
    return f"{stem}id", f"{stem}timestamp"


def _standard_webhooks_signature(system: System, message_id: str, timestamp: int, body: bytes) -> str:
    key = standard_webhooks_key(system.secret)
    return base64.b64encode(_hmac(key, f"{message_id}.{timestamp}.".encode() + body)).decode()


def _verify_standard_webhooks(
    system: System, body: bytes, headers: Mapping[str, str], now: float | None
) -> None:
    id_header, timestamp_header = standard_webhooks_headers(system)
    signatures = _header(system, headers, system.signature_header)
    message_id = _header(system, headers, id_header)
    timestamp = _timestamp(system, _header(system, headers, timestamp_header), timestamp_header, now)
    expected = _standard_webhooks_signature(system, message_id, timestamp, body)
    # Space-separated "v1,<base64>" entries: several while the sender rotates its secret.
    given = [sig for version, _, sig in (e.partition(",") for e in signatures.split()) if version == "v1"]
    if not given:
        raise SignatureError(f"{system.signature_header} has no v1,<signature> entry")
    if not any(_same(expected, sig, SignatureEncoding.BASE64) for sig in given):
        raise SignatureError(
            f"signature in {system.signature_header} does not match the id, timestamp and body"
        )


def _sign_standard_webhooks(system: System, body: bytes, timestamp: int, message_id: str) -> dict[str, str]:
    id_header, timestamp_header = standard_webhooks_headers(system)
    return {
        id_header: message_id,
        timestamp_header: str(timestamp),
        system.signature_header: "v1," + _standard_webhooks_signature(system, message_id, timestamp, body),
    }


def _slack_signature(system: System, timestamp: int, body: bytes) -> str:
    return "v0=" + _digest(system.secret, f"v0:{timestamp}:".encode() + body, SignatureEncoding.HEX)


def _verify_slack(system: System, body: bytes, headers: Mapping[str, str], now: float | None) -> None:
    given = _header(system, headers, system.signature_header)
    sent_at = _header(system, headers, SLACK_TIMESTAMP_HEADER)
    timestamp = _timestamp(system, sent_at, SLACK_TIMESTAMP_HEADER, now)
    if not _same(_slack_signature(system, timestamp, body), given, SignatureEncoding.HEX):
        raise SignatureError(f"signature in {system.signature_header} does not match the timestamp and body")


def _sign_slack(system: System, body: bytes, timestamp: int, message_id: str) -> dict[str, str]:
    return {
        SLACK_TIMESTAMP_HEADER: str(timestamp),
        system.signature_header: _slack_signature(system, timestamp, body),
    }


def zendesk_timestamp_header(system: System) -> str:
    return f"{system.signature_header}-Timestamp"


def _zendesk_signature(system: System, sent_at: str, body: bytes) -> str:
    return _digest(system.secret, sent_at.encode() + body, SignatureEncoding.BASE64)


def _verify_zendesk(system: System, body: bytes, headers: Mapping[str, str], now: float | None) -> None:
    given = _header(system, headers, system.signature_header)
    timestamp_header = zendesk_timestamp_header(system)
    sent_at = _header(system, headers, timestamp_header)
    try:
        when = datetime.fromisoformat(sent_at)
    except ValueError:
        raise SignatureError(f"{timestamp_header} is not a time such as 2021-07-25T10:00:00Z") from None
    if when.tzinfo is None:
        raise SignatureError(f"{timestamp_header} has no time zone (such as Z)")
    _timestamp(system, str(int(when.timestamp())), timestamp_header, now)
    if not _same(_zendesk_signature(system, sent_at, body), given, SignatureEncoding.BASE64):
        raise SignatureError(f"signature in {system.signature_header} does not match the timestamp and body")


def _sign_zendesk(system: System, body: bytes, timestamp: int, message_id: str) -> dict[str, str]:
    sent_at = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        zendesk_timestamp_header(system): sent_at,
        system.signature_header: _zendesk_signature(system, sent_at, body),
    }


Verifier = Callable[[System, bytes, Mapping[str, str], float | None], None]
Signer = Callable[[System, bytes, int, str], dict[str, str]]


@dataclass(frozen=True)
class Scheme:
    verify: Verifier
    sign: Signer


SCHEMES: dict[str, Scheme] = {
    SignatureScheme.HMAC_SHA256: Scheme(_verify_hmac, _sign_hmac),
    SignatureScheme.TIMESTAMPED: Scheme(_verify_timestamped, _sign_timestamped),
    SignatureScheme.STANDARD_WEBHOOKS: Scheme(_verify_standard_webhooks, _sign_standard_webhooks),
    SignatureScheme.SLACK: Scheme(_verify_slack, _sign_slack),
    SignatureScheme.ZENDESK: Scheme(_verify_zendesk, _sign_zendesk),
}


def signed_headers(
    system: System, body: bytes, *, timestamp: int | None = None, message_id: str = "msg_1"
) -> dict[str, str]:
    """Every header a correct sender would add; used by tests, the bench and the sandbox docs."""
    scheme = SCHEMES.get(system.signature_scheme)
    if scheme is None:
        return {}
    return scheme.sign(system, body, int(time.time()) if timestamp is None else timestamp, message_id)


def sign(system: System, body: bytes, *, timestamp: int | None = None) -> str:
    """The signature header's value a correct sender would send."""
    return signed_headers(system, body, timestamp=timestamp)[system.signature_header]


def verify_signature(
    system: System, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> None:
    scheme = SCHEMES.get(system.signature_scheme)
    if scheme is None:  # SignatureScheme.NONE
        return
    if not system.secret:
        raise SignatureError(
            f"{system.name} has no webhook secret configured, so its signature cannot be checked"
        )
    scheme.verify(system, body, headers, now)
