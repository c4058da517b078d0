"""Keys (issue 9, point 1): the hub refuses public or missing keys, credentials never depend on
SECRET_KEY, `rotate_keys` moves every secret to the new key, and a secret no key opens is a
plain-words problem on the system's page with its flows paused: never a 500."""

import json
import os
import re
import subprocess
import sys
import time
from urllib.parse import urljoin, urlsplit

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import models

from connectors.crypto import Unreadable, forget_keys, legacy_key
from connectors.models import System
from connectors.signatures import sign
from hub import localenv
from hub.alerts.models import Channel
from hub.demo import demo_seed
from hub.models import AuditEntry, Delivery, DeliveryStatus, Flow, FlowState
from hub.pipeline.drain import deliveries_process_batch
from hub.pipeline.ingest import IncomingEvent, events_store, forget_systems
from tests.conftest import ROOT
from tests.sandbox_helpers import control, employee_event, hr_to_inventory_accounts, records

KEY_A = os.environ["HUB_ENCRYPTION_KEYS"]  # the test key every row is written with (pyproject)
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()


def run_python(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    """A fresh interpreter with only the given keys (none from the test run, no var/hub.env)."""
    keys = ("SECRET_KEY", "HUB_ENCRYPTION_KEYS", localenv.DEVELOPMENT_KEY, "DEBUG")
    base = {k: v for k, v in os.environ.items() if k not in keys}
    base |= {"HUB_ENV_FILE": str(tmp_path / "hub.env"), "DJANGO_SETTINGS_MODULE": "hub.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


SETUP = "import django; django.setup(); "


# -- refusing to start, and check --deploy ------------------------------------------------------


def test_it_refuses_to_start_with_debug_off_and_the_default_keys(tmp_path):
    started = run_python(SETUP + "print('started')", tmp_path)
    assert started.returncode != 0 and "started" not in started.stdout
    assert "The hub will not start with these keys (DEBUG is off)" in started.stderr
    assert localenv.GENERATE_SECRET_KEY in started.stderr
    assert localenv.GENERATE_ENCRYPTION_KEY in started.stderr


def test_it_refuses_a_missing_or_malformed_encryption_key_even_with_a_good_secret_key(tmp_path):
    good_secret = "x" * 60
    missing = run_python(SETUP, tmp_path, SECRET_KEY=good_secret)
    malformed = run_python(SETUP, tmp_path, SECRET_KEY=good_secret, HUB_ENCRYPTION_KEYS=f"{KEY_B},not-a-key")
    assert missing.returncode != 0 and "HUB_ENCRYPTION_KEYS is not set" in missing.stderr
    assert malformed.returncode != 0 and "HUB_ENCRYPTION_KEYS entry 2 is not a Fernet key" in malformed.stderr
    fine = run_python(SETUP + "print('started')", tmp_path, SECRET_KEY=good_secret, HUB_ENCRYPTION_KEYS=KEY_B)
    assert fine.returncode == 0 and "started" in fine.stdout


def manage(args: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess:
    return run_python(
        "import sys; from django.core.management import execute_from_command_line; "
        f"execute_from_command_line(['manage.py', *{args!r}])",
        tmp_path,
        **env,
    )


def test_check_deploy_reports_the_default_secret_key_and_the_missing_encryption_key(tmp_path):
    checked = manage(["check", "--deploy", "--tag", "security"], tmp_path, DEBUG="1")
    assert checked.returncode != 0
    assert "(hub.E001) SECRET_KEY is the public default" in checked.stderr
    assert "(hub.E002) HUB_ENCRYPTION_KEYS is not set" in checked.stderr
    assert localenv.GENERATE_ENCRYPTION_KEY in checked.stderr

    plain = manage(["check", "--tag", "security"], tmp_path, DEBUG="1")
    assert "hub.E00" not in plain.stderr + plain.stdout  # a deployment check only

    configured = manage(
        ["check", "--deploy", "--tag", "security"],
        tmp_path,
        DEBUG="1",
        SECRET_KEY="y" * 60,
        HUB_ENCRYPTION_KEYS=KEY_B,
    )
    assert "hub.E00" not in configured.stderr + configured.stdout


def test_the_development_key_lives_in_the_env_file_not_in_secret_key(tmp_path):
    """DEBUG on, no keys: a key generated once into var/hub.env; another SECRET_KEY still reads
    what the first process encrypted, and `manage.py up` keeps that key as the real one."""
    encrypt = SETUP + "from connectors.crypto import encrypt; print(encrypt({'api_key': 'dev-1'}))"
    first = run_python(encrypt, tmp_path, DEBUG="1", SECRET_KEY="first-" * 10)
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip().splitlines()[-1]
    development = localenv.read(tmp_path / "hub.env")[localenv.DEVELOPMENT_KEY]

    decrypt = SETUP + f"from connectors.crypto import decrypt; print(decrypt({token!r})['api_key'])"
    second = run_python(decrypt, tmp_path, DEBUG="1", SECRET_KEY="second-" * 10)
    assert second.stdout.strip().splitlines()[-1] == "dev-1"
    assert legacy_key("first-" * 10) != development

    assert localenv.ensure(tmp_path / "hub.env")
    assert localenv.read(tmp_path / "hub.env")["HUB_ENCRYPTION_KEYS"] == development
    assert not localenv.ensure(tmp_path / "hub.env")  # written once


# -- SECRET_KEY changes, nothing else does ---------------------------------------------------------

HREF = re.compile(r'(?:href|hx-get)="([^"#?]+)"')
NOT_PAGES = ("/accounts/logout", "/static/", "/django-admin/", "/api/docs", "/export", ".json")


def walk(client, start: list[str], limit: int = 300) -> dict[str, int]:
    """Every page reachable from `start` by links, with its status."""
    seen: dict[str, int] = {}
    queue = list(start)
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            for link in HREF.findall(response.content.decode()):
                target = urlsplit(urljoin(url, link))
                if not target.netloc and not any(part in target.path for part in NOT_PAGES):
                    queue.append(target.path)
    return seen


def signed_webhook(client, system: System):
    body = json.dumps({"id": f"evt-{time.time_ns()}", "type": "deal.updated", "data": {"id": "d1"}}).encode()
    header = "HTTP_" + system.signature_header.upper().replace("-", "_")
    return client.post(
        f"/hooks/{system.slug}/", body, content_type="application/json", **{header: sign(system, body)}
    )


def publish(client, system: System):
    event = {
        "system": system.slug,
        "type": "deal.updated",
        "idempotency_key": f"p-{time.time_ns()}",
        "payload": {"id": "d1"},
    }
    return client.post("/api/v1/events/", json.dumps(event), content_type="application/json")


@pytest.mark.django_db
def test_it_keeps_every_page_webhook_and_publish_working_when_secret_key_changes(client, personas, settings):
    demo_seed()
    systems = list(System.objects.order_by("slug"))
    stored = {s.slug: (s.credentials, s.secret) for s in systems}

    settings.SECRET_KEY = "a-new-secret-key-after-a-leak-" + "9" * 30
    forget_keys()
    forget_systems()
    client.force_login(personas["admin"])

    pages = walk(client, ["/"])
    assert len(pages) > 60 and set(pages.values()) == {200}, {u: s for u, s in pages.items() if s != 200}
    assert {s.slug: (s.credentials, s.secret) for s in System.objects.all()} == stored
    assert [signed_webhook(client, s).status_code for s in systems] == [202] * 5
    assert [publish(client, s).status_code for s in systems] == [202] * 5


# -- rotate_keys -----------------------------------------------------------------------------------


def rotate(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("rotate_keys", *args, stdout=out)
    return out.getvalue()


def secrets_of_everything() -> dict:
    return {
        **{f"system {s.slug}": (s.credentials, s.webhook_secret) for s in System.objects.all()},
        **{f"channel {c.name}": c.secrets for c in Channel.objects.all()},
    }


def raw_tokens() -> set[str]:
    """Every stored ciphertext, as the database holds it."""
    return set(
        System.objects.values_list(models.functions.Cast("credentials", models.TextField()), flat=True)
    )


@pytest.mark.django_db
def test_rotate_keys_moves_every_secret_to_the_new_key_then_the_old_key_can_go(settings):
    demo_seed()
    Channel.objects.create(
        name="Ops chat",
        kind="webhook",
        secrets={"url": "https://chat.example.com/T0/abc", "signing_secret": "s1"},
    )
    before = secrets_of_everything()
    tokens_before = raw_tokens()

    settings.HUB_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # the new key first, the old one still opens
    output = rotate()
    assert (
        "connectors.System.credentials: 5 re-encrypted, 0 already under the first key, 0 unreadable" in output
    )
    assert "connectors.System.webhook_secret: 5 re-encrypted" in output
    assert "alerts.Channel.secrets: 1 re-encrypted" in output
    assert raw_tokens().isdisjoint(tokens_before)
    assert AuditEntry.objects.filter(verb="rotate_keys").count() == 1

    again = rotate()  # idempotent: nothing left to do
    assert "connectors.System.credentials: 0 re-encrypted, 5 already under the first key" in again

    settings.HUB_ENCRYPTION_KEYS = [KEY_B]  # the old key removed
    assert secrets_of_everything() == before


@pytest.mark.django_db
def test_rotate_keys_dry_run_writes_nothing(settings):
    demo_seed()
    tokens = raw_tokens()
    settings.HUB_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    assert "connectors.System.credentials: 5 to re-encrypt" in rotate("--dry-run")
    assert raw_tokens() == tokens


@pytest.mark.django_db
def test_rotate_keys_upgrades_a_database_whose_secrets_came_from_the_old_secret_key(settings):
    old_secret_key = localenv.DEFAULT_SECRET_KEY  # what a default install used to encrypt with
    settings.HUB_ENCRYPTION_KEYS = [legacy_key(old_secret_key)]  # exactly what earlier versions did
    demo_seed()
    before = secrets_of_everything()

    settings.HUB_ENCRYPTION_KEYS = [KEY_B]
    assert System.objects.get(slug="crm").unreadable_secrets() == ["credentials", "webhook_secret"]
    output = rotate("--old-secret-key", old_secret_key)
    assert "connectors.System.credentials: 5 re-encrypted" in output
    assert secrets_of_everything() == before


@pytest.mark.django_db
def test_rotate_keys_names_what_it_cannot_decrypt_and_still_does_the_rest(settings):
    demo_seed()
    settings.HUB_ENCRYPTION_KEYS = [KEY_C]
    lost = System.objects.get(slug="hr")
    lost.credentials = {"token": "saved-under-a-key-now-lost"}
    lost.save()
    settings.HUB_ENCRYPTION_KEYS = [KEY_B, KEY_A]

    with pytest.raises(CommandError, match="1 values could not be decrypted"):
        rotate()
    settings.HUB_ENCRYPTION_KEYS = [KEY_B]
    readable = {s.slug: s.unreadable_secrets() for s in System.objects.all()}
    assert readable == {"accounting": [], "crm": [], "hr": ["credentials"], "inventory": [], "payments": []}


# -- a secret no key opens -------------------------------------------------------------------------


def lose_the_key(settings) -> None:
    """Every stored secret was written with KEY_A; the hub now only has KEY_B."""
    settings.HUB_ENCRYPTION_KEYS = [KEY_B]
    forget_systems()


@pytest.mark.django_db
def test_an_unreadable_secret_is_a_marker_that_saves_back_unchanged(settings):
    system = System.objects.create(name="CRM", slug="crm", credentials={"api_key": "k1"})
    token = raw_tokens().pop()
    lose_the_key(settings)
    system = System.objects.get(pk=system.pk)
    assert isinstance(system.credentials, Unreadable) and system.credentials.get("api_key") is None
    system.name = "Sales CRM"
    system.save()
    assert raw_tokens() == {token}
    settings.HUB_ENCRYPTION_KEYS = [KEY_A]
    assert System.objects.get(pk=system.pk).credentials == {"api_key": "k1"}


@pytest.mark.django_db
def test_an_unreadable_system_says_so_on_every_page_and_never_answers_500(client, personas, settings):
    demo_seed()
    crm = System.objects.get(slug="crm")
    lose_the_key(settings)
    client.force_login(personas["admin"])

    detail = client.get(f"/systems/{crm.pk}/").content.decode()
    assert (
        "Credentials unreadable." in detail
        and "HUB_ENCRYPTION_KEYS" in detail
        and "Replace secrets" in detail
    )
    assert "credentials unreadable" in client.get("/systems/").content.decode()

    flows = list(Flow.objects.filter(models.Q(source_system=crm) | models.Q(target_system=crm)))
    start = [
        "/",
        "/systems/",
        f"/systems/{crm.pk}/",
        f"/systems/{crm.pk}/edit/",
        f"/systems/{crm.pk}/credentials/",
    ]
    start += [f"/flows/{f.pk}/" for f in flows] + [f"/flows/{f.pk}/edit/" for f in flows]
    start += ["/api/v1/flows/", *[f"/api/v1/flows/{f.pk}/" for f in flows], "/api/v1/events/", "/flows/spec/"]
    pages = walk(client, start)
    assert len(pages) > 60 and set(pages.values()) == {200}, {u: s for u, s in pages.items() if s != 200}

    tested = client.post(f"/systems/{crm.pk}/test/", {"path": "/deals"}).content.decode()
    assert (
        "Not tested: The hub cannot read the stored sign-in credentials and webhook signing secret of CRM"
        in tested
    )

    webhook = signed_webhook_without_secret(client, crm)
    assert webhook.status_code == 503 and "cannot be decrypted" in webhook.json()["error"]
    assert publish(client, crm).status_code == 202  # publishing needs no secret of the system


def signed_webhook_without_secret(client, system: System):
    body = json.dumps({"id": "evt-1", "type": "deal.updated", "data": {"id": "d1"}}).encode()
    return client.post(
        f"/hooks/{system.slug}/", body, content_type="application/json", HTTP_X_SIGNATURE="sha256=00"
    )


@pytest.mark.django_db
def test_a_webhook_to_an_unreadable_system_pauses_its_flows_once_with_an_audit_entry(client, settings):
    demo_seed()
    crm = System.objects.get(slug="crm")
    flows = Flow.objects.filter(models.Q(source_system=crm) | models.Q(target_system=crm))
    active = set(flows.filter(state=FlowState.ACTIVE).values_list("pk", flat=True))
    assert active
    lose_the_key(settings)

    for _ in range(3):
        assert signed_webhook_without_secret(client, crm).status_code == 503
    assert set(flows.filter(state=FlowState.PAUSED).values_list("pk", flat=True)) >= active
    pauses = AuditEntry.objects.filter(verb="pause", target_id__in=[str(pk) for pk in active])
    assert pauses.count() == len(active) and pauses.first().actor_name == "hub"
    reason = Flow.objects.get(pk=min(active)).paused_reason
    assert (
        reason.startswith("paused automatically: The hub cannot read the stored")
        and "HUB_ENCRYPTION_KEYS" in reason
    )


@pytest.mark.django_db
def test_the_edit_pages_take_new_credentials_and_the_system_is_readable_again(client, personas, settings):
    crm = System.objects.create(
        name="CRM",
        slug="crm",
        auth_scheme="api_key",
        auth_config={"header": "X-Api-Key"},
        credentials={"api_key": "old"},
        signature_scheme="hmac_sha256",
        webhook_secret={"secret": "old-hook"},
    )
    lose_the_key(settings)
    client.force_login(personas["admin"])
    page = client.get(f"/systems/{crm.pk}/credentials/").content.decode()
    assert page.count("cannot be read") == 2

    half = client.post(f"/systems/{crm.pk}/credentials/", {"api_key": "new-key", "webhook_secret": ""})
    assert (
        half.status_code == 200
        and "The stored value cannot be read any more: type it again." in half.content.decode()
    )
    done = client.post(
        f"/systems/{crm.pk}/credentials/", {"api_key": "new-key", "webhook_secret": "new-hook"}
    )
    assert done.status_code == 302
    crm.refresh_from_db()
    assert (
        crm.unreadable_secrets() == []
        and crm.credentials == {"api_key": "new-key"}
        and crm.secret == "new-hook"
    )


@pytest.mark.django_db(transaction=True)
def test_deliveries_to_an_unreadable_target_never_call_it_and_wait_for_the_resume(fresh_sandbox, settings):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    target = flow.target_system
    events_store([IncomingEvent(flow.source_system, "employee.hired", "evt_1", employee_event(1))])
    since = time.time()
    lose_the_key(settings)

    deliveries_process_batch()
    deliveries_process_batch()  # the flow is paused: nothing more is claimed

    assert control(fresh_sandbox, "inventory", "GET", f"requests?since={since}") == []
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
    flow.refresh_from_db()
    assert flow.state == FlowState.PAUSED and "cannot read the stored" in flow.paused_reason
    assert AuditEntry.objects.filter(verb="pause", target_id=str(flow.pk)).count() == 1

    settings.HUB_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # the right key is back
    Flow.objects.filter(pk=flow.pk).update(state=FlowState.ACTIVE, paused_reason="")
    deliveries_process_batch()
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert len(records(fresh_sandbox, "inventory", "accounts")) == 1
    assert System.objects.get(pk=target.pk).unreadable_secrets() == []


@pytest.mark.django_db
def test_a_poll_of_an_unreadable_source_is_not_tried_and_pauses_its_flows(settings):
    from hub.models import Trigger
    from hub.pipeline.polling import flow_poll

    demo_seed()
    flow = Flow.objects.select_related("source_system", "source_model").get(trigger=Trigger.SCHEDULED)
    lose_the_key(settings)
    flow.source_system = System.objects.get(pk=flow.source_system_id)

    result = flow_poll(flow=flow)
    assert result.pages == 0 and result.error.startswith("The hub cannot read the stored sign-in credentials")
    flow.refresh_from_db()
    assert flow.state == FlowState.PAUSED
    assert AuditEntry.objects.filter(verb="pause", target_id=str(flow.pk)).count() == 1
