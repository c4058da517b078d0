"""The demo: sandbox systems, their data models and flows that show the product working."""

from django.db import transaction

from connectors.models import AuthScheme, SignatureScheme, System, SystemKind
from connectors.sandbox import DEFAULT_PORTS, DEMO_CREDENTIALS, DEMO_WEBHOOK_SECRETS
from hub.models import Flow, FlowState, Operation, Trigger
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel, Field, Mapping
from mappings.schema import guess_unit, infer_fields

SYSTEMS = {
    "crm": dict(
        name="CRM", kind=SystemKind.CRM, auth_scheme=AuthScheme.API_KEY, auth_config={"header": "X-Api-Key"}
    ),
    "accounting": dict(
        name="Accounting",
        kind=SystemKind.ACCOUNTING,
        auth_scheme=AuthScheme.OAUTH2,
        auth_config={"token_url": "/oauth/token"},
    ),
    "inventory": dict(
        name="Inventory",
        kind=SystemKind.INVENTORY,
        auth_scheme=AuthScheme.API_KEY,
        auth_config={"header": "X-Api-Key"},
    ),
    "hr": dict(name="HR", kind=SystemKind.HR, auth_scheme=AuthScheme.BEARER),
    "payments": dict(
        name="Payments",
        kind=SystemKind.PAYMENTS,
        auth_scheme=AuthScheme.BASIC,
        signature_scheme=SignatureScheme.TIMESTAMPED,
        signature_header="Payments-Signature",
        signature_prefix="",
    ),
}

SAMPLES = {
    ("crm", "Deal", "/deals"): {
        "id": "deal_000001",
        "title": "Office refit",
        "amount": 1250.5,
        "currency": "EUR",
        "stage": "won",
        "customer": {"email": "ann@example.com", "name": "Ann Lee"},
        "lines": [{"sku": "SKU-DESK", "quantity": 2, "unit_price": 400.0}],
        "owner_email": "sam@example.com",
        "created_at": "2026-11-23T10:00:00.000000Z",
        "updated_at": "2026-11-23T10:00:00.000000Z",
    },
    ("crm", "User", "/users"): {
        "id": "user_000001",
        "email": "sam@example.com",
        "full_name": "Sam Diaz",
        "role": "sales_rep",
        "active": True,
    },
    ("inventory", "Adjustment", "/adjustments"): {
        "id": "adj_000001",
        "reference": "deal_000001",
        "reason": "CRM deal won",
        "lines": [{"sku": "SKU-DESK", "quantity": -2}],
    },
    ("inventory", "Account", "/accounts"): {
        "id": "acct_000001",
        "email": "sam@example.com",
        "name": "Sam Diaz",
        "role": "staff",
    },
    ("accounting", "Payment", "/payments"): {
        "id": "pay_000001",
        "amount_minor": 125050,
        "currency": "EUR",
        "payer_email": "ann@example.com",
        "reference": "ch_000001",
        "received_at": "2026-11-23T10:00:00Z",
    },
    ("accounting", "Payee", "/payees"): {
        "id": "payee_000001",
        "name": "Sam Diaz",
        "email": "sam@example.com",
        "kind": "employee",
    },
    ("accounting", "Invoice", "/invoices"): {
        "id": "inv_000001",
        "number": "INV-deal_000001",
        "customer_email": "ann@example.com",
        "total_minor": 125050,
        "currency": "EUR",
        "status": "open",
    },
    ("hr", "Employee", "/employees"): {
        "id": "emp_000001",
        "first_name": "Sam",
        "last_name": "Diaz",
        "email": "sam@example.com",
        "department": "Sales",
        "title": "Account executive",
        "start_date": "2026-12-01",
        "status": "hired",
        "created_at": "2026-11-23T10:00:00.000000Z",
        "updated_at": "2026-11-23T10:00:00.000000Z",
    },
    ("payments", "Charge", "/charges"): {
        "id": "ch_000001",
        "amount": 125050,
        "currency": "eur",
        "customer_email": "Ann@Example.com",
        "description": "Invoice INV-deal_000001",
        "status": "succeeded",
        "paid_at": "2026-11-23T10:00:00Z",
    },
}

# Target fields the sandbox requires: required in the data model too, so the mapper flags them.
REQUIRED = {
    "Adjustment": {"reference", "lines"},
    "Payment": {"amount_minor", "currency"},
    "Payee": {"name", "email"},
    "User": {"email"},
    "Account": {"email"},
    "Invoice": {"number", "customer_email", "total_minor", "currency"},
}

# The field where each target keeps the source's id (or its own natural key): the hub searches
# by it before creating a record again whose first create may have arrived.
LOOKUPS = {
    "Adjustment": "reference",
    "Payment": "reference",
    "Invoice": "number",
    "Payee": "email",
    "Account": "email",
}

FLOWS = [
    dict(
        name="Won deals reduce stock",
        source=("crm", "Deal"),
        event_type="deal.won",
        target=("inventory", "Adjustment"),
        operation=Operation.CREATE,
        description="When a deal is won in the CRM, the sold items leave inventory.",
        rules=[
            {"target": "reference", "source": "id"},
            {"target": "reason", "constant": "CRM deal won"},
            {"target": "lines[].sku", "source": "lines[].sku", "transforms": [{"name": "upper"}]},
            {
                "target": "lines[].quantity",
                "source": "lines[].quantity",
                "transforms": [
                    {"name": "cast", "options": {"to": "integer"}},
                    {"name": "arithmetic", "options": {"operation": "negate"}},
                ],
            },
        ],
    ),
    dict(
        name="Payments recorded in accounting",
        source=("payments", "Charge"),
        event_type="payment.succeeded",
        target=("accounting", "Payment"),
        operation=Operation.CREATE,
        description="Every successful card payment becomes a payment received in the books.",
        rules=[
            {
                "target": "amount_minor",
                "source": "amount",
                "transforms": [{"name": "cast", "options": {"to": "integer"}}],
            },
            {"target": "currency", "source": "currency", "transforms": [{"name": "upper"}]},
            {
                "target": "payer_email",
                "source": "customer_email",
                "transforms": [{"name": "trim"}, {"name": "lower"}],
            },
            {"target": "reference", "source": "id"},
            {
                "target": "received_at",
                "source": "paid_at",
                "transforms": [{"name": "parse_datetime", "options": {}}],
            },
        ],
    ),
    dict(
        name="New employees get a CRM login",
        source=("hr", "Employee"),
        event_type="employee.hired",
        target=("crm", "User"),
        operation=Operation.UPSERT,
        description="People hired in HR are provisioned as CRM users.",
        rules=[
            {"target": "email", "source": "email", "transforms": [{"name": "trim"}, {"name": "lower"}]},
            {
                "target": "full_name",
                "transforms": [{"name": "template", "options": {"template": "{first_name} {last_name}"}}],
            },
            {
                "target": "role",
                "source": "department",
                "transforms": [
                    {
                        "name": "lookup",
                        "options": {"table": {"Sales": "sales_rep", "Support": "agent"}, "default": "viewer"},
                    }
                ],
            },
            {"target": "active", "constant": True},
        ],
    ),
    dict(
        name="New employees become payees",
        source=("hr", "Employee"),
        event_type="employee.hired",
        target=("accounting", "Payee"),
        operation=Operation.UPSERT,
        description="People hired in HR can be paid from accounting.",
        rules=[
            {
                "target": "name",
                "transforms": [{"name": "template", "options": {"template": "{first_name} {last_name}"}}],
            },
            {"target": "email", "source": "email", "transforms": [{"name": "lower"}]},
            {"target": "kind", "constant": "employee"},
        ],
    ),
    dict(
        name="Operations staff get inventory accounts",
        source=("hr", "Employee"),
        event_type="employee.hired",
        target=("inventory", "Account"),
        operation=Operation.UPSERT,
        filter={"path": "department", "op": "eq", "value": "Operations"},
        description="Only people hired into Operations need the inventory system.",
        rules=[
            {"target": "email", "source": "email", "transforms": [{"name": "lower"}]},
            {
                "target": "name",
                "transforms": [{"name": "template", "options": {"template": "{first_name} {last_name}"}}],
            },
            {"target": "role", "constant": "staff"},
        ],
    ),
    # Fails now and then on purpose, so ops can practise on real dead letters: the demo activity
    # types about one SKU in three in lower case, and this mapping (unlike "Won deals reduce
    # stock") does not upper-case them, so inventory refuses those deals as an unknown SKU.
    dict(
        name="Won deals checked against stock",
        source=("crm", "Deal"),
        event_type="deal.won",
        target=("inventory", "Adjustment"),
        operation=Operation.CREATE,
        description="Practice flow: fails now and then. Logs each won deal's items in inventory as a "
        "stock check (quantity 0). Its mapping forgets to upper-case SKUs, so a deal typed with a "
        "lowercase SKU is refused as an unknown SKU. Fix the record and replay it, or add the "
        "“Upper case” transform to the mapping and replay them all.",
        rules=[
            # Its own external id ("check-deal_…"): the lookup by reference after a lost answer
            # must not find the adjustment "Won deals reduce stock" made for the same deal.
            {
                "target": "reference",
                "transforms": [{"name": "template", "options": {"template": "check-{id}"}}],
            },
            {"target": "reason", "constant": "stock check"},
            {"target": "lines[].sku", "source": "lines[].sku"},
            {
                "target": "lines[].quantity",
                "source": "lines[].quantity",
                "transforms": [{"name": "arithmetic", "options": {"operation": "multiply", "operand": 0}}],
            },
        ],
    ),
    dict(
        name="Won deals invoiced (every 15 minutes)",
        source=("crm", "Deal"),
        event_type="*",
        target=("accounting", "Invoice"),
        operation=Operation.UPSERT,
        trigger=Trigger.SCHEDULED,
        schedule_minutes=15,
        filter={"path": "stage", "op": "eq", "value": "won"},
        description="A scheduled sweep: every won deal has an invoice, even if a webhook was missed.",
        rules=[
            {"target": "number", "transforms": [{"name": "template", "options": {"template": "INV-{id}"}}]},
            {"target": "customer_email", "source": "customer.email", "transforms": [{"name": "lower"}]},
            {
                "target": "total_minor",
                "source": "amount",
                "transforms": [{"name": "money_to_minor", "options": {"currency_path": "currency"}}],
            },
            {"target": "currency", "source": "currency", "transforms": [{"name": "upper"}]},
            {"target": "status", "constant": "open"},
        ],
    ),
]


def sandbox_url(slug: str, host: str = "127.0.0.1", port_base: int | None = None) -> str:
    port = DEFAULT_PORTS[slug] if port_base is None else port_base + list(DEFAULT_PORTS).index(slug) + 1
    return f"http://{host}:{port}"


def demo_seed(*, actor=None, urls: dict[str, str] | None = None) -> dict[str, int]:
    """Create (or bring back to the demo's shape) the demo systems, models and flows. Idempotent."""
    urls = urls or {slug: sandbox_url(slug) for slug in SYSTEMS}
    with transaction.atomic():
        systems = {slug: _system(slug, urls[slug]) for slug in SYSTEMS}
        models = {}
        for (slug, name, resource), sample in SAMPLES.items():
            models[(slug, name)] = _model(systems[slug], name, resource, sample)
        for spec in FLOWS:
            _flow(spec, systems, models, actor)
    return {"systems": len(systems), "models": len(models), "flows": len(FLOWS)}


def _system(slug: str, base_url: str) -> System:
    options = dict(SYSTEMS[slug])
    options.setdefault("signature_scheme", SignatureScheme.HMAC_SHA256)
    system, _ = System.objects.update_or_create(slug=slug, defaults={"base_url": base_url, **options})
    system.credentials = dict(DEMO_CREDENTIALS[slug])
    system.webhook_secret = {"secret": DEMO_WEBHOOK_SECRETS[slug]}
    system.save()
    return system


def _model(system: System, name: str, resource: str, sample: dict) -> DataModel:
    model, created = DataModel.objects.get_or_create(
        system=system,
        name=name,
        defaults={"resource_path": resource, "sample": sample, "lookup_field": LOOKUPS.get(name, "")},
    )
    if created:
        required = REQUIRED.get(name)
        Field.objects.bulk_create(
            Field(
                model=model,
                path=spec.path,
                type=spec.type,
                position=index,
                description=spec.description,
                required=(spec.path in required) if required is not None else False,
                unit=guess_unit(spec.path, spec.type, list(sample)),
            )
            for index, spec in enumerate(infer_fields(sample))
        )
    return model


def _flow(spec: dict, systems, models, actor) -> Flow:
    source, target = models[spec["source"]], models[spec["target"]]
    existing = Flow.objects.filter(name=spec["name"]).first()
    if existing:
        return existing
    mapping = Mapping.objects.create(name=spec["name"], source_model=source, target_model=target)
    mapping_version_save(mapping=mapping, rules=spec["rules"], actor=actor, comment="demo seed")
    return Flow.objects.create(
        name=spec["name"],
        description=spec.get("description", ""),
        source_system=systems[spec["source"][0]],
        source_model=source,
        event_type=spec["event_type"],
        target_system=systems[spec["target"][0]],
        target_model=target,
        operation=spec["operation"],
        mapping=mapping,
        filter=spec.get("filter"),
        trigger=spec.get("trigger", Trigger.REALTIME),
        schedule_minutes=spec.get("schedule_minutes"),
        state=FlowState.ACTIVE,
    )
