"""Secrets never leave: distinctive secrets of every kind are planted, events go through the real
pipeline to a loopback target that echoes every request back (2xx, 4xx, 401 and 500 answers), and
then every form of every secret is looked for in a raw dump of the database, in every page an
admin, ops user or auditor can reach by following links, in every API answer, in the exports and
in the logs. Zero hits."""

import json
import logging

import pytest
from django.urls import reverse

from connectors.models import AuthScheme, System
from connectors.signatures import sign
from hub.models import Delivery, DeliveryStatus, Flow, FlowState
from hub.pipeline import clock
from hub.pipeline.drain import deliveries_process_batch, next_due_in_seconds
from tests.conftest import wait_for
from tests.echo_target import EchoTarget
from tests.factories import flow_with_mapping, model_with_fields
from tests.leak_search import crawl_api, crawl_pages, database_dump, hits, hits_figure

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec-Sg4Kt8Lp2Vn6"
# One of each kind, each distinctive, several with characters that JSON, URLs or Python escape.
CREDENTIALS = {
    "bearer": {"token": 'bearer-Jq7"esc\\back/slash-é-ü'},
    "api_key": {"api_key": "apikey-Ur5 &+=?/#~%-end"},
    "basic": {"username": "basic-user-Wd3", "password": "basic-pw-Lm9$:/+"},
    "oauth": {"client_id": "client-id-Oa1x", "client_secret": "client-secret-Oa2+/="},
    "newline": {"api_key": "nlkey-Hy6\nsecond-line"},
}
SCHEMES = {
    "bearer": AuthScheme.BEARER,
    "api_key": AuthScheme.API_KEY,
    "basic": AuthScheme.BASIC,
    "oauth": AuthScheme.OAUTH2,
    "newline": AuthScheme.API_KEY,
}
ANSWERS = (201, 422, 500)  # then 401, last: it pauses the flows


def planted_secrets(echo: EchoTarget) -> dict[str, str]:
    found = {
        f"{kind}.{name}": value for kind, values in CREDENTIALS.items() for name, value in values.items()
    }
    user, password = CREDENTIALS["basic"]["username"], CREDENTIALS["basic"]["password"]
    found["basic.user:password"] = f"{user}:{password}"
    found["webhook_secret"] = WEBHOOK_SECRET
    for n, token in enumerate(echo.tokens):
        found[f"oauth.token{n}"] = token
    return found


def echo_world(echo: EchoTarget) -> tuple[System, list[Flow]]:
    """A signed webhook source and one target per sign-in method, all on the echo target."""
    shop = System.objects.create(
        name="Shop",
        slug="shop",
        base_url="",
        webhook_secret={"secret": WEBHOOK_SECRET},
        signature_scheme="hmac_sha256",
    )
    order = model_with_fields(shop, "Order", "/orders", "id! answer:number")
    flows = []
    for kind, credentials in CREDENTIALS.items():
        target = System.objects.create(
            name=f"Echo {kind}",
            slug=f"echo-{kind.replace('_', '-')}",
            base_url=f"{echo.url}/{kind}",
            auth_scheme=SCHEMES[kind],
            credentials=credentials,
            # The vendor is also a source: its answers show the signing secret we share with it.
            webhook_secret={"secret": WEBHOOK_SECRET},
            connect_timeout=1.0,
            read_timeout=2.0,
        )
        model = model_with_fields(target, "Order copy", "/orders", "id! answer:number")
        rules = [{"target": "id", "source": "id"}, {"target": "answer", "source": "answer"}]
        flows.append(
            flow_with_mapping(
                source_model=order,
                target_model=model,
                rules=rules,
                operation="create",
                max_attempts=2,
                name=f"Orders to {kind}",
            )  # fmt: skip
        )
    return shop, flows


def post_hook(client, system: System, n: int, answer: int) -> None:
    body = json.dumps({"id": f"evt-{n}", "type": "order.paid", "data": {"id": f"ord-{n}", "answer": answer}})
    response = client.post(
        f"/hooks/{system.slug}/",
        data=body.encode(),
        content_type="application/json",
        headers={"X-Signature": sign(system, body.encode())},
    )
    assert response.status_code == 202, response.content


def drain_until_settled() -> None:
    """Carry out every delivery that can be carried out; those of paused flows stay waiting. A
    retry is not waited for: the pipeline's clock moves forward to it."""
    for _ in range(500):
        if deliveries_process_batch():
            continue
        due_in = next_due_in_seconds()
        if due_in is None:
            return
        clock.advance(due_in + 0.001)
    raise AssertionError("deliveries did not settle")


def readable_places(client, personas, shop: System, flows: list[Flow]) -> dict[str, str]:
    """Pages (per role), API answers and exports, each joined into one text per place."""
    places = {}
    starts = [
        reverse("home"),
        reverse("connectors-list"),
        *[reverse("connectors-detail", args=[f.target_system_id]) for f in flows],
        *[reverse("flows-detail", args=[f.pk]) for f in flows],
        reverse("dlq-inbox"),
        reverse("hub-history"),
        reverse("hub-audit"),
    ]
    for role in ("admin", "ops", "auditor"):
        client.force_login(personas[role])
        pages = crawl_pages(client, starts)
        assert len(pages) > 40, f"the walk as {role} found only {len(pages)} pages"
        places[f"pages:{role}"] = "\n".join(pages.values())
    client.force_login(personas["admin"])
    answers = crawl_api(client)
    assert len(answers) > 20, f"the API walk found only {len(answers)} answers"
    places["api"] = "\n".join(answers.values())
    exports = [
        f"{reverse(name)}?format={fmt}"
        for name in ("hub-history-export", "hub-audit-export")
        for fmt in ("csv", "json")
    ]
    places["exports"] = "\n".join(crawl_pages(client, [*exports, reverse("flows-spec-export")]).values())
    return places


def test_it_never_lets_a_secret_out(client, personas, caplog):
    caplog.set_level(logging.DEBUG)
    with EchoTarget(revealed_secret=WEBHOOK_SECRET) as echo:
        shop, flows = echo_world(echo)
        client.force_login(personas["admin"])
        for flow in flows:  # Test connection writes what it found to the audit log
            assert client.post(reverse("connectors-test", args=[flow.target_system_id])).status_code < 500
        for n, answer in enumerate(ANSWERS, start=1):
            post_hook(client, shop, n, answer)
        drain_until_settled()
        post_hook(client, shop, len(ANSWERS) + 1, 401)
        drain_until_settled()
        secrets = planted_secrets(echo)

    # The echo really was hit in every way: successes, rejections, dead letters and a pause.
    statuses = set(Delivery.objects.values_list("status", flat=True))
    assert {DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD} <= statuses
    assert Flow.objects.filter(state=FlowState.PAUSED).exists()
    assert len(echo.tokens) >= 4  # a token, and a fresh one after the 401

    places = {"database": database_dump(), **readable_places(client, personas, shop, flows)}
    places["logs"] = caplog.text
    # The search looked at something: what the target echoed was kept, with the secrets replaced.
    for place in ("database", "pages:auditor", "api", "exports"):
        assert "[redacted]" in places[place], f"nothing redacted in {place}: did the echo arrive?"
    table = hits(secrets, places)
    figure = hits_figure(table, secrets, list(places))
    print(figure, *(f"{place}: {len(text)} characters" for place, text in places.items()), sep="\n")
    assert not table, "secrets found:\n" + figure


def settled() -> bool:
    """Nothing left to do but what waits for a paused flow."""
    waiting = Delivery.objects.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT))
    retrying = Delivery.objects.filter(status=DeliveryStatus.RETRYING, flow__state=FlowState.ACTIVE)
    return not waiting.exists() and not retrying.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_writes_no_secret_to_its_log(client, start_worker):
    with EchoTarget(revealed_secret=WEBHOOK_SECRET) as echo:
        shop, _ = echo_world(echo)
        worker = start_worker(workers=1, extra_env={"LOG_LEVEL": "DEBUG"})
        for n, answer in enumerate((*ANSWERS, 401), start=1):
            post_hook(client, shop, n, answer)
        wait_for(settled, timeout=60, message="every delivery to be carried out or held")
        secrets = planted_secrets(echo)
    places = {"database": database_dump(), "worker log": worker.output()}
    assert "dead-lettered" in places["worker log"] and echo.tokens  # it did the work, and signed in
    table = hits(secrets, places)
    assert not table, "secrets found:\n" + hits_figure(table, secrets, list(places))
