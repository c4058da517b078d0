"""Declarative description of each sandbox system: auth scheme, resources, validation and events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .timeutil import normalize_timestamp

# A default is either a plain value or a callable (record, now_iso) -> value evaluated after plain ones.
DefaultValue = Any
Validator = Callable[[dict[str, Any]], dict[str, str]]


@dataclass(frozen=True)
class ResourceSpec:
    """One REST collection such as ``/deals``."""

    name: str
    prefix: str
    noun: str
    required: tuple[str, ...]
    types: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: Mapping[str, DefaultValue] = field(default_factory=dict)
    validator: Validator | None = None
    # Event emitted on create; None means "no generic create event" (charges use status events instead).
    created_event: str | None = ""
    # (field, {value: event}) -> extra event when the field becomes that value.
    transition: tuple[str, Mapping[str, str]] | None = None

    def event_name(self, action: str) -> str | None:
        if action == "created" and self.created_event != "":
            return self.created_event
        return f"{self.noun}.{action}"


@dataclass(frozen=True)
class SystemSpec:
    """A business system: how it authenticates, signs webhooks and what it stores."""

    name: str
    auth: str  # "api_key" | "oauth2" | "bearer" | "basic"
    signature: str  # "hmac" | "timestamped"
    resources: Mapping[str, ResourceSpec]
    seed: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        normalize_timestamp(value)
    except ValueError:
        return False
    return True


TYPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "must be a string"),
    "email": (lambda v: isinstance(v, str) and "@" in v, "must be an email address"),
    "number": (_is_number, "must be a number"),
    "integer": (_is_integer, "must be an integer"),
    "boolean": (lambda v: isinstance(v, bool), "must be a boolean"),
    "list": (lambda v: isinstance(v, list), "must be a list"),
    "object": (lambda v: isinstance(v, dict), "must be an object"),
    "date": (_is_date, "must be a date YYYY-MM-DD"),
    "datetime": (_is_datetime, "must be an ISO-8601 timestamp"),
}


def _validate_deal_lines(record: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    lines = record.get("lines")
    if not isinstance(lines, list):
        return errors  # the type check already reports it
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            errors[f"lines[{index}]"] = "must be an object"
            continue
        if not isinstance(line.get("sku"), str) or not line["sku"]:
            errors[f"lines[{index}].sku"] = "required"
        if not _is_number(line.get("quantity")):
            errors[f"lines[{index}].quantity"] = "must be a number"
        if "unit_price" in line and not _is_number(line["unit_price"]):
            errors[f"lines[{index}].unit_price"] = "must be a number"
    return errors


def _validate_adjustment_lines(record: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    lines = record.get("lines")
    if not isinstance(lines, list):
        return errors
    if not lines:
        errors["lines"] = "must not be empty"
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            errors[f"lines[{index}]"] = "must be an object"
            continue
        if not isinstance(line.get("sku"), str) or not line["sku"]:
            errors[f"lines[{index}].sku"] = "required"
        if not _is_integer(line.get("quantity")):
            errors[f"lines[{index}].quantity"] = "must be an integer"
    return errors


def _resources(*specs: ResourceSpec) -> dict[str, ResourceSpec]:
    return {spec.name: spec for spec in specs}


CRM = SystemSpec(
    name="crm",
    auth="api_key",
    signature="hmac",
    resources=_resources(
        ResourceSpec(
            name="customers",
            prefix="cust",
            noun="customer",
            required=("name", "email"),
            types={"name": "string", "email": "email", "phone": "string", "company": "string"},
        ),
        ResourceSpec(
            name="deals",
            prefix="deal",
            noun="deal",
            required=("title", "amount", "currency"),
            types={
                "title": "string",
                "amount": "number",
                "currency": "string",
                "stage": "string",
                "customer": "object",
                "lines": "list",
                "owner_email": "email",
            },
            choices={"stage": ("lead", "proposal", "won", "lost")},
            defaults={"stage": "lead", "lines": []},
            validator=_validate_deal_lines,
            transition=("stage", {"won": "deal.won"}),
        ),
        ResourceSpec(
            name="users",
            prefix="user",
            noun="user",
            required=("email",),
            types={"email": "email", "full_name": "string", "role": "string", "active": "boolean"},
            defaults={"role": "member", "active": True},
        ),
    ),
)

ACCOUNTING = SystemSpec(
    name="accounting",
    auth="oauth2",
    signature="hmac",
    resources=_resources(
        ResourceSpec(
            name="payments",
            prefix="pay",
            noun="payment",
            required=("amount_minor", "currency"),
            types={
                "amount_minor": "integer",
                "currency": "string",
                "payer_email": "email",
                "reference": "string",
                "received_at": "datetime",
            },
            defaults={"received_at": lambda record, now: now},
        ),
        ResourceSpec(
            name="invoices",
            prefix="inv",
            noun="invoice",
            required=("customer_email", "total_minor", "currency"),
            types={
                "number": "string",
                "customer_email": "email",
                "total_minor": "integer",
                "currency": "string",
                "status": "string",
            },
            choices={"status": ("draft", "open", "paid", "void")},
            defaults={
                "status": "draft",
                "number": lambda record, now: "INV-" + record["id"].rsplit("_", 1)[-1],
            },
        ),
        ResourceSpec(
            name="payees",
            prefix="payee",
            noun="payee",
            required=("name", "email"),
            types={"name": "string", "email": "email", "kind": "string"},
            choices={"kind": ("employee", "vendor")},
            defaults={"kind": "vendor"},
        ),
    ),
)

INVENTORY = SystemSpec(
    name="inventory",
    auth="api_key",
    signature="hmac",
    resources=_resources(
        ResourceSpec(
            name="products",
            prefix="prod",
            noun="product",
            required=("sku", "name"),
            types={"sku": "string", "name": "string", "stock": "integer"},
            defaults={"stock": 0},
        ),
        ResourceSpec(
            name="adjustments",
            prefix="adj",
            noun="adjustment",
            required=("reference", "lines"),
            types={"reference": "string", "reason": "string", "lines": "list"},
            defaults={"reason": "sale"},
            validator=_validate_adjustment_lines,
        ),
        ResourceSpec(
            name="accounts",
            prefix="acct",
            noun="account",
            required=("email",),
            types={"email": "email", "name": "string", "role": "string"},
            defaults={"role": "staff"},
        ),
    ),
    seed={
        "products": tuple(
            {"sku": sku, "name": name, "stock": 100}
            for sku, name in (
                ("SKU-CHAIR", "Office chair"),
                ("SKU-DESK", "Standing desk"),
                ("SKU-LAMP", "Desk lamp"),
                ("SKU-MONITOR", "27-inch monitor"),
                ("SKU-DOCK", "USB-C dock"),
            )
        )
    },
)

HR = SystemSpec(
    name="hr",
    auth="bearer",
    signature="hmac",
    resources=_resources(
        ResourceSpec(
            name="employees",
            prefix="emp",
            noun="employee",
            required=("first_name", "last_name", "email"),
            types={
                "first_name": "string",
                "last_name": "string",
                "email": "email",
                "department": "string",
                "title": "string",
                "start_date": "date",
                "status": "string",
            },
            choices={"status": ("hired", "active", "left")},
            defaults={"status": "hired", "start_date": lambda record, now: now[:10]},
            created_event="employee.hired",
            transition=("status", {"left": "employee.left"}),
        ),
    ),
)

PAYMENTS = SystemSpec(
    name="payments",
    auth="basic",
    signature="timestamped",
    resources=_resources(
        ResourceSpec(
            name="charges",
            prefix="ch",
            noun="charge",
            required=("amount", "currency"),
            types={
                "amount": "integer",
                "currency": "string",
                "customer_email": "email",
                "description": "string",
                "status": "string",
                "paid_at": "datetime",
            },
            choices={"status": ("succeeded", "failed")},
            defaults={
                "status": "succeeded",
                "description": "",
                "paid_at": lambda record, now: now if record.get("status") == "succeeded" else None,
            },
            created_event=None,
            transition=("status", {"succeeded": "payment.succeeded", "failed": "payment.failed"}),
        ),
    ),
)

SYSTEM_SPECS: dict[str, SystemSpec] = {spec.name: spec for spec in (CRM, ACCOUNTING, INVENTORY, HR, PAYMENTS)}
