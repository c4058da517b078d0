import textwrap

import factory
from django.contrib.auth import get_user_model

from connectors.models import AuthScheme, SignatureScheme, System
from hub.models import Flow, FlowState, Operation
from hub.roles import grant_role
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel, Field, Mapping

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        self.save()
        if extracted:
            grant_role(self, extracted)


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = System

    name = factory.Sequence(lambda n: f"System {n}")
    slug = factory.Sequence(lambda n: f"system-{n}")
    base_url = "http://127.0.0.1:9"
    auth_scheme = AuthScheme.NONE
    signature_scheme = SignatureScheme.HMAC_SHA256
    webhook_secret = factory.LazyFunction(lambda: {"secret": "test-webhook-secret"})
    connect_timeout = 1.0
    read_timeout = 2.0


def crm_and_books() -> tuple[System, System]:
    """A CRM and the accounting system ("Books") that its deals become invoices in."""
    return SystemFactory(name="CRM", slug="crm"), SystemFactory(name="Books", slug="books")


class DataModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataModel

    system = factory.SubFactory(SystemFactory)
    name = factory.Sequence(lambda n: f"Model{n}")
    resource_path = "/records"


def field_table(text: str) -> dict[str, tuple[str, bool]]:
    """Fields written compactly: "id! amount:number! lines[].sku" (type defaults to string, ! = required)."""
    table = {}
    for word in text.split():
        required = word.endswith("!")
        path, _, kind = word.rstrip("!").partition(":")
        table[path] = (kind or "string", required)
    return table


def field_rows(text: str) -> list[tuple[str, str, bool]]:
    """The (path, type, required) rows of fields written in the compact text form of field_table."""
    return [(path, kind, required) for path, (kind, required) in field_table(text).items()]


def openapi_yaml(title: str, schemas: str) -> str:
    """An OpenAPI 3.0 document in YAML with no paths and these schemas (YAML, as under components.schemas)."""
    head = f'\nopenapi: 3.0.3\ninfo: {{title: {title}, version: "1"}}\npaths: {{}}\ncomponents:\n  schemas:\n'
    return head + textwrap.indent(textwrap.dedent(schemas).lstrip("\n"), "    ")


def model_with_fields(
    system: System, name: str, resource: str, fields: dict[str, tuple[str, bool]] | str, **extra
) -> DataModel:
    """A data model with its fields, given as a table or in the compact text form of field_table."""
    if isinstance(fields, str):
        fields = field_table(fields)
    model = DataModelFactory(system=system, name=name, resource_path=resource, **extra)
    Field.objects.bulk_create(
        Field(model=model, path=path, type=kind, required=required, position=i)
        for i, (path, (kind, required)) in enumerate(fields.items())
    )
    return model


def flow_with_mapping(
    *,
    source_model: DataModel,
    target_model: DataModel,
    rules: list[dict],
    event_type="*",
    operation=Operation.UPSERT,
    actor=None,
    **extra,
) -> Flow:
    mapping = Mapping.objects.create(
        name=f"{source_model.name} to {target_model.name}",
        source_model=source_model,
        target_model=target_model,
    )
    mapping_version_save(mapping=mapping, rules=rules, actor=actor)
    defaults = dict(max_attempts=4, retry_base_seconds=0.05, retry_max_seconds=0.5, state=FlowState.ACTIVE)
    defaults.update(extra)
    return Flow.objects.create(
        name=extra.pop("name", f"flow {Flow.objects.count() + 1}"),
        source_system=source_model.system,
        source_model=source_model,
        event_type=event_type,
        target_system=target_model.system,
        target_model=target_model,
        operation=operation,
        mapping=mapping,
        **{k: v for k, v in defaults.items() if k != "name"},
    )


def api_token_for(user, systems=None) -> str:
    """A publisher's API key, bound to `systems` (default: every system that exists now)."""
    from hub.services.users import api_token_create

    _, key = api_token_create(
        user=user, systems=list(System.objects.all()) if systems is None else systems, actor=None
    )
    return key


MAP_KINDS = ["crm", "accounting", "inventory", "hr", "ecommerce", "payments", "inventory", "other"]
MAP_FLOW_NAMES = [
    "Won deals become invoices", "New hires get accounts", "Paid orders reduce stock",
    "Refunds reach the ledger", "Customers copied to billing", "Leavers lose access",
    "Stock levels for the shop", "Card charges to accounting",
]  # fmt: skip


def flows_for_map(systems: int = 10, flows: int = 40, prefix: str = "") -> list[Flow]:
    """`systems` systems and `flows` flows between them with names as long as real ones: parallel
    and two-way flows, real-time and scheduled, and every health (working, failing, paused,
    draft, no traffic yet)."""
    from django.utils import timezone

    from hub.models import Delivery, DeliveryStatus, Event, Trigger

    nodes = [
        SystemFactory(name=f"{prefix}System {n}", slug=f"{prefix}sys-{n}", kind=MAP_KINDS[n % len(MAP_KINDS)])
        for n in range(systems)
    ]
    models = [model_with_fields(s, "Record", "/records", "email!") for s in nodes]
    made = []
    for n in range(flows):
        source, target = n % systems, (n * 3 + 1) % systems
        state = FlowState.PAUSED if n % 9 == 4 else FlowState.DRAFT if n % 11 == 6 else FlowState.ACTIVE
        scheduled = n % 5 == 0
        flow = flow_with_mapping(
            source_model=models[source], target_model=models[target], rules=[{"target": "email", "source": "email"}],
            name=f"{prefix}{MAP_FLOW_NAMES[n % len(MAP_FLOW_NAMES)]} {n:02d}",
            event_type="*" if scheduled else f"record.e{n % 4}", state=state,
            trigger=Trigger.SCHEDULED if scheduled else Trigger.REALTIME,
            schedule_minutes=15 if scheduled else None,
        )  # fmt: skip
        if state == FlowState.ACTIVE and n % 3 == 0:
            event = Event.objects.create(
                system=nodes[source], event_type="x", idempotency_key=f"{prefix}k{n}", payload={}
            )
            status = DeliveryStatus.RETRYING if n % 6 == 0 else DeliveryStatus.SUCCEEDED
            Delivery.objects.create(
                event=event, flow=flow, record_key="r", status=status, finished_at=timezone.now()
            )
        made.append(flow)
    return made
