"""Every form an admin or an ops user can post, fed each kind of hostile input: never a 5xx, and
every answer within 5 seconds.

The forms are found from the URL patterns (every page outside the API, the webhooks and Django's
admin), their field names read from the page the form lives on, so a new form is fuzzed without
a change here. Each input class goes into every field at once, in a file field as an upload, and
as the raw body of the JSON endpoints (the mapper's preview and save).
"""

import json
import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from connectors.base import ErrorClass
from dlq.models import DeadLetter
from hub.models import Delivery, DeliveryStatus
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.pipeline.signals import delivery_dead_lettered
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields
from tests.routes import all_routes

pytestmark = pytest.mark.django_db

SECONDS = 5.0
SELF_REF = json.dumps(
    {
        "components": {
            "schemas": {"A": {"properties": {k: {"$ref": "#/components/schemas/A"} for k in "abcdefg"}}}
        }
    }
)
LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)
# (name, text put in every field); bytes classes go in the raw body instead.
INPUTS = [
    ("deep JSON list", "[" * 10_000 + "]" * 10_000),
    ("deep JSON object", '{"a":' * 10_000 + "1" + "}" * 10_000),
    ("deep filter", "(" * 900 + "a = 1" + ")" * 900),
    ("deep not", "not " * 450 + "a = 1"),
    ("lone surrogate", '{"id": "\\ud800", "\\udfff": 1}'),
    ("1e999", '{"id": 1e999}'),
    ("NaN", '{"id": NaN, "n": Infinity}'),
    ("5,000 digits", '{"id": ' + "9" * 5000 + "}"),
    ("5,000 digits bare", "9" * 5000),
    ("NUL", 'a\x00b {"id": "\\u0000"}'),
    ("1 MB string", "x" * 1_000_000),
    ("deep YAML", "[" * 50_000 + "]" * 50_000),
    ("deep YAML block", "".join(f"{' ' * i}a:\n" for i in range(3000))),
    ("billion laughs", LAUGHS),
    ("self-referential $ref", SELF_REF),
    ("huge number words", "amount > " + "9" * 5000),
]
RAW_BODIES = [
    ("non-UTF-8 body", b"\xff\xfe\xfa" * 100),
    ("lone surrogate form", b"text=x%ED%A0%80y&filter_text=%ED%A0%80&sample=%ED%A0%80&record=%ED%A0%80"),
    ("deep JSON body", b"[" * 10_000 + b"]" * 10_000),
    ("1e999 body", b'{"rules": [], "record_source": "paste", "record_text": "{\\"a\\": 1e999}"}'),
]
SKIPPED = ("api/", "hooks/", "django-admin/", "healthz", "readyz", "metrics", "accounts/logout")
NAME = re.compile(r'name="([^"]+)"')
NOT_FUZZED = {"csrfmiddlewaretoken"}


def ui_routes() -> list[tuple[str, str]]:
    """(URL name, pattern) of every page route outside the API, the webhooks and Django's admin."""
    return [(r.name, r.pattern) for r in all_routes() if r.name and not r.pattern.startswith(SKIPPED)]


@pytest.fixture
def world(personas):
    crm = SystemFactory(name="CRM", slug="crm")
    source = model_with_fields(crm, "Deal", "/deals", "id! amount:number customer.email", sample={"id": "d1"})
    target = model_with_fields(
        SystemFactory(name="Books", slug="books"), "Invoice", "/invoices", "reference!"
    )
    flow = flow_with_mapping(
        source_model=source, target_model=target, rules=[{"target": "reference", "source": "id"}],
        actor=personas["admin"],
    )  # fmt: skip
    events_store([IncomingEvent(crm, "deal.won", "e1", {"id": "d1", "amount": 5})])
    delivery = Delivery.objects.get(flow=flow)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD)
    delivery_dead_lettered.send(
        sender=Delivery,
        delivery=delivery,
        error_class=ErrorClass.REJECTED,
        reason="refused",
        last_response={},
    )
    letter = DeadLetter.objects.get(delivery=delivery)
    return {"system": crm, "model": source, "field": source.fields.first(), "flow": flow, "letter": letter}


def objects_for(name: str, world: dict, personas: dict) -> dict:
    """The path arguments of a URL name: the object of its kind the world holds."""
    if name.startswith("hub-users"):
        return {"pk": personas["ops"].pk}
    if name.startswith("connectors"):
        return {"pk": world["system"].pk, "move_pk": 1}
    if name.startswith("mappings-field"):
        return {"pk": world["field"].pk}
    if name.startswith("mappings-model"):
        return {"pk": world["model"].pk}
    if name.startswith("mappings-"):
        return {"pk": world["flow"].mapping_id, "number": 1}
    if name.startswith("flows"):
        return {"pk": world["flow"].pk}
    if name == "hub-history-event":
        return {"pk": world["letter"].delivery.event_id}
    if name.startswith("dlq"):
        return {"pk": world["letter"].pk}
    if name.startswith("hub-demo"):
        return {"slug": world["system"].slug}
    return {"pk": 1, "kind": "webhook"}


def url_of(name: str, route: str, world: dict, personas: dict) -> str:
    wanted = set(re.findall(r"<(?:\w+:)?(\w+)>", route))
    kwargs = {key: value for key, value in objects_for(name, world, personas).items() if key in wanted}
    return reverse(name, kwargs=kwargs)


def field_names(client: Client, url: str, detail: str | None, read: dict[str, set[str]]) -> set[str]:
    """The names the form at `url` posts, read from its page (or from the page it lives on). A page
    is read once per test: `read` keeps the names of the pages read so far (a handful of detail
    pages serve most of the routes)."""
    names: set[str] = set()
    for page in filter(None, (url, detail)):
        if page not in read:
            response = client.get(page)
            ok = response.status_code == 200 and "html" in response.get("Content-Type", "")
            read[page] = set(NAME.findall(response.content.decode())) if ok else set()
        names |= read[page]
    return (names - NOT_FUZZED) or {"text", "name", "note", "reason"}


def timed(call, *args, **kwargs) -> tuple[int, float]:
    started = time.monotonic()
    response = call(*args, **kwargs)
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    return response.status_code, time.monotonic() - started


def posts_for(client: Client, url: str, names: set[str], value: str):
    """The requests one input class makes at one form: every field at once (files as uploads),
    split in groups when the value is large, so Django's body limit does not refuse it first."""
    names = sorted(names)
    group = 4 if len(value) > 100_000 else len(names)
    for start in range(0, len(names), group):
        data = {}
        for name in names[start : start + group]:
            is_file = name in ("document", "openapi_file")
            data[name] = (
                SimpleUploadedFile("doc.yaml", value.encode("utf-8", "surrogatepass")) if is_file else value
            )
        data.setdefault("action", "read")
        yield lambda data=data: client.post(f"{url}?limit={2**64}", data)


def detail_page(name: str, world: dict, personas: dict) -> str | None:
    prefix = name.split("-")[0]
    pages = {
        "connectors": reverse("connectors-detail", args=[world["system"].pk]),
        "mappings": reverse("mappings-model-detail", args=[world["model"].pk]),
        "flows": reverse("flows-edit", args=[world["flow"].pk]),
        "dlq": reverse("dlq-detail", args=[world["letter"].pk]),
        "hub": reverse("hub-users"),
        "alerts": reverse("alerts-rules"),
    }
    return pages.get(prefix)


@pytest.mark.parametrize(("label", "value"), INPUTS, ids=[label for label, _ in INPUTS])
@pytest.mark.parametrize("role", ["admin", "ops"])
def test_no_form_answers_a_5xx_or_takes_more_than_5_s(world, personas, role, label, value):
    client = Client(raise_request_exception=False)
    client.force_login(personas[role])
    failures = []
    read: dict[str, set[str]] = {}
    for name, route in ui_routes():
        url = url_of(name, route, world, personas)
        names = field_names(client, url, detail_page(name, world, personas), read)
        for post in posts_for(client, url, names, value):
            status, seconds = timed(post)
            if status >= 500 or seconds > SECONDS:
                failures.append(f"{name} {url}: {status} in {seconds:.1f} s")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("label", "body"), RAW_BODIES, ids=[label for label, _ in RAW_BODIES])
def test_no_form_answers_a_raw_body_with_a_5xx(world, personas, label, body):
    client = Client(raise_request_exception=False)
    client.force_login(personas["admin"])
    failures = []
    for name, route in ui_routes():
        url = url_of(name, route, world, personas)
        for content_type in ("application/json", "application/x-www-form-urlencoded"):
            status, seconds = timed(client.post, url, body, content_type=content_type)
            if status >= 500 or seconds > SECONDS:
                failures.append(f"{name} {url} ({content_type}): {status} in {seconds:.1f} s")
    assert not failures, "\n".join(failures)


def test_the_json_endpoints_answer_deep_and_huge_rules_with_a_4xx(world, personas):
    client = Client(raise_request_exception=False)
    client.force_login(personas["admin"])
    mapping = world["flow"].mapping_id
    deep = 1
    for _ in range(60):
        deep = [deep]
    both = {"mappings-preview", "mappings-save"}
    bodies = [  # (body, the endpoints that refuse it with a 4xx; the others answer, never a 5xx)
        ({"rules": [{"target": "reference", "value": deep}]}, set()),
        ({"rules": [{"target": "reference", "source": "id"}] * 5000}, both),
        ({"rules": [{"target": f"t{i}", "source": "x"} for i in range(500)], "record_source": "paste",
          "record_text": json.dumps({"x": "a" * 480_000})}, {"mappings-preview"}),
    ]  # fmt: skip
    for body, refused in bodies:
        for name in sorted(both):
            url = reverse(name, args=[mapping])
            status, seconds = timed(client.post, url, json.dumps(body), content_type="application/json")
            assert (400 <= status < 500) if name in refused else status < 500, (name, status)
            assert seconds < SECONDS


@pytest.mark.parametrize("value", [str(2**64), "9" * 5000, "-1", "x\x00", "%ff"])
def test_keyset_cursors_and_page_parameters_never_answer_a_5xx(world, personas, value):
    client = Client(raise_request_exception=False)
    client.force_login(personas["admin"])
    params = {"after": value, "below": value, "before": value, "limit": value, "offset": value, "page": value}
    for name in ("hub-history", "hub-audit", "dlq-inbox", "flows-list", "connectors-list", "alerts-list"):
        status, seconds = timed(client.get, reverse(name), params)
        assert status < 500 and seconds < SECONDS, (name, status)
