"""The address a request came from, for sign-in pauses, the audit log and /metrics."""

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    """REMOTE_ADDR; behind HUB_TRUSTED_PROXIES proxies, the address the outermost of them saw.

    Each proxy appends the address it received from to X-Forwarded-For, so with N trusted proxies
    the client is the N-th entry from the right: whatever a client wrote further left is its own
    claim and is ignored."""
    meta = getattr(request, "META", None) or {}
    remote = meta.get("REMOTE_ADDR", "")
    hops = settings.HUB_TRUSTED_PROXIES
    if not hops:
        return remote
    forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < hops:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-hops]))
    except ValueError:
        return remote
