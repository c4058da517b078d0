"""The role matrix: every route of the project (tests/routes.py walks them) against every persona
(anonymous, a publisher by API token and by session, a signed-in account with no role, an
auditor, an ops user, an admin), reading and changing.

What each persona should meet is derived from the guards the views really wear (the role
decorators of hub/access.py, the method decorators, the DRF permission classes of hub/roles.py),
and the guards are held to the written policy below: a route without a guard fails with its
name, and so does one whose writers differ from the policy. Every refusal is checked to change
nothing: the row count of every table is the same before and after.

One seeded database for the module (the demo, plus a dead letter, a bulk job, an alert, a
channel and API tokens), rolled back after it; each test rolls back its own changes.
"""

import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated

from connectors.base import ErrorClass
from connectors.models import System
from dlq.jobs import bulk_job_start
from dlq.models import DeadLetter
from hub.access import role_required
from hub.alerts.conditions import CONDITIONS
from hub.alerts.models import Alert, AlertRule
from hub.alerts.services import channel_create
from hub.demo import demo_seed
from hub.models import AuditEntry, Delivery, DeliveryStatus, Event, Flow, FlowState, SchemaDrift, VersionMove
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.pipeline.signals import delivery_dead_lettered
from hub.roles import ADMIN, AUDITOR, OPS, PUBLISHER, READERS, _RolePermission
from hub.services.users import api_token_create
from tests.factories import UserFactory
from tests.routes import Route, all_routes

pytestmark = pytest.mark.django_db

NOTES = Path("/tmp/notes/issue9-roles.md")

# persona -> its roles (None: not signed in). "publisher-token" sends its API key and no session.
PERSONAS = {
    "anonymous": None,
    "publisher-token": frozenset({PUBLISHER}),
    "publisher": frozenset({PUBLISHER}),
    "outsider": frozenset(),
    "auditor": frozenset({AUDITOR}),
    "ops": frozenset({OPS}),
    "admin": frozenset({ADMIN}),
}
ANY_SIGNED_IN = frozenset({"*"})  # DRF's IsAuthenticated
WRITES = ("POST", "PUT", "PATCH", "DELETE")

# Routes without a role check, on purpose: each answers for itself (test_public_routes).
PUBLIC = {
    "login": "the sign-in page",
    "logout": "signing out ends only the caller's own session",
    "healthz": "load-balancer probe: says the process is up, nothing more",
    "readyz": "load-balancer probe: names missing dependencies, details only to admins",
    "metrics": "Prometheus: from loopback, with its bearer token, or a reader's session (metrics_allowed)",
    "hooks-receive": "vendors' webhooks, authenticated by their signature (hub.pipeline.ingest)",
    "favicon": "the hub's icon, which browsers ask for before anyone signs in",
}
# Any signed-in account may read the API's description: it holds no data, and a publisher needs
# the contract it publishes against. The only reads a publisher is not refused.
DOCS = {"api-schema", "api-docs"}
# Django's admin has its own staff check (test_django_admin_is_for_staff_only).
SKIPPED = ("django-admin/",)

# The policy, written out: who may change what. Configuration (systems, models, mappings, flows'
# settings, users, alert rules and channels) is the admin's; ops operate.
OPERATE = {
    "flows-pause", "flows-resume", "flows-poll", "connectors-test",
    "alerts-acknowledge", "alerts-mute", "alerts-unmute",
    "dlq-inbox", "dlq-detail", "dlq-job", "dlq-bulk", "dlq-bulk-all", "dlq-job-cancel", "dlq-replay",
    "dlq-resume-replay", "dlq-fix", "dlq-fix-fields", "dlq-arrived", "dlq-send-again", "dlq-discard",
    "api-flows-pause", "api-flows-resume", "api-dead-letter-jobs-list", "api-dead-letter-jobs-cancel",
    "api-dead-letters-arrived", "api-dead-letters-discard", "api-dead-letters-replay",
    "api-dead-letters-send-again", "api-systems-test-connection", "api-flows-poll",
    "api-alerts-acknowledge", "api-alerts-mute", "api-alerts-unmute",
}  # fmt: skip
PUBLISH = {"api-events-list"}
# Pages a reader may POST to that change nothing (the mapper's preview runs rules on a record).
READ_ONLY_POSTS = {"mappings-preview", "api-mappings-preview"}
# Pages only an admin may even open: the forms that change configuration, and the users.
ADMIN_ONLY_PAGES = {
    "hub-users", "hub-users-add", "hub-users-password", "connectors-add", "connectors-edit",
    "connectors-credentials", "connectors-version", "mappings-model-add", "flows-add", "flows-edit", "flows-spec-import",
    "alerts-rule-add", "alerts-rule-edit", "alerts-channel-add", "alerts-channel-edit",
    # Not for auditors either: the demo's systems are for trying things out (ops look, admins act).
    "hub-demo", "hub-demo-credentials",
    # GET says how a test event an admin sent is doing (the button's answer asks again).
    "flows-test-event",
    # The whole configuration at once, for programs that manage it (readers download it on its page).
    "api-specification",
    # The API's users and tokens, as the Users page.
    "api-users-list", "api-users-detail", "api-tokens-list", "api-tokens-detail",
    # API version moves, as the version-move page; a vendor template's models, as the new-model page.
    "api-version-moves-list", "api-version-moves-detail", "api-systems-template-models",
}  # fmt: skip

# Exempt from CSRF by design, with why; every other route refuses a session POST without a token.
CSRF_EXEMPT = {
    "hooks-receive": "vendors cannot hold a CSRF token; the signature authenticates the sender",
    "healthz": "GET only: another method is a 405, not the CSRF failure page",
    "readyz": "GET only: another method is a 405, not the CSRF failure page",
    "metrics": "GET only: another method is a 405, not the CSRF failure page",
}
# Token-authenticated API calls carry no session, so DRF checks no CSRF token for them
# (test_a_token_needs_no_csrf_token).


# --------------------------------------------------------------------------------------------------
# The guards a view wears
# --------------------------------------------------------------------------------------------------

ROLE_CHECK = role_required(ADMIN)(lambda request: None).__code__


@dataclass(frozen=True)
class Layer:
    """One guard around a view, outermost first: a method check or a role check."""

    methods: frozenset[str] | None = None
    read: frozenset[str] | None = None
    write: frozenset[str] | None = None


def page_layers(callback) -> list[Layer]:
    """The method and role checks wrapped around a function view, outermost first."""
    found, fn = [], callback
    while fn is not None:
        names = inspect.getclosurevars(fn).nonlocals if getattr(fn, "__closure__", None) else {}
        if getattr(fn, "__code__", None) is ROLE_CHECK:
            write = names["write_roles"] if names["write_roles"] is not None else names["roles"]
            found.append(Layer(read=frozenset(names["roles"]), write=frozenset(write)))
        elif "request_method_list" in names:
            found.append(Layer(methods=frozenset(names["request_method_list"])))
        fn = getattr(fn, "__wrapped__", None)
    return found


def api_roles(route: Route, method: str) -> frozenset[str] | None:
    """The roles DRF lets through for `method` (None: a permission class this test cannot read)."""
    actions = getattr(route.callback, "actions", None) or {}
    view = route.callback.cls(**route.callback.initkwargs)
    view.action_map, view.action = actions, actions.get(method.lower())
    allowed = None
    for permission in view.get_permissions():
        if isinstance(permission, _RolePermission):
            roles = frozenset(permission.read_roles if method in SAFE_METHODS else permission.roles)
        elif type(permission) is IsAuthenticated:
            roles = ANY_SIGNED_IN
        else:
            return None
        allowed = roles if allowed is None or allowed == ANY_SIGNED_IN else allowed & roles
    return allowed


def api_handles(route: Route, method: str) -> bool:
    actions = getattr(route.callback, "actions", None)
    if actions is not None:
        return method.lower() in actions or (method == "HEAD" and "get" in actions)
    handler = "get" if method == "HEAD" else method.lower()  # View.setup answers HEAD with get
    return hasattr(route.callback.cls, handler)


def is_api(route: Route) -> bool:
    return hasattr(route.callback, "cls")


def allows(roles: frozenset[str] | None, persona: str) -> bool:
    held = PERSONAS[persona]
    if held is None:
        return False
    return roles == ANY_SIGNED_IN or bool(roles & held)


def outcome(route: Route, persona: str, method: str) -> str:
    """What the persona should meet: "login" (sent to sign in), "401", "403", "405" or "view"."""
    if is_api(route):
        if PERSONAS[persona] is None:
            return "401"
        if not allows(api_roles(route, method), persona):
            return "403"
        return "view" if api_handles(route, method) else "405"
    signed_in = persona not in ("anonymous", "publisher-token")  # pages read the session only
    for layer in page_layers(route.callback):
        if layer.methods is not None and method not in layer.methods:
            return "405"
        if layer.read is not None:
            if not signed_in:
                return "login"
            if not allows(layer.read if method in ("GET", "HEAD", "OPTIONS") else layer.write, persona):
                return "403"
    return "view"


def writers(route: Route) -> frozenset[str]:
    """The roles whose POST (PUT, PATCH, DELETE) reaches the view."""
    return frozenset(
        role
        for role in (ADMIN, OPS, AUDITOR, PUBLISHER)
        for method in WRITES
        if outcome(
            route, {ADMIN: "admin", OPS: "ops", AUDITOR: "auditor", PUBLISHER: "publisher"}[role], method
        )
        == "view"
    )


def guarded(route: Route) -> bool:
    if is_api(route):
        return all(api_roles(route, method) is not None for method in ("GET", *WRITES))
    return any(layer.read is not None for layer in page_layers(route.callback))


def checked_routes() -> list[Route]:
    return [r for r in all_routes() if not r.pattern.startswith(SKIPPED)]


# --------------------------------------------------------------------------------------------------
# The seeded world, its URLs and the row counts
# --------------------------------------------------------------------------------------------------

# (URL name prefix, the seeded object its pk names); the first match wins.
PK_OF = [
    ("hub-users-token-revoke", "token"), ("hub-users", "user"), ("connectors", "system"),
    ("mappings-field-add", "model"), ("mappings-field", "field"), ("mappings-model", "model"),
    ("mappings-", "mapping"), ("flows", "flow"), ("api-flows", "flow"), ("hub-history-event", "event"),
    ("api-events", "event"), ("api-deliveries", "delivery"), ("api-audit", "audit"),
    ("dlq-job", "job"), ("api-dead-letter-jobs", "job"), ("dlq", "letter"), ("api-dead-letters", "letter"),
    ("alerts-rule", "rule"), ("alerts-channel", "channel"), ("alerts", "alert"),
    ("api-systems", "system"), ("api-models", "model"), ("api-fields", "field"), ("api-mappings", "mapping"),
    ("api-alert-rules", "rule"), ("api-alert-channels", "channel"), ("api-alerts", "alert"), ("api-users", "user"), ("api-tokens", "token"),
    ("hub-drift", "drift"), ("api-drift", "drift"), ("api-version-moves", "move"),
]  # fmt: skip


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
            users = {
                "publisher": UserFactory(username="pat-publisher", role=PUBLISHER),
                "outsider": UserFactory(username="olga-outsider", role=None),
                "auditor": UserFactory(username="audrey-auditor", role=AUDITOR),
                "ops": UserFactory(username="oscar-ops", role=OPS),
                "admin": UserFactory(username="alice-admin", role=ADMIN),
                "user": UserFactory(username="uma-machine", role=PUBLISHER),
            }
        admin = users["admin"]
        demo_seed(actor=admin)
        flow = Flow.objects.filter(event_type="deal.won").order_by("pk").first()
        events_store(
            [IncomingEvent(flow.source_system, flow.event_type, "roles-1", flow.source_model.sample)]
        )
        delivery = Delivery.objects.filter(flow=flow).get()
        Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, attempts=1)
        delivery.refresh_from_db()
        delivery_dead_lettered.send(
            sender=Delivery, delivery=delivery, error_class=ErrorClass.REJECTED,
            reason="422 from the target: sku is unknown", last_response={"status": 422},
        )  # fmt: skip
        job = bulk_job_start(action="discard", filters={}, description="all", reason="seed", actor=admin)
        draft = Flow.objects.exclude(pk=flow.pk).order_by("pk").first()
        Flow.objects.filter(pk=draft.pk).update(state=FlowState.DRAFT)
        systems = list(System.objects.all())
        _, key = api_token_create(user=users["publisher"], systems=systems, actor=admin)
        token, _ = api_token_create(user=users["user"], systems=systems, actor=admin)
        objects = {
            **users,
            "key": key,
            "token": token,
            "system": flow.source_system,
            "model": flow.source_model,
            "field": flow.source_model.fields.order_by("pk").first(),
            "mapping": flow.mapping,
            "flow": flow,
            "draft": draft,
            "event": Event.objects.get(),
            "delivery": delivery,
            "audit": AuditEntry.objects.order_by("seq").first(),
            "letter": DeadLetter.objects.get(),
            "job": job,
            "rule": AlertRule.objects.filter(flow=flow).order_by("pk").first(),
            "alert": Alert.objects.create(
                rule=AlertRule.objects.filter(flow=flow).order_by("pk").first(),
                started_at=timezone.now(),
                summary="4 of 10 deliveries failed",
            ),  # fmt: skip
            "channel": channel_create(
                kind="email", name="Ops email", values={"to": "ops@example.com"}, actor=None
            ),
            "drift": SchemaDrift.objects.create(
                system=flow.source_system,
                data_model=flow.source_model,
                kind="added",
                path="coupon",
                seen_type="string",
                first_seen_at=timezone.now(),
                last_seen_at=timezone.now(),
            ),  # fmt: skip
            "move": VersionMove.objects.create(
                system=flow.target_system, from_in="header", to_version="v9", to_in="header"
            ),
        }
        yield objects
        transaction.set_rollback(True)


# Query strings a page needs to find what it is about.
QUERY = {"alerts-rule-add": f"?kind={next(iter(CONDITIONS))}"}


def url_of(route: Route, world: dict) -> str:
    values = {"number": 1, "move_pk": 1, "kind": "email", "slug": world["system"].slug, "format": "json"}
    if "pk" in route.arguments:
        kind = next((obj for prefix, obj in PK_OF if route.name.startswith(prefix)), None)
        assert kind, f"{route.name}: no seeded object for its pk; add it to PK_OF"
        values["pk"] = world[kind].pk
    url = reverse(route.name, kwargs={name: values[name] for name in route.arguments})
    return url + QUERY.get(route.name, "")


@functools.cache
def _counting_query() -> str:
    tables = sorted(
        {
            model._meta.db_table
            for model in apps.get_models(include_auto_created=True)
            if model._meta.managed and not model._meta.proxy
        }
    )
    quote = connection.ops.quote_name
    return "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {quote(t)})" for t in tables)


def row_counts() -> tuple[int, ...]:
    """The row count of every table (auto-created many-to-many tables too), in one query."""
    with connection.cursor() as cursor:
        cursor.execute(_counting_query())
        return tuple(cursor.fetchone())


def client_for(persona: str, world: dict, **kwargs) -> Client:
    if persona == "publisher-token":
        return Client(
            raise_request_exception=False, headers={"Authorization": f"Token {world['key']}"}, **kwargs
        )
    client = Client(raise_request_exception=False, **kwargs)
    if persona != "anonymous":
        client.force_login(world[persona])
    return client


def send(client: Client, method: str, url: str, api: bool):
    if method in ("GET", "HEAD"):
        return client.generic(method, url)
    if api:
        return client.generic(method, url, b"{}", content_type="application/json")
    return client.post(url, {})


FINDINGS = [
    "Fixed: POST /api/v1/flows/<pk>/resume/ let an ops user switch on a draft flow (one that has never "
    "run), which the pages keep for admins (flows-enable, the inbox's resume-and-replay); it is now a "
    "403 for anyone but an admin (hub/api/flows.py).",
    "No refusal (sign-in redirect, 401, 403, 405, CSRF failure) writes any row, in any table. A sign-in "
    "writes a session, an axes access log and an audit entry; a failed one an axes attempt and an audit "
    "entry; an empty sign-in form writes nothing.",
    "Publishers (by token or session) may read /api/schema/ and /api/docs/ (IsAuthenticated): the "
    "contract, no data; kept on purpose (DOCS), every other read is a 403 to them.",
]


@dataclass
class Tally:
    requests: int = 0
    cells: set = field(default_factory=set)
    findings: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def tally():
    counted = Tally()
    yield counted
    routes = checked_routes()
    NOTES.parent.mkdir(parents=True, exist_ok=True)
    NOTES.write_text(
        "# Route × role matrix (tests/hub/test_route_roles.py)\n\n"
        f"- {len(routes)} routes outside Django's admin (spot-checked apart) × {len(PERSONAS)} personas "
        f"({', '.join(PERSONAS)}) = {len(routes) * len(PERSONAS)} route × persona pairs; "
        f"{len(counted.cells)} route × persona × method cells, {counted.requests} requests.\n"
        + "".join(f"- {finding}\n" for finding in [*FINDINGS, *counted.findings])
    )
    print(NOTES.read_text())


def expect(response, expected: str, method: str) -> str | None:
    """Why the answer is wrong for `expected`, or None."""
    status = response.status_code
    if status >= 500:
        return f"{status}"
    if expected == "login":
        location = response.get("Location", "")
        return (
            None
            if status == 302 and location.startswith(reverse("login"))
            else f"{status}, not sent to sign in"
        )
    if expected == "401":
        return None if status in (401, 403) else f"{status}, not 401/403"
    if expected in ("403", "405"):
        return None if status == int(expected) else f"{status}, not {expected}"
    refused = (401, 403, 404) if method in ("GET", "HEAD") else (401, 403)
    return f"{status}: refused where the guard lets it through" if status in refused else None


# --------------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------------


def test_every_route_has_a_guard_that_matches_the_policy(tally):
    problems, read_pages_taking_posts = [], []
    for route in checked_routes():
        if not route.name:
            problems.append(f"{route.pattern}: no URL name")
            continue
        if route.name in PUBLIC:
            continue
        if not guarded(route):
            problems.append(f"{route.name} ({route.pattern}): no access decorator or DRF role permission")
            continue
        wrote = writers(route)
        if route.name in OPERATE:
            wanted = {ADMIN, OPS}
        elif route.name in PUBLISH:
            wanted = {ADMIN, PUBLISHER}
        elif route.name in READ_ONLY_POSTS or wrote == set(READERS):
            wanted = set(READERS)  # a read page: the matrix checks that a reader's POST changes nothing
            if route.name not in READ_ONLY_POSTS:
                read_pages_taking_posts.append(route.name)
        else:
            wanted = {ADMIN} if wrote else set()
        if wrote != wanted:
            problems.append(f"{route.name}: written by {sorted(wrote)}, the policy says {sorted(wanted)}")
    admin_pages = {
        r.name
        for r in checked_routes()
        if r.name not in PUBLIC
        and outcome(r, "auditor", "GET") == "403"
        and outcome(r, "admin", "GET") == "view"  # a page, not a POST-only endpoint
    }
    if admin_pages != ADMIN_ONLY_PAGES:
        problems.append(
            f"pages an auditor may not open: {sorted(admin_pages - ADMIN_ONLY_PAGES)} new, "
            f"{sorted(ADMIN_ONLY_PAGES - admin_pages)} no longer"
        )
    tally.findings.append(
        f"{len(read_pages_taking_posts)} read pages (readers, no method check) answer a POST like a GET "
        f"instead of a 405; a reader's POST to them changes no row: {', '.join(sorted(read_pages_taking_posts))}"
    )
    assert not problems, "\n".join(problems)


def matrix(persona: str, world: dict, tally: Tally, methods_of):
    """Send `methods_of(route)` to every guarded route as `persona`; yields the route, a label,
    what the guards say the persona should meet, the response and whether any row count moved."""
    client = client_for(persona, world)
    for route in checked_routes():
        if route.name in PUBLIC:
            continue
        url = url_of(route, world)
        for method in methods_of(route):
            before = row_counts()
            response = send(client, method, url, is_api(route))
            tally.requests += 1
            tally.cells.add((route.pattern, persona, method))
            label = f"{method} {url} ({route.name}) as {persona}"
            yield route, label, outcome(route, persona, method), response, row_counts() != before


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_reads(world, tally, persona):
    """GET and HEAD: anonymous is sent to sign in (401 from the API), a publisher is refused
    everything but the API's description, a reader is let in; nobody meets a 5xx and no read
    changes a row."""
    failures = []
    for route, label, expected, response, changed in matrix(persona, world, tally, lambda r: ("GET", "HEAD")):
        why = expect(response, expected, response.request["REQUEST_METHOD"])
        publisher_read = persona == "publisher" or (persona == "publisher-token" and is_api(route))
        if publisher_read and route.name not in DOCS and response.status_code not in (403, 405):
            why = why or f"{response.status_code} to a publisher, not 403"
        if persona == "anonymous" and response.status_code == 200:
            why = why or "200 to an anonymous caller"
        if changed:
            why = why or "a read changed rows"
        if why:
            failures.append(f"{label}: {why}")
    assert not failures, "\n".join(failures)


def writes_of(route: Route) -> tuple[str, ...]:
    return WRITES if is_api(route) else ("POST",)


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_changes(world, tally, persona):
    """POST (and PUT, PATCH, DELETE to the API) with an empty body: a refusal changes no row;
    a reader's POST that a read page lets through changes none either."""
    failures = []
    for _, label, expected, response, changed in matrix(persona, world, tally, writes_of):
        why = expect(response, expected, response.request["REQUEST_METHOD"])
        may_change = expected == "view" and persona in ("ops", "admin", "publisher", "publisher-token")
        if changed and not may_change:
            why = why or f"{response.status_code} yet rows changed"
        if why:
            failures.append(f"{label}: {why}")
    assert not failures, "\n".join(failures)


def test_every_session_post_needs_the_csrf_token(world, tally):
    client = client_for("admin", world, enforce_csrf_checks=True)
    failures = []
    for route in checked_routes():
        if route.name in CSRF_EXEMPT:
            continue
        url = url_of(route, world)
        before = row_counts()
        response = send(client, "POST", url, is_api(route))
        tally.requests += 1
        text = response.content.decode(errors="replace")
        if response.status_code != 403 or "CSRF" not in text:
            failures.append(f"POST {url} ({route.name}) without a CSRF token: {response.status_code}")
        if row_counts() != before:
            failures.append(f"POST {url} ({route.name}) without a CSRF token changed rows")
    for name in sorted(CSRF_EXEMPT.keys() - {"hooks-receive"}):
        assert client.post(reverse(name)).status_code == 405, name
    assert not failures, "\n".join(failures)


def test_a_token_needs_no_csrf_token(world):
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Token {world['key']}"})
    response = client.post(reverse("api-events-list"), b"{}", content_type="application/json")
    assert response.status_code == 400  # refused for its body, not for a missing CSRF token


def test_public_routes(world, tally):
    anonymous = Client(raise_request_exception=False)
    signed_in = {persona: client_for(persona, world) for persona in ("publisher", "outsider", "auditor")}
    before = row_counts()
    assert anonymous.get(reverse("healthz")).status_code == 200
    ready = anonymous.get(reverse("readyz"))
    assert ready.status_code in (200, 503) and "details" not in ready.json()  # 503: no worker runs here
    assert anonymous.get(reverse("metrics")).status_code == 200  # the test client is loopback
    assert anonymous.get(reverse("metrics"), REMOTE_ADDR="10.0.0.7").status_code == 401
    assert anonymous.get(reverse("metrics"), headers={"X-Forwarded-For": "10.0.0.7"}).status_code == 401
    assert anonymous.get(reverse("login")).status_code == 200
    assert anonymous.get("/static/hub/toasts.js").status_code == 200
    assert anonymous.get(reverse("favicon")).status_code == 301
    assert anonymous.post(reverse("login"), {}).status_code == 200  # the form again, with its errors
    hook = reverse("hooks-receive", kwargs={"slug": world["system"].slug})
    assert anonymous.get(hook).status_code == 405
    assert (
        400 <= anonymous.post(hook, b"{}", content_type="application/json").status_code < 500
    )  # no signature
    for persona, client in signed_in.items():
        assert client.get(reverse("metrics"), REMOTE_ADDR="10.0.0.7").status_code == (
            200 if persona == "auditor" else 401
        ), persona
    assert row_counts() == before
    tally.requests += 15


def test_signing_out_ends_only_the_callers_session(world):
    for persona in ("publisher", "auditor", "ops", "admin"):
        client = client_for(persona, world)
        assert client.get(reverse("logout")).status_code == 405  # signing out is a POST
        response = client.post(reverse("logout"))
        assert response.status_code == 302 and response["Location"] == reverse("login")
        assert client.get(reverse("home"))["Location"].startswith(reverse("login"))


def test_django_admin_is_for_staff_only(world):
    for persona in PERSONAS:
        response = client_for(persona, world).get("/django-admin/")
        assert response.status_code == 302 and "/django-admin/login/" in response["Location"], persona


def test_ops_cannot_switch_on_a_draft_flow_anywhere(world):
    """Enabling a flow that has never run is configuration: only an admin may, on the page, from
    the dead-letter inbox and through the API's resume alike."""
    draft, ops = world["draft"], client_for("ops", world)
    assert ops.post(reverse("flows-enable", args=[draft.pk])).status_code == 403
    ops.post(reverse("flows-resume", args=[draft.pk]))
    api = ops.post(reverse("api-flows-resume", args=[draft.pk]), b"{}", content_type="application/json")
    assert api.status_code == 403, api.content
    draft.refresh_from_db()
    assert draft.state == FlowState.DRAFT
