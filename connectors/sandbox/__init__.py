"""Sandbox business systems: realistic fake vendor APIs (CRM, accounting, inventory, HR, payments)
served on loopback with their own auth, rate limits, injectable faults, idempotency keys and signed
outbound webhooks. Standard library only, no Django, so it starts fast in a process or in threads.
"""

from .cli import main
from .config import DEFAULT_PORTS, DEMO_CREDENTIALS, DEMO_WEBHOOK_SECRETS
from .faults import FAULT_MODES, Fault
from .server import Sandbox
from .system import SandboxSystem
from .webhooks import sign_hmac, sign_timestamped

__all__ = [
    "DEFAULT_PORTS",
    "DEMO_CREDENTIALS",
    "DEMO_WEBHOOK_SECRETS",
    "FAULT_MODES",
    "Fault",
    "Sandbox",
    "SandboxSystem",
    "main",
    "sign_hmac",
    "sign_timestamped",
]
