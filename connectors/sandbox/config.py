"""Fixed demo settings shared by the sandbox systems and the hub's demo seed."""

from __future__ import annotations

DEFAULT_PORTS: dict[str, int] = {
    "crm": 8101,
    "accounting": 8102,
    "inventory": 8103,
    "hr": 8104,
    "payments": 8105,
}

DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    "crm": {"api_key": "crm-demo-key"},
    "accounting": {"client_id": "hub", "client_secret": "acc-demo-secret"},
    "inventory": {"api_key": "inv-demo-key"},
    "hr": {"token": "hr-demo-token"},
    "payments": {"username": "hub", "password": "pay-demo-pass"},
}

DEMO_WEBHOOK_SECRETS: dict[str, str] = {
    "crm": "whsec-crm-demo",
    "hr": "whsec-hr-demo",
    "payments": "whsec-pay-demo",
    "inventory": "whsec-inv-demo",
    "accounting": "whsec-acc-demo",
}
