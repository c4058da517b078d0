"""Talking to the sandbox systems' control API from tests, and draining the queue in-process."""

import asyncio
import threading
import time

import requests

from connectors import asynchttp
from connectors.models import AuthScheme, System
from connectors.sandbox import DEMO_CREDENTIALS, DEMO_WEBHOOK_SECRETS
from dlq.models import DeadLetter
from hub.engine.calls import LoopCalls
from hub.models import Delivery, Flow
from hub.pipeline import clock
from hub.pipeline.drain import DeliveryRun, deliveries_process_batch, next_due_in_seconds
from hub.pipeline.ingest import IncomingEvent, events_store
from mappings.models import DataModel
from tests.factories import flow_with_mapping, model_with_fields


def control(sandbox, system: str, method: str, path: str, **kwargs):
    response = requests.request(method, f"{sandbox.url(system)}/_control/{path}", timeout=10, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def fault(sandbox, system: str, **spec):
    return control(sandbox, system, "POST", "faults", json=spec)


def records(sandbox, system: str, resource: str) -> list[dict]:
    """Every record of a resource, through the system's own API (all pages)."""
    headers = auth_headers(system, sandbox)
    found, page = [], None
    while True:
        params = {"limit": 500, **({"page": page} if page else {})}
        body = requests.get(
            f"{sandbox.url(system)}/{resource}",
            headers=headers,
            params=params,
            auth=_basic(system),
            timeout=10,
        ).json()
        found.extend(body["data"])
        page = body.get("next")
        if not page:
            return found


def hire_announced_to(sandbox, hub_url: str, **person) -> dict:
    """HR sends its signed webhooks to the hub at `hub_url`, then someone is hired there; the
    employee HR created (its id included)."""
    control(sandbox, "hr", "PUT", "webhook", json={
        "url": f"{hub_url}/hooks/hr/", "secret": DEMO_WEBHOOK_SECRETS["hr"], "duplicate_rate": 0, "enabled": True,
    })  # fmt: skip
    hired = requests.post(
        f"{sandbox.url('hr')}/employees", headers=auth_headers("hr"), json=person, timeout=5
    )
    assert hired.status_code == 201, hired.text
    return hired.json()


def auth_headers(system: str, sandbox=None) -> dict[str, str]:
    creds = DEMO_CREDENTIALS[system]
    if "client_id" in creds:
        token = requests.post(
            f"{sandbox.url(system)}/oauth/token",
            timeout=5,
            data={"grant_type": "client_credentials", **creds},
        ).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}
    if "api_key" in creds:
        return {"X-Api-Key": creds["api_key"]}
    if "token" in creds:
        return {"Authorization": f"Bearer {creds['token']}"}
    return {}


def _basic(system: str):
    creds = DEMO_CREDENTIALS[system]
    return (creds["username"], creds["password"]) if "username" in creds else None


def sandbox_system(sandbox, slug: str, **overrides) -> System:
    schemes = {
        "crm": AuthScheme.API_KEY,
        "inventory": AuthScheme.API_KEY,
        "hr": AuthScheme.BEARER,
        "accounting": AuthScheme.OAUTH2,
        "payments": AuthScheme.BASIC,
    }
    fields = dict(
        name=slug.title(),
        slug=slug,
        base_url=sandbox.url(slug),
        auth_scheme=schemes[slug],
        credentials=dict(DEMO_CREDENTIALS[slug]),
        webhook_secret={"secret": DEMO_WEBHOOK_SECRETS[slug]},
        connect_timeout=1.0,
        read_timeout=2.0,
        signature_scheme="hmac_sha256",
    )
    fields.update(overrides)
    return System.objects.create(**fields)


def sandbox_model(sandbox, text: str) -> DataModel:
    """A data model of a sandbox system, written "slug Name /resource fields" (fields as in field_table)."""
    slug, name, resource, fields = text.split(maxsplit=3)
    return model_with_fields(sandbox_system(sandbox, slug), name, resource, fields)


def sandbox_flow(sandbox, source: str, target: str, **flow_options) -> Flow:
    """A flow between the data models of two sandbox systems, each written as for sandbox_model."""
    return flow_with_mapping(
        source_model=sandbox_model(sandbox, source),
        target_model=sandbox_model(sandbox, target),
        **flow_options,
    )


def hr_to_inventory_accounts(sandbox, **flow_options):
    """HR employees become inventory accounts: the pipeline most delivery tests use."""
    rules = [
        {"target": "email", "source": "email", "transforms": [{"name": "lower"}]},
        {
            "target": "name",
            "transforms": [{"name": "template", "options": {"template": "{first_name} {last_name}"}}],
        },
        {"target": "role", "constant": "staff"},
    ]
    return sandbox_flow(
        sandbox,
        "hr Employee /employees id! first_name! last_name! email! department",
        "inventory Account /accounts email! name role",
        rules=rules,
        **flow_options,
    )


def dead_letter_of_a_failing_target(sandbox) -> DeadLetter:
    """The dead letter of a new hire's account that inventory refuses with a 500 on both attempts."""
    flow = hr_to_inventory_accounts(sandbox, max_attempts=2)
    fault(sandbox, "inventory", mode="500", rate=1.0, methods=["POST"])
    events_store([IncomingEvent(flow.source_system, "employee.hired", "e1", employee_event(1))])
    drain_all()
    return DeadLetter.objects.get()


def employee_event(n: int = 1, *, record_id: str | None = None, email: str | None = None, **data) -> dict:
    record = {
        "id": record_id or f"emp_{n}",
        "first_name": "Ann",
        "last_name": f"Lee{n}",
        "email": email or f"Ann.Lee{n}@Example.com",
        "department": "Operations",
        **data,
    }
    return {"id": f"evt_{n}", "type": "employee.hired", "data": record}


def drain_all(timeout: float = 30.0) -> None:
    """Carry out every delivery in this process. A retry is not waited for: the pipeline's clock
    moves forward to it."""
    deadline = time.monotonic() + timeout
    while Delivery.objects.unfinished().exists():
        if time.monotonic() > deadline:
            raise AssertionError(
                "deliveries still unfinished: "
                f"{list(Delivery.objects.unfinished().values('id', 'status', 'last_error'))}"
            )
        if deliveries_process_batch():
            continue
        due_in = next_due_in_seconds()
        if due_in is None:
            time.sleep(0.05)  # nothing will come due by itself: wait for something to arrive
        else:
            clock.advance(due_in + 0.001)


def drain_on_an_event_loop(expected: int) -> None:
    """Carry out the `expected` due deliveries as the engine does, its calls on an event loop (in a
    test with a real transaction: inside one the run makes its calls inline)."""
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=loop.run_forever, daemon=True)
    running.start()
    try:
        run = DeliveryRun(calls=LoopCalls(loop))
        assert run.claim(expected + 10) == expected
        while run.busy():
            run.step()
        run.finish()
        asyncio.run_coroutine_threadsafe(asynchttp.close_sessions(), loop).result(timeout=5)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        running.join(timeout=5)
        loop.close()


def demo_on_sandbox(sandbox, hub_url: str | None = None, *, duplicate_rate: float = 0.0) -> None:
    """The demo seeded against this sandbox; with hub_url, every sandbox system sends its signed
    webhooks there (the live server), as `manage.py up` has them do."""
    from hub.demo import demo_seed

    demo_seed(urls={slug: sandbox.url(slug) for slug in DEMO_CREDENTIALS})
    if hub_url is None:
        return
    for slug, secret in DEMO_WEBHOOK_SECRETS.items():
        control(sandbox, slug, "PUT", "webhook", json={
            "url": f"{hub_url}/hooks/{slug}/", "secret": secret, "duplicate_rate": duplicate_rate, "enabled": True,
        })  # fmt: skip
