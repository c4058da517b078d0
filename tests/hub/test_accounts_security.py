"""Accounts (issue 9, point 4): sign-in throttling, password rules, hashed API tokens bound to
systems, webhook keys a publisher cannot take, HTTPS settings from the environment, and a 403
that names the role it needs."""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.apps import apps as global_apps
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from connectors.signatures import sign
from hub.models import ApiToken, AuditEntry, Event
from hub.pipeline import clock
from hub.services.users import api_token_revoke, user_create, user_role_set
from tests.factories import PASSWORD, SystemFactory, UserFactory, api_token_for

pytestmark = pytest.mark.django_db
ROOT = settings.BASE_DIR
LIMIT = settings.AXES_FAILURE_LIMIT
HTMX = {"HX-Request": "true"}


def sign_in(username: str, password: str, address: str = "192.0.2.7"):
    return Client(REMOTE_ADDR=address).post(reverse("login"), {"username": username, "password": password})


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


# --- throttling ------------------------------------------------------------------------------


def test_it_refuses_even_the_right_password_after_too_many_wrong_ones(personas):
    answers = [sign_in("oscar-ops", f"wrong-{n}").status_code for n in range(LIMIT)]
    assert answers == [200] * (LIMIT - 1) + [429]
    response = sign_in("oscar-ops", PASSWORD)
    assert response.status_code == 429 and not signed_in(response)
    page = response.content.decode()
    assert "Sign-in paused" in page and "Try again in 15 minutes" in page and "lift the pause" in page


def test_it_pauses_an_address_trying_many_accounts(personas):
    for n, name in enumerate(["oscar-ops", "audrey-auditor", "alice-admin", "nobody", "olga-outsider"]):
        sign_in(name, f"wrong-{n}", address="198.51.100.9")
    assert not signed_in(sign_in("oscar-ops", PASSWORD, address="198.51.100.9"))
    assert signed_in(sign_in("oscar-ops", PASSWORD, address="203.0.113.5"))  # another address


def test_behind_a_trusted_proxy_the_forwarded_address_counts_and_a_spoofed_one_does_not(personas, settings):
    settings.HUB_TRUSTED_PROXIES = 1

    def via_proxy(username, password, forwarded):
        client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
        return client.post(reverse("login"), {"username": username, "password": password})

    names = ["audrey-auditor", "alice-admin", "nobody", "olga-outsider", "someone"]
    for n, name in enumerate(names):
        # the attacker writes a new address of its own each time; the proxy appends the real one
        via_proxy(name, f"wrong-{n}", forwarded=f"203.0.113.{n}, 198.51.100.9")
    assert not signed_in(via_proxy("oscar-ops", PASSWORD, forwarded="198.51.100.9"))
    # another client behind the same proxy is not paused with it
    assert signed_in(via_proxy("oscar-ops", PASSWORD, forwarded="192.0.2.50"))
    assert AuditEntry.objects.filter(verb="sign_in", diff__address="192.0.2.50").exists()


def test_signing_in_to_ones_own_account_does_not_forget_guesses_at_another(personas):
    """With axes' reset-on-success, an attacker with any account could sign in between guesses
    and guess without end: a success forgot every failure from the address."""
    UserFactory(username="mallory", role="auditor")
    for _ in range(3):
        for n in range(LIMIT - 1):
            sign_in("oscar-ops", f"guess-{n}")
        sign_in("mallory", PASSWORD)
    assert not signed_in(sign_in("oscar-ops", PASSWORD))


def test_a_pause_is_audited_once_however_often_it_is_hammered(personas):
    for n in range(LIMIT + 20):
        sign_in("oscar-ops", f"wrong-{n}")
    paused = AuditEntry.objects.get(verb="sign_in_paused")
    assert (paused.target_id, paused.target_label) == (str(personas["ops"].pk), "oscar-ops")
    assert paused.diff == {"username": "oscar-ops", "address": "192.0.2.7", "wrong_passwords": LIMIT}
    assert AuditEntry.objects.filter(verb="sign_in_failed").count() == LIMIT


def test_an_admin_lifts_a_pause_from_the_users_page_and_it_is_audited(personas):
    for n in range(LIMIT):
        sign_in("oscar-ops", f"wrong-{n}", address="198.51.100.20")
    for n, name in enumerate(["ann", "bob", "cy", "dee", "ed"]):
        sign_in(name, f"wrong-{n}", address="203.0.113.66")
    admin = Client()
    admin.force_login(personas["admin"])
    page = admin.get(reverse("hub-users")).content.decode()
    assert "Paused sign-ins" in page and "Sign-in paused" in page
    assert "Account <strong>oscar-ops</strong>" in page and "Address <strong>203.0.113.66</strong>" in page

    admin.post(reverse("hub-users-lift-pause"), {"username": "oscar-ops"}, headers=HTMX)
    entry = AuditEntry.objects.get(verb="lift_sign_in_pause", target_id=str(personas["ops"].pk))
    assert entry.actor == personas["admin"] and entry.diff["attempts_forgotten"] == 1
    assert signed_in(sign_in("oscar-ops", PASSWORD, address="198.51.100.20"))

    assert not signed_in(sign_in("audrey-auditor", PASSWORD, address="203.0.113.66"))
    admin.post(reverse("hub-users-lift-pause"), {"address": "203.0.113.66"})
    assert AuditEntry.objects.get(verb="lift_sign_in_pause", target_type="address").diff == {
        "address": "203.0.113.66",
        "attempts_forgotten": 6,  # the five, and audrey refused just now
    }
    assert signed_in(sign_in("audrey-auditor", PASSWORD, address="203.0.113.66"))
    assert "Paused sign-ins" not in admin.get(reverse("hub-users")).content.decode()


def test_only_admins_may_lift_a_pause(personas):
    for n in range(LIMIT):
        sign_in("alice-admin", f"wrong-{n}")
    ops = Client()
    ops.force_login(personas["ops"])
    assert ops.post(reverse("hub-users-lift-pause"), {"username": "alice-admin"}).status_code == 403
    assert not signed_in(sign_in("alice-admin", PASSWORD))


def test_manage_py_axes_reset_lifts_every_pause(personas):
    for n in range(LIMIT):
        sign_in("oscar-ops", f"wrong-{n}")
    call_command("axes_reset", stdout=StringIO())
    assert signed_in(sign_in("oscar-ops", PASSWORD))


def test_the_api_and_the_django_admin_are_no_way_around_a_pause(personas):
    personas["ops"].is_staff = True
    personas["ops"].save()
    for n in range(LIMIT):
        sign_in("oscar-ops", f"wrong-{n}")
    basic = base64.b64encode(f"oscar-ops:{PASSWORD}".encode()).decode()
    api = Client(REMOTE_ADDR="192.0.2.7")
    assert api.get("/api/v1/flows/", headers={"Authorization": f"Basic {basic}"}).status_code == 401
    admin_login = api.post(
        "/django-admin/login/", {"username": "oscar-ops", "password": PASSWORD, "next": "/django-admin/"}
    )
    assert admin_login.status_code == 429 and "_auth_user_id" not in api.session


def test_the_api_takes_no_passwords_at_all(personas):
    """Only tokens and a signed-in session: Basic credentials are never checked, so they cannot
    be guessed through the API."""
    basic = base64.b64encode(f"oscar-ops:{PASSWORD}".encode()).decode()
    response = Client().get("/api/v1/flows/", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 401


# --- password rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("8203946175", "entirely numeric"),
        ("short-1", "too short"),
        ("password123", "too common"),
        ("nina.walker.x", "too similar"),
    ],
)
def test_weak_passwords_are_refused_everywhere_with_a_clear_error(personas, password, says):
    admin = Client()
    admin.force_login(personas["admin"])
    form = {
        "username": "nina.walker",
        "email": "nina.walker@example.com",
        "role": "ops",
        "password": password,
    }
    response = admin.post(reverse("hub-users-add"), form)
    assert response.status_code == 200 and says in " ".join(response.context["form"].errors["password"])
    with pytest.raises(ValidationError, match=says):
        user_create(
            username="nina.walker",
            email="nina.walker@example.com",
            role="ops",
            password=password,
            actor=personas["admin"],
        )
    nina = UserFactory(username="nina.walker", email="nina.walker@example.com")
    reset = admin.post(
        reverse("hub-users-password", args=[nina.pk]), {"password": password, "password_again": password}
    )
    assert says in " ".join(reset.context["form"].errors["password"])


def test_the_add_user_form_says_what_a_password_needs(personas):
    admin = Client()
    admin.force_login(personas["admin"])
    page = admin.get(reverse("hub-users-add")).content.decode()
    assert "At least 10 characters, not only digits" in page


def test_the_generated_admin_password_of_manage_py_up_passes_the_validators(settings, tmp_path):
    from hub.management.commands.up import ensure_admin_login

    settings.VAR_DIR = tmp_path
    username, password = ensure_admin_login()
    from django.contrib.auth import get_user_model

    validate_password(password, get_user_model().objects.get(username=username))
    assert signed_in(sign_in(username, password))


# --- API tokens ------------------------------------------------------------------------------


def create_token_on_the_users_page(personas, systems, days="90") -> str:
    admin = Client()
    admin.force_login(personas["admin"])
    response = admin.post(
        reverse("hub-users-token", args=[personas["publisher"].pk]),
        {"name": "shop", "systems": [s.pk for s in systems], "days": days},
        headers=HTMX,
    )
    html = response.content.decode()
    start = html.index('value="hub_') + len('value="')
    return html[start : html.index('"', start)]


def database_text() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks += [repr(row) for row in cursor.fetchall()]
    return "\n".join(chunks)


def test_a_token_is_stored_only_as_its_hash(personas):
    crm = SystemFactory(slug="crm")
    key = create_token_on_the_users_page(personas, [crm])
    dump = database_text()
    assert key not in dump and key[12:] not in dump
    assert hashlib.sha256(key.encode()).hexdigest() in dump
    out = StringIO()
    call_command("dumpdata", stdout=out)
    assert key not in out.getvalue()


def test_a_token_is_shown_once_then_listed_by_prefix_with_expiry_and_last_use(personas):
    crm = SystemFactory(slug="crm", name="Shop CRM")
    key = create_token_on_the_users_page(personas, [crm], days="30")
    token = ApiToken.objects.get()
    assert (token.expires_at - token.created_at).days == 30
    admin = Client()
    admin.force_login(personas["admin"])
    page = admin.get(reverse("hub-users")).content.decode()
    assert key not in page and f"{token.prefix}…" in page and "Shop CRM" in page and "never" in page
    APIClient().get("/api/v1/events/", HTTP_AUTHORIZATION=f"Bearer {key}")
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_at.strftime("%-d %b %Y, %H:%M") in admin.get(reverse("hub-users")).content.decode()


def test_last_use_is_written_at_most_once_a_minute(personas):
    key = api_token_for(personas["publisher"], [SystemFactory()])
    api = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    api.get("/api/v1/events/")
    first = ApiToken.objects.get().last_used_at
    api.get("/api/v1/events/")
    assert ApiToken.objects.get().last_used_at == first
    clock.advance(61)
    api.get("/api/v1/events/")
    assert ApiToken.objects.get().last_used_at > first


def test_token_and_bearer_both_work_and_a_refused_token_says_why(personas):
    crm = SystemFactory(slug="crm")
    key = api_token_for(personas["publisher"], [crm])
    event = {"system": "crm", "type": "t", "idempotency_key": "k", "payload": {}}

    def publish(header):
        return APIClient(HTTP_AUTHORIZATION=header).post("/api/v1/events/", event, format="json")

    assert publish(f"Token {key}").status_code == 202
    assert publish(f"Bearer {key}").status_code == 202
    unknown = publish("Token hub_not-a-real-token")
    assert unknown.status_code == 401 and "unknown API token" in unknown.json()["error"]
    assert "Token" in unknown["WWW-Authenticate"]
    assert "malformed" in publish(f"Token {key} extra").json()["error"]

    clock.advance(91 * 86400)
    expired = publish(f"Token {key}")
    assert expired.status_code == 401 and "expired on" in expired.json()["error"]
    clock.reset()
    api_token_revoke(token=ApiToken.objects.get(), actor=personas["admin"])
    revoked = publish(f"Token {key}")
    assert revoked.status_code == 401 and "was revoked on" in revoked.json()["error"]
    assert AuditEntry.objects.filter(verb="revoke_token").count() == 1


def test_a_deactivated_machine_account_or_one_that_stops_being_a_publisher_loses_its_tokens(personas):
    key = api_token_for(personas["publisher"], [SystemFactory()])
    machine = personas["publisher"]
    machine.is_active = False
    machine.save()
    refused = APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/events/")
    assert refused.status_code == 401 and "deactivated" in refused.json()["error"]
    machine.is_active = True
    machine.save()
    user_role_set(user=machine, role="ops", actor=personas["admin"])
    assert ApiToken.objects.get().revoked_at is not None


@pytest.mark.django_db(
    transaction=True
)  # the migration's schema editor cannot run inside a test's transaction
def test_tokens_from_before_hashing_keep_working_and_the_plain_table_goes(personas):
    """The data migration, run on a table like rest_framework.authtoken's."""
    from importlib import import_module

    carry_over = import_module("hub.migrations.0008_api_tokens_from_authtoken").carry_over
    crm, shop = SystemFactory(slug="crm"), SystemFactory(slug="shop")
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, created timestamp, user_id integer)'
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            [old_key, "2026-01-02 03:04:05", personas["publisher"].pk],
        )
    with connection.schema_editor() as editor:
        carry_over(global_apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    token = ApiToken.objects.get()
    assert token.prefix == old_key[:8] and {s.slug for s in token.systems.all()} == {"crm", "shop"}
    assert old_key not in database_text()
    event = {"system": shop.slug, "type": "t", "idempotency_key": "k", "payload": {}}
    response = APIClient(HTTP_AUTHORIZATION=f"Token {old_key}").post("/api/v1/events/", event, format="json")
    assert response.status_code == 202, response.content
    assert crm  # bound to every system that existed


# --- publisher binding -----------------------------------------------------------------------


@pytest.fixture
def bound_publisher(personas):
    """A publisher token bound to the CRM only; the payments system exists too."""
    crm, payments = SystemFactory(slug="crm"), SystemFactory(slug="payments")
    key = api_token_for(personas["publisher"], [crm])
    return APIClient(HTTP_AUTHORIZATION=f"Token {key}"), crm, payments


def test_a_publisher_token_publishes_only_for_its_systems(bound_publisher):
    api, crm, payments = bound_publisher
    ok = api.post(
        "/api/v1/events/",
        {"system": "crm", "type": "t", "idempotency_key": "a", "payload": {}},
        format="json",
    )
    assert ok.status_code == 202
    refused = api.post(
        "/api/v1/events/",
        {"system": "payments", "type": "t", "idempotency_key": "b", "payload": {}},
        format="json",
    )
    assert refused.status_code == 403
    assert "not allowed to publish for system 'payments'" in refused.json()["error"]
    assert "bound to (crm)" in refused.json()["error"]
    assert not Event.objects.filter(system=payments).exists()


def test_a_batch_with_one_event_outside_the_binding_is_refused_whole(bound_publisher):
    api, crm, payments = bound_publisher
    events = [
        {"system": "crm", "type": "t", "idempotency_key": "a", "payload": {}},
        {"system": "payments", "type": "t", "idempotency_key": "b", "payload": {}},
    ]
    refused = api.post("/api/v1/events/", {"events": events}, format="json")
    assert refused.status_code == 403 and "'payments'" in refused.json()["error"]
    assert Event.objects.count() == 0


def test_an_admin_signed_in_may_publish_for_any_system(personas):
    SystemFactory(slug="payments")
    admin = APIClient()
    admin.force_login(personas["admin"])
    body = {"system": "payments", "type": "t", "idempotency_key": "a", "payload": {}}
    assert admin.post("/api/v1/events/", body, format="json").status_code == 202


# --- a published key never takes a webhook's place -------------------------------------------


def signed_webhook(system, body: dict):
    raw = json.dumps(body).encode()
    signature = sign(system, raw)
    return Client().post(
        f"/hooks/{system.slug}/",
        raw,
        content_type="application/json",
        headers={system.signature_header: signature},
    )


def test_a_publisher_cannot_pre_empt_a_webhook_by_sending_its_key_first(bound_publisher):
    api, crm, _ = bound_publisher
    crm.idempotency_key_path = "id"
    crm.event_type_path = "type"
    crm.save()
    forged = api.post(
        "/api/v1/events/",
        {"system": "crm", "type": "order.created", "idempotency_key": "evt_42", "payload": {"forged": True}},
        format="json",
    )
    assert forged.json()["duplicate"] is False
    genuine = signed_webhook(crm, {"id": "evt_42", "type": "order.created", "real": True})
    assert genuine.status_code == 202 and genuine.json()["duplicate"] is False
    assert genuine.json()["event_id"] != forged.json()["event_id"]
    stored = Event.objects.get(origin=Event.Origin.WEBHOOK, idempotency_key="evt_42")
    assert stored.payload["real"] is True

    # Repeats within one channel are still one event.
    again = signed_webhook(crm, {"id": "evt_42", "type": "order.created", "real": True})
    assert again.json() == {**genuine.json(), "duplicate": True, "deliveries": 0}
    republished = api.post(
        "/api/v1/events/",
        {"system": "crm", "type": "order.created", "idempotency_key": "evt_42", "payload": {}},
        format="json",
    )
    assert (
        republished.json()["duplicate"] is True
        and republished.json()["event_id"] == forged.json()["event_id"]
    )
    assert Event.objects.filter(idempotency_key="evt_42").count() == 2


# --- HTTPS settings from the environment -----------------------------------------------------

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
plain = Client().get("/accounts/login/")
secure = Client().get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
print(json.dumps({
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "redirect": settings.SECURE_SSL_REDIRECT,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location", ""),
    "secure_status": secure.status_code,
    "secure_hsts": secure.get("Strict-Transport-Security", ""),
    "secure_cookie": secure.cookies["csrftoken"]["secure"] if "csrftoken" in secure.cookies else None,
}))
"""


HTTPS_VARIABLES = {
    "DEBUG",
    "HUB_HTTPS",
    "HUB_SECURE_COOKIES",
    "HUB_SSL_REDIRECT",
    "HUB_HSTS_SECONDS",
    "HUB_HSTS_INCLUDE_SUBDOMAINS",
    "HUB_PROXY_SSL_HEADER",
}


def hub_process(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in HTTPS_VARIABLES}
    clean |= env
    return subprocess.run(
        [sys.executable, *args], env=clean, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_https_settings_come_from_the_environment():
    on = hub_process(
        ["-c", PROBE], HUB_HTTPS="1", HUB_PROXY_SSL_HEADER="1", DJANGO_SETTINGS_MODULE="hub.settings"
    )
    values = json.loads(on.stdout.strip().splitlines()[-1])
    assert values["session_secure"] and values["csrf_secure"] and values["redirect"]
    assert values["hsts"] == 31536000 and values["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["plain_status"] == 301 and values["plain_location"].startswith("https://")
    assert values["secure_status"] == 200 and values["secure_hsts"] == "max-age=31536000"
    assert values["secure_cookie"]


def test_each_https_setting_can_be_set_alone():
    alone = hub_process(
        ["-c", PROBE], HUB_HSTS_SECONDS="600", HUB_SECURE_COOKIES="1", DJANGO_SETTINGS_MODULE="hub.settings"
    )
    values = json.loads(alone.stdout.strip().splitlines()[-1])
    assert values["hsts"] == 600 and values["session_secure"] and not values["redirect"]
    assert values["proxy_header"] is None


def test_without_them_the_defaults_are_for_local_development():
    off = hub_process(["-c", PROBE], DJANGO_SETTINGS_MODULE="hub.settings")
    values = json.loads(off.stdout.strip().splitlines()[-1])
    assert values == {
        "session_secure": False,
        "csrf_secure": False,
        "redirect": False,
        "hsts": 0,
        "proxy_header": None,
        "plain_status": 200,
        "plain_location": "",
        "secure_status": 200,
        "secure_hsts": "",
        "secure_cookie": "",
    }


def test_check_deploy_is_quiet_about_https_once_it_is_configured():
    warnings = ("security.W004", "security.W008", "security.W012", "security.W016")
    plain = hub_process(["manage.py", "check", "--deploy"])
    assert all(code in plain.stderr + plain.stdout for code in warnings)
    https = hub_process(["manage.py", "check", "--deploy"], HUB_HTTPS="1")
    assert not any(code in https.stderr + https.stdout for code in warnings)


# --- the 403 page ----------------------------------------------------------------------------


def test_a_refused_page_says_which_role_it_needs(personas):
    auditor = Client()
    auditor.force_login(personas["auditor"])
    response = auditor.get(reverse("hub-users"))
    page = response.content.decode()
    assert response.status_code == 403
    assert "This page needs the Admin role. You are signed in as an Auditor." in page
    assert "Sign out" in page and "ask an admin to change your role" in page


def test_a_refused_page_marks_the_roles_that_open_it_and_the_users_own(personas):
    auditor = Client()
    auditor.force_login(personas["auditor"])
    page = auditor.get(reverse("hub-users")).content.decode()
    rows = {
        name: mark for mark, name in re.findall(r'<tr( class="needed")?>\s*<th scope="row">(\w+)</th>', page)
    }
    assert rows == {"Admin": ' class="needed"', "Ops": "", "Auditor": "", "Publisher": ""}
    admin_row = page.split('<th scope="row">Admin</th>', 1)[1].split("</tr>", 1)[0]
    auditor_row = page.split('<th scope="row">Auditor</th>', 1)[1].split("</tr>", 1)[0]
    assert "needed here" in admin_row and "your role" not in admin_row
    assert "your role" in auditor_row and "needed here" not in auditor_row
    assert "Configures systems, models, mappings and flows" in admin_row
    outsider = Client()
    outsider.force_login(personas["outsider"])
    page = outsider.get(reverse("home")).content.decode()
    assert page.count("needed here") == 3 and "your role</span>" not in page  # any reader role opens it


def test_a_refused_change_names_the_roles_that_may_make_it(personas):
    auditor = Client()
    auditor.force_login(personas["auditor"])
    flow_url = reverse("hub-users-role", args=[personas["ops"].pk])
    page = auditor.post(flow_url, {"role": "admin"}).content.decode()
    assert "This page needs the Admin role. You are signed in as an Auditor." in page
    outsider = Client()
    outsider.force_login(personas["outsider"])
    assert "Your account has no role yet" in outsider.get(reverse("home")).content.decode()


def test_an_htmx_request_gets_a_short_notice_not_a_page(personas):
    auditor = Client()
    auditor.force_login(personas["auditor"])
    response = auditor.post(
        reverse("hub-users-active", args=[personas["ops"].pk]), {"active": "0"}, headers=HTMX
    )
    body = response.content.decode()
    assert response.status_code == 403 and response["HX-Retarget"] == "#toasts"
    assert body.startswith('<div class="toast bad"') and "<html" not in body
    assert "needs the Admin role" in body


def test_the_api_403_says_the_same_in_json(personas):
    publisher = APIClient()
    publisher.force_authenticate(personas["publisher"])
    read = publisher.get("/api/v1/flows/")
    assert read.status_code == 403
    assert read.json() == {
        "error": "Reading this needs the Admin, Ops or Auditor role. You are signed in as a Publisher."
    }
    auditor = APIClient()
    auditor.force_authenticate(personas["auditor"])
    change = auditor.post("/api/v1/events/", {}, format="json")
    assert (
        change.json()["error"]
        == "This change needs the Admin or Publisher role. You are signed in as an Auditor."
    )
