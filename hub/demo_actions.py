"""The demo's sandbox systems as the admin meets them: what each plays, whether it is up, its
(public, demo-only) credentials, and one-click business activity in it: win a deal, charge a card,
hire a person, or break it for a minute. Everything goes through the sandbox's own HTTP API on
loopback, so what the hub sees afterwards is the real webhook, exactly as with a vendor."""

import ipaddress
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from django.utils import timezone

from connectors.models import System
from connectors.sandbox import DEFAULT_PORTS, DEMO_CREDENTIALS
from hub.models import Event

# What each sandbox system stands for, in the words of the business.
PLAYS = {
    "crm": "Sales (CRM): customers, deals and the sales team's logins",
    "accounting": "Accounting: payments received, invoices and payees",
    "inventory": "Inventory: products with their stock, stock adjustments and staff accounts",
    "hr": "HR: employees, from hiring to leaving",
    "payments": "Payments: card charges from the online shop",
}
CREDENTIAL_LABELS = {
    "api_key": "API key (X-Api-Key header)",
    "client_id": "OAuth client id",
    "client_secret": "OAuth client secret",
    "token": "Bearer token",
    "username": "User name",
    "password": "Password",
}
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Luca"]
LAST = ["Novak", "Okafor", "Park", "Quinn", "Rossi", "Silva", "Tanaka", "Ulrich", "Varga", "Weber"]
DEPARTMENTS = ["Sales", "Support", "Operations", "Finance"]
SKUS = ["SKU-CHAIR", "SKU-DESK", "SKU-LAMP", "SKU-MONITOR", "SKU-DOCK"]
# Share of SKUs typed in lower case: the demo's practice flow refuses those deals (hub/demo.py).
LOWERCASE_SKU_SHARE = 0.3
BREAK_SECONDS = 60
DEFAULT_PORT_BASE = 8100  # connectors.sandbox's own default: system N listens on 8100 + N
PROBE_TIMEOUT = 1.0
CALL_TIMEOUT = 5.0


class DemoActionError(Exception):
    """An action that could not be carried out, said in plain words."""


@dataclass
class ActionOutcome:
    """What an action did in the sandbox, and the webhook the hub should receive because of it."""

    headline: str
    record_id: str = ""
    event_type: str = ""  # "" when no webhook follows (breaking a system)
    details: list[str] = field(default_factory=list)
    event: Event | None = None  # the hub's stored event, once the webhook has arrived


@dataclass(frozen=True)
class DemoAction:
    name: str
    label: str
    explains: str
    run: Callable[..., ActionOutcome]
    system: str = ""  # the sandbox system it works in; "" for any


@dataclass
class SandboxStatus:
    """A demo system as its sandbox reports itself right now."""

    system: System
    plays: str
    on_loopback: bool
    running: bool = False
    broken_until: float | None = None
    webhooks_to: str = ""  # where the sandbox sends its webhooks; "" when it sends none
    problem: str = ""

    @property
    def slug(self) -> str:
        return self.system.slug

    @property
    def broken_until_time(self) -> datetime | None:
        return datetime.fromtimestamp(self.broken_until, UTC) if self.broken_until else None

    @property
    def actions(self) -> list[DemoAction]:
        return [action for action in ACTIONS.values() if action.system in ("", self.slug)]


# --------------------------------------------------------------------------------------------------
# Talking to a sandbox system
# --------------------------------------------------------------------------------------------------


def _auth(slug: str) -> dict:
    """The request arguments that sign in to a sandbox system with its demo credentials."""
    creds = DEMO_CREDENTIALS[slug]
    if "api_key" in creds:
        return {"headers": {"X-Api-Key": creds["api_key"]}}
    if "token" in creds:
        return {"headers": {"Authorization": f"Bearer {creds['token']}"}}
    if "username" in creds:
        return {"auth": (creds["username"], creds["password"])}
    raise DemoActionError(f"the demo has no one-click sign-in for {slug}")


def _call(session: requests.Session, method: str, url: str, slug: str, **kwargs) -> dict:
    """One call to a sandbox system's API; a refusal or silence becomes a DemoActionError."""
    try:
        response = session.request(method, url, timeout=CALL_TIMEOUT, **_auth(slug), **kwargs)
    except requests.RequestException as exc:
        raise DemoActionError(
            f"{url} did not answer ({type(exc).__name__}); is the sandbox running?"
        ) from None
    if not response.ok:
        raise DemoActionError(f"{method} {url} was answered {response.status_code}: {response.text[:300]}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise DemoActionError(f"{method} {url} did not answer with a JSON object")
    return answer


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sandbox_start_command(systems: list[System], hub_url: str) -> str:
    """The command that starts the sandbox where these systems expect it, sending webhooks to the hub."""
    order = list(DEFAULT_PORTS)
    bases = {
        urlsplit(s.base_url).port - order.index(s.slug) - 1
        for s in systems
        if s.slug in DEFAULT_PORTS and urlsplit(s.base_url).port
    }
    port_base = f" --port-base {bases.pop()}" if len(bases) == 1 and bases != {DEFAULT_PORT_BASE} else ""
    return f"python -m connectors.sandbox --hub-url {hub_url}{port_base}"


def demo_systems() -> list[System]:
    """The systems the demo seed registers (by their slugs), in the demo's order."""
    found = {system.slug: system for system in System.objects.filter(slug__in=DEFAULT_PORTS)}
    return [found[slug] for slug in DEFAULT_PORTS if slug in found]


def sandbox_status(system: System, session: requests.Session | None = None) -> SandboxStatus:
    """Ask the system's sandbox how it is (its control API): up, broken until when, webhooks where.

    Only a sandbox on this machine is asked: a demo system whose address was changed to a real
    vendor's gets no demo traffic from here."""
    status = SandboxStatus(
        system=system, plays=PLAYS.get(system.slug, ""), on_loopback=is_loopback(system.base_url)
    )
    if not status.on_loopback:
        status.problem = f"{system.base_url or 'No address'} is not a sandbox on this machine"
        return status
    try:
        answer = (session or requests).get(
            f"{system.base_url.rstrip('/')}/_control/state", timeout=PROBE_TIMEOUT
        )
        state = answer.json() if answer.ok else {}
    except (requests.RequestException, ValueError):
        state = {}
    if not isinstance(state, dict) or state.get("system") != system.slug:
        status.problem = f"nothing answers as the {system.slug} sandbox at {system.base_url}"
        return status
    status.running = True
    ends = [fault["until"] for fault in state.get("faults", []) if fault.get("until")]
    status.broken_until = max(ends) if ends else None
    webhooks = state.get("webhooks") or {}
    status.webhooks_to = (webhooks.get("url") or "") if webhooks.get("enabled") else ""
    return status


# --------------------------------------------------------------------------------------------------
# The actions
# --------------------------------------------------------------------------------------------------


def deal_win(session: requests.Session, base_url: str, rng: random.Random) -> ActionOutcome:
    """A new deal in the CRM, then moved to won: the CRM sends deal.won."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    lines = [
        {
            "sku": sku.lower() if rng.random() < LOWERCASE_SKU_SHARE else sku,
            "quantity": rng.randint(1, 3),
            "unit_price": rng.choice([49.0, 129.0, 399.0]),
        }
        for sku in rng.sample(SKUS, 2)
    ]
    amount = round(sum(line["quantity"] * line["unit_price"] for line in lines), 2)
    currency = rng.choice(["EUR", "USD", "GBP"])
    deal = _call(session, "POST", f"{base_url}/deals", "crm", json={
        "title": f"{last} & Co refit", "amount": amount, "currency": currency, "stage": "proposal",
        "customer": {"email": f"{first.lower()}.{last.lower()}@example.com", "name": f"{first} {last}"},
        "lines": lines, "owner_email": "sam@example.com",
    })  # fmt: skip
    _call(session, "PATCH", f"{base_url}/deals/{deal['id']}", "crm", json={"stage": "won"})
    items = ", ".join(f"{line['quantity']} × {line['sku']}" for line in lines)
    return ActionOutcome(
        headline=f"Deal {deal['id']} “{deal['title']}” was won in the CRM: {amount:,.2f} {currency}.",
        record_id=deal["id"],
        event_type="deal.won",
        details=[f"Items: {items}."],
    )


def card_charge(session: requests.Session, base_url: str, rng: random.Random) -> ActionOutcome:
    """A successful card charge: the payment gateway sends payment.succeeded."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    amount, currency = rng.randint(1000, 250000), rng.choice(["eur", "usd"])
    charge = _call(session, "POST", f"{base_url}/charges", "payments", json={
        "amount": amount, "currency": currency, "customer_email": f" {first}.{last}@Example.com",
        "description": "Online order", "status": "succeeded",
        "paid_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })  # fmt: skip
    return ActionOutcome(
        headline=f"Card charge {charge['id']} succeeded: {amount / 100:,.2f} {currency.upper()} from {first} {last}.",
        record_id=charge["id"],
        event_type="payment.succeeded",
        details=["Payments keeps amounts in cents (minor units)."],
    )


def person_hire(session: requests.Session, base_url: str, rng: random.Random) -> ActionOutcome:
    """A new employee in HR: HR sends employee.hired."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    department = rng.choice(DEPARTMENTS)
    employee = _call(session, "POST", f"{base_url}/employees", "hr", json={
        "first_name": first, "last_name": last, "email": f"{first}.{last}{rng.randint(1, 999)}@example.com",
        "department": department, "title": "Specialist", "status": "hired",
        "start_date": time.strftime("%Y-%m-%d", time.gmtime(time.time() + 14 * 86400)),
    })  # fmt: skip
    return ActionOutcome(
        headline=f"{first} {last} was hired into {department} ({employee['id']}).",
        record_id=employee["id"],
        event_type="employee.hired",
    )


def system_break(session: requests.Session, base_url: str, rng: random.Random) -> ActionOutcome:
    """Every call to the system is answered 503 for a minute; then it heals by itself."""
    try:
        answer = session.post(
            f"{base_url}/_control/faults",
            json={"mode": "503", "seconds": BREAK_SECONDS},
            timeout=CALL_TIMEOUT,
        )
        answer.raise_for_status()
        until = answer.json().get("until")
    except requests.RequestException as exc:
        raise DemoActionError(
            f"{base_url} did not take the fault ({type(exc).__name__}); is the sandbox running?"
        ) from None
    if not until:  # a sandbox from before faults healed by themselves: it would stay broken
        session.delete(f"{base_url}/_control/faults", timeout=CALL_TIMEOUT)
        raise DemoActionError("this sandbox cannot heal by itself; restart it with the hub's current version")
    heals_at = timezone.localtime(datetime.fromtimestamp(until, UTC)).strftime("%H:%M:%S")
    return ActionOutcome(
        headline=f"Broken until {heals_at}: every call is answered “503 Service unavailable” for {BREAK_SECONDS} seconds.",
        details=[
            "Deliveries to it are tried again later; what runs out of tries goes to the dead-letter inbox.",
            "The flows that deliver to it show failures, and their alerts may fire. It heals by itself.",
        ],
    )


ACTIONS = {
    action.name: action
    for action in (
        DemoAction("win-deal", "Win a deal", "A new deal is won in the CRM, which sends deal.won.", deal_win, "crm"),
        DemoAction("charge-card", "Charge a card", "A card payment succeeds, which sends payment.succeeded.", card_charge, "payments"),
        DemoAction("hire-person", "Hire a person", "Someone is hired in HR, which sends employee.hired.", person_hire, "hr"),
        DemoAction("break", "Break it for a minute", f"Every call to it fails with 503 for {BREAK_SECONDS} seconds, then it heals.", system_break),
    )
}  # fmt: skip


def demo_action_run(
    *, system: System, action_name: str, rng: random.Random | None = None, wait_seconds: float = 3.0
) -> ActionOutcome:
    """Carry out one action in a demo system's sandbox, then wait a moment for the hub to store the
    webhook it causes (`outcome.event`, None when it has not arrived in time)."""
    action = ACTIONS.get(action_name)
    if action is None:
        raise DemoActionError(f"there is no demo action “{action_name}”; choose one of {', '.join(ACTIONS)}")
    if action.system not in ("", system.slug):
        raise DemoActionError(
            f"“{action.label}” happens in the {action.system} sandbox, not in {system.name}"
        )
    with requests.Session() as session:
        status = sandbox_status(system, session)
        if not status.running:
            raise DemoActionError(f"{system.name} is not running: {status.problem}")
        outcome = action.run(session, system.base_url.rstrip("/"), rng or random.Random())
    if outcome.event_type:
        outcome.event = _arrived_event(system, outcome, wait_seconds)
    return outcome


def _arrived_event(system: System, outcome: ActionOutcome, wait_seconds: float) -> Event | None:
    deadline = time.monotonic() + wait_seconds
    while True:
        event = (
            Event.objects.filter(system=system, record_id=outcome.record_id, event_type=outcome.event_type)
            .order_by("-received_at")
            .first()
        )
        if event is not None or time.monotonic() >= deadline:
            return event
        time.sleep(0.2)
