"""Fuzzing the doors events come in by: /hooks/<system>/ (signed, so the input reaches the parser,
and unsigned) and the publish API (one event and batches). Whatever arrives: never a 5xx, an
answer within 5 s, a JSON message with every 4xx, and a refused request stores nothing."""

import json
import time

import pytest
import requests
from django.conf import settings
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from connectors.signatures import sign
from hub.models import Delivery, Event
from hub.services.users import user_token_create
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db

SECONDS = 5.0
DEEP = 10_000

# JSON values (as raw text) that have broken parsers and databases: each is sent as the whole
# body and inside an otherwise valid event, where it gets past the envelope checks.
VALUES = {
    "arrays nested 10,000 deep": b"[" * DEEP + b"]" * DEEP,
    "objects nested 10,000 deep": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "unclosed nesting 10,000 deep": b"[" * DEEP,
    "lone surrogate, escaped": b'"\\ud800"',
    "lone low surrogate as a key": b'{"\\udfff": 1}',
    "lone surrogate, raw bytes": b'"\xed\xa0\x80"',
    "1e999": b"1e999",
    "-1e999": b"-1e999",
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "integer of 5,000 digits": b"9" * 5000,
    "negative integer of 5,000 digits": b"-" + b"9" * 5000,
    "integer just past 64 bits": b"18446744073709551616",
    "float of 400 digits": b"0." + b"1" * 400,
    "NUL, escaped": b'"x\\u0000y"',
    "NUL, raw": b'"x\x00y"',
    "control characters, raw": b'"\x01\x1f"',
    "huge string": b'"' + b"x" * 600_000 + b'"',
    "non-UTF-8 bytes": b'"\xff\xfe"',
    "duplicate keys": b'{"id": "a", "id": "b"}',
    "broken JSON": b'{"a": ',
    "number, not a record": b"42",
}
# Whole bodies that are not an event at all.
BODIES = {
    "empty body": b"",
    "whitespace only": b" \n\t ",
    "non-UTF-8 body": b"\xff\xfe\xfd",
    "UTF-16 with a byte order mark": '{"id": "a"}'.encode("utf-16"),
    "array": b"[]",
    "array of events": b'[{"id": "e1", "type": "deal.won"}]',
    "string": b'"deal.won"',
    "number": b"3.14",
    "null": b"null",
    "true": b"true",
    "duplicate keys at the top": b'{"id": "a", "type": "deal.won", "id": "b", "data": {"id": "d"}}',
    **{f"{name} (whole body)": raw for name, raw in VALUES.items()},
}


MULTIPART = b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n'


def webhook_event(value: bytes, n: int = 0) -> bytes:
    """A vendor event whose record carries `value`."""
    return b'{"id": "evt-%d", "type": "deal.won", "data": {"id": "deal-%d", "v": ' % (n, n) + value + b"}}"


def published_event(value: bytes, n: int = 0) -> bytes:
    return (
        b'{"system": "crm", "type": "deal.won", "idempotency_key": "k-%d", "payload": {"v": ' % n
        + value
        + b"}}"
    )


def batch(value: bytes, n: int = 0) -> bytes:
    return b'{"events": [' + published_event(b"1", n) + b", " + published_event(value, n + 1) + b"]}"


@pytest.fixture
def crm():
    return SystemFactory(name="CRM", slug="crm")


@pytest.fixture
def deal_flow(crm):
    source = model_with_fields(crm, "Deal", "/deals", "id! stage")
    target = model_with_fields(
        SystemFactory(name="Books", slug="books"), "Invoice", "/invoices", "reference!"
    )
    return flow_with_mapping(
        source_model=source, target_model=target, event_type="deal.won",
        rules=[{"target": "reference", "source": "id"}],
    )  # fmt: skip


@pytest.fixture
def token(personas, crm):
    return user_token_create(user=personas["publisher"], actor=personas["admin"], systems=[crm])


@pytest.fixture
def doors(crm, deal_flow, token):
    """name -> send(body, content_type): the ways a body reaches the hub."""
    client = Client()

    def hook(body, content_type="application/json", signed=True, slug="crm", method="POST"):
        headers = {"X-Signature": sign(crm, body)} if signed else {}
        return client.generic(
            method, f"/hooks/{slug}/", data=body, content_type=content_type, headers=headers
        )

    def publish(body, content_type="application/json", method="POST"):
        return client.generic(
            method, "/api/v1/events/", data=body, content_type=content_type,
            headers={"Authorization": f"Token {token}"},
        )  # fmt: skip

    return {
        "signed webhook": hook,
        "unsigned webhook": lambda b, **kw: hook(b, signed=False, **kw),
        "publish": publish,
    }


def stored() -> tuple[int, int]:
    return Event.objects.count(), Delivery.objects.count()


def problems_with(label: str, send, *args, events: int = 1, **kwargs) -> list[str]:
    """`send(*args, **kwargs)` once and say what went wrong: a 5xx, more than 5 s, a 4xx without a JSON message,
    something stored by a refused request (or more than `events` by an accepted one)."""
    before = stored()
    started = time.monotonic()
    response = send(*args, **kwargs)
    elapsed = time.monotonic() - started
    after = stored()
    status, content = response.status_code, response.content
    problems = []
    if status >= 500:
        problems.append(f"{status} {content[:200]!r}")
    if elapsed >= SECONDS:
        problems.append(f"answered in {elapsed:.1f} s")
    if status >= 400:
        try:
            message = json.loads(content).get("error")
        except (ValueError, AttributeError):
            message = None
        if not isinstance(message, str) or not message:
            problems.append(f"{status} without a JSON error message: {content[:200]!r}")
        if after != before:
            problems.append(
                f"refused with {status}, yet stored events and deliveries went {before} -> {after}"
            )
    elif after[0] - before[0] > events:
        problems.append(f"stored {after[0] - before[0]} events")
    return [f"{label}: {problem}" for problem in problems]


class Findings(list):
    def __str__(self) -> str:
        return f"{len(self)} findings:\n" + "\n".join(self)

    def check(self, label: str, send, *args, events: int = 1, **kwargs) -> None:
        self.extend(problems_with(label, send, *args, events=events, **kwargs))


@pytest.fixture
def findings():
    """Every problem of a test's inputs, to report together at its end."""
    return Findings()


@pytest.mark.parametrize("door", ["signed webhook", "unsigned webhook", "publish"])
def test_it_survives_every_hostile_body(doors, door, findings):
    send = doors[door]
    for name, body in BODIES.items():
        findings.check(f"{door}, {name}", send, body)
    for n, (name, value) in enumerate(VALUES.items()):
        wrapped = published_event(value, n) if door == "publish" else webhook_event(value, n)
        findings.check(f"{door}, {name} inside an event", send, wrapped)
    assert not findings, str(findings)


def test_it_survives_hostile_values_inside_a_batch(doors, findings):
    for n, (name, value) in enumerate(VALUES.items()):
        findings.check(f"batch, {name}", doors["publish"], batch(value, 2 * n), events=2)
    assert not findings, str(findings)


def test_it_refuses_a_batch_of_1001_events_and_stores_none(doors):
    events = b", ".join(published_event(b"1", n) for n in range(settings.HUB_MAX_BATCH_EVENTS + 1))
    response = doors["publish"](b'{"events": [' + events + b"]}")
    assert response.status_code == 413 and "limit is 1000" in response.json()["error"]
    assert stored() == (0, 0)


def test_it_answers_wrong_content_types_and_methods_in_json(doors, findings):
    body = webhook_event(b"1")
    for door, send in doors.items():
        wrapped = published_event(b"1", 7) if door == "publish" else body
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml", ""):
            findings.check(f"{door}, {content_type!r}", send, wrapped, content_type=content_type)
        findings.check(f"{door}, multipart", send, MULTIPART, content_type="multipart/form-data; boundary=b")
        for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS"):
            findings.check(f"{door}, {method}", send, wrapped, method=method)
    findings.check("unknown system", doors["signed webhook"], body, slug="no-such-system")
    assert not findings, str(findings)


def test_it_refuses_the_publish_api_without_a_valid_token(crm, findings):
    client = Client()
    for headers in ({}, {"Authorization": "Token nope"}, {"Authorization": "Token " + "\x00" * 40}):
        findings.check(
            f"token {headers}", client.post, "/api/v1/events/", published_event(b"1"),
            content_type="application/json", headers=headers,
        )  # fmt: skip
    assert not findings, str(findings)


# --- random input ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**200)
    | st.floats()  # NaN and infinities included; json.dumps writes them as NaN and Infinity
    | st.text(st.characters(exclude_categories=()), max_size=20),  # lone surrogates included
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=()), max_size=6), children, max_size=4)
    ),
    max_leaves=25,
)
raw_values = json_values.map(lambda value: json.dumps(value).encode())
random_bodies = st.one_of(
    raw_values,
    st.binary(max_size=300),
    raw_values.map(webhook_event),
    raw_values.map(published_event),
    raw_values.map(batch),
)


@hypothesis_settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=random_bodies, door=st.sampled_from(["signed webhook", "unsigned webhook", "publish"]))
def test_it_survives_random_json_and_bytes(doors, body, door):
    problems = problems_with(f"{door}, {body[:200]!r}", doors[door], body, events=2)
    assert not problems, problems


# --- over a real socket: lengths, limits and chunked bodies --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_answers_oversized_and_chunked_bodies_over_http(live_server, crm, deal_flow, personas, findings):
    token = user_token_create(user=personas["publisher"], actor=personas["admin"], systems=[crm])
    hook_url, publish_url = f"{live_server.url}/hooks/crm/", f"{live_server.url}/api/v1/events/"
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def chunks(body: bytes, size: int = 65536):
        return lambda: (body[i : i + size] for i in range(0, len(body), size))

    over_hook = webhook_event(b'"' + b"x" * settings.HUB_MAX_WEBHOOK_BYTES + b'"')
    over_hook_signed = {"X-Signature": sign(crm, over_hook), "Content-Type": "application/json"}
    over_batch = published_event(b'"' + b"x" * settings.HUB_MAX_BATCH_BYTES + b'"')
    small = webhook_event(b"1")
    cases = {
        "webhook just above the size limit": (hook_url, over_hook, over_hook_signed),
        "publish just above the size limit": (publish_url, over_batch, auth),
        "webhook chunked, no length": (
            hook_url, chunks(small), {"X-Signature": sign(crm, small), "Content-Type": "application/json"}
        ),
        "webhook chunked, above the size limit": (hook_url, chunks(over_hook), over_hook_signed),
        "publish chunked, no length": (publish_url, chunks(published_event(b"1", 9)), auth),
        "publish chunked, above the size limit": (publish_url, chunks(over_batch), auth),
    }  # fmt: skip
    for label, (url, body, headers) in cases.items():
        data = body() if callable(body) else body
        findings.check(label, requests.post, url, data=data, headers=headers, timeout=SECONDS)
    assert not findings, str(findings)
