"""What most systems of one kind expect, pre-filled in the register-a-system form when the admin
picks the kind: how the hub signs in, how webhooks are signed and where an event keeps its type,
its unique id and its record. The admin can change each under "Advanced". A well-known vendor's
own values come from its template (connectors/vendors.py), which takes precedence."""

from typing import Any

from connectors.auth import AuthScheme
from connectors.models import SignatureEncoding, SignatureScheme, SystemKind

# The usual webhook: {"id": "evt_1", "type": "deal.won", "data": {...}}, signed with a shared secret
# in X-Signature as "sha256=<hex>" (the sandbox systems send exactly this).
SIGNED_WEBHOOK: dict[str, Any] = {
    "signature_scheme": SignatureScheme.HMAC_SHA256,
    "signature_header": "X-Signature",
    "signature_encoding": SignatureEncoding.HEX,
    "signature_prefix": "sha256=",
    "event_type_path": "type",
    "idempotency_key_path": "id",
    "record_path": "data",
}

KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    SystemKind.CRM: {"auth_scheme": AuthScheme.API_KEY, **SIGNED_WEBHOOK},
    SystemKind.ACCOUNTING: {"auth_scheme": AuthScheme.OAUTH2, **SIGNED_WEBHOOK},
    SystemKind.INVENTORY: {"auth_scheme": AuthScheme.API_KEY, **SIGNED_WEBHOOK},
    SystemKind.HR: {"auth_scheme": AuthScheme.BEARER, **SIGNED_WEBHOOK},
    # Shops sign the whole body in Base64 and name the event in a header, the record being the body.
    SystemKind.ECOMMERCE: {
        **SIGNED_WEBHOOK,
        "auth_scheme": AuthScheme.API_KEY,
        "signature_encoding": SignatureEncoding.BASE64,
        "signature_prefix": "",
        "event_type_path": "header:X-Event-Type",
        "record_path": "",
    },
    # Payment providers sign a time stamp with the body ("t=…,v1=…"), so an old webhook cannot be sent again.
    SystemKind.PAYMENTS: {
        **SIGNED_WEBHOOK,
        "auth_scheme": AuthScheme.BASIC,
        "signature_scheme": SignatureScheme.TIMESTAMPED,
        "signature_header": "Payments-Signature",
        "signature_prefix": "",
    },
    SystemKind.HELPDESK: {"auth_scheme": AuthScheme.BEARER, **SIGNED_WEBHOOK},
    SystemKind.CODE_HOSTING: {"auth_scheme": AuthScheme.BEARER, **SIGNED_WEBHOOK},
    SystemKind.MESSAGING: {"auth_scheme": AuthScheme.BEARER, **SIGNED_WEBHOOK},
    SystemKind.OTHER: {},
}


def kind_defaults(kind: str) -> dict[str, str]:
    """The form's pre-filled values for a kind of system, as the inputs hold them (text)."""
    return {name: str(value) for name, value in KIND_DEFAULTS.get(kind, {}).items()}
