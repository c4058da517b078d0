"""Users and API tokens through the API: admins only, the Users page's checks and audit; a token's
key answered once and never again."""

import json

import pytest
from django.contrib.auth import get_user_model

from hub.models import ApiToken, AuditEntry
from hub.roles import roles_of
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "a-long-enough-passphrase-7"


def test_it_creates_a_user_with_a_role_and_never_answers_the_password(as_):
    body = {"username": "nina", "email": "nina@example.com", "role": "ops", "password": PASSWORD}
    response = as_("admin").post("/api/v1/users/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["role"] == "ops" and "password" not in response.json()
    nina = User.objects.get(username="nina")
    assert nina.check_password(PASSWORD) and roles_of(nina) == {"ops"}
    assert last_audit("create").diff == {"username": "nina", "email": "nina@example.com", "role": "ops"}
    assert PASSWORD not in json.dumps(list(AuditEntry.objects.values_list("diff", flat=True)))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "short"}, "password"),
        ({"username": "alice-ADMIN"}, "username"),  # taken, whatever the case
        ({"username": "no spaces please"}, "username"),
        ({"role": "emperor"}, "role"),
        ({"email": "not-an-address"}, "email"),
    ],
)
def test_bad_users_are_400s_naming_the_field(as_, change, field):
    body = {"username": "nina", "email": "", "role": "ops", "password": PASSWORD, **change}
    response = as_("admin").post("/api/v1/users/", body, format="json")
    assert response.status_code == 400 and field in response.json()["fields"], response.json()


def test_it_changes_a_role_deactivates_and_refuses_to_demote_yourself(as_, personas):
    api, ops = as_("admin"), personas["ops"]
    changed = api.patch(f"/api/v1/users/{ops.pk}/", {"role": "auditor"}, format="json")
    assert changed.json()["role"] == "auditor" and last_audit("change_role").diff["role"] == [
        "ops",
        "auditor",
    ]
    off = api.patch(f"/api/v1/users/{ops.pk}/", {"is_active": False}, format="json")
    assert off.json()["is_active"] is False and last_audit("deactivate")
    me = personas["admin"]
    refused = api.patch(f"/api/v1/users/{me.pk}/", {"role": "ops", "is_active": False}, format="json")
    assert refused.status_code == 400 and "own admin role" in refused.json()["error"]
    assert roles_of(User.objects.get(pk=me.pk)) == {"admin"}


def test_a_tokens_key_is_answered_once_and_it_can_be_revoked(as_, personas):
    crm = SystemFactory(slug="crm")
    publisher = personas["publisher"]
    api = as_("admin")
    body = {"user": publisher.pk, "name": "shop server", "systems": ["crm"], "days": 30}
    made = api.post("/api/v1/tokens/", body, format="json")
    assert made.status_code == 201, made.json()
    key = made.json()["key"]
    assert (
        key.startswith("hub_") and made.json()["systems"] == ["crm"] and made["Cache-Control"] == "no-store"
    )
    token = ApiToken.objects.get(pk=made.json()["id"])
    assert token.key_hash == ApiToken.hash_of(key) and last_audit("create_token")
    later = [api.get("/api/v1/tokens/").content, api.get(f"/api/v1/tokens/{token.pk}/").content]
    later.append(json.dumps(list(AuditEntry.objects.values_list("diff", flat=True))).encode())
    assert not any(key.encode() in text or key[12:].encode() in text for text in later)

    publish = {"system": crm.slug, "type": "deal.won", "idempotency_key": "1", "payload": {}}
    assert (
        as_(None)
        .post("/api/v1/events/", publish, format="json", HTTP_AUTHORIZATION=f"Token {key}")
        .status_code
        == 202
    )
    revoked = api.post(f"/api/v1/tokens/{token.pk}/revoke/")
    assert revoked.json()["active"] is False and revoked.json()["revoked_at"] and last_audit("revoke_token")
    refused = as_(None).post("/api/v1/events/", publish, format="json", HTTP_AUTHORIZATION=f"Token {key}")
    assert refused.status_code == 401


def test_tokens_are_for_publishers_and_need_a_system(as_, personas):
    SystemFactory(slug="crm")
    api = as_("admin")
    person = api.post("/api/v1/tokens/", {"user": personas["ops"].pk, "systems": ["crm"]}, format="json")
    assert person.status_code == 400 and "publisher" in person.json()["error"]
    none = api.post("/api/v1/tokens/", {"user": personas["publisher"].pk, "systems": []}, format="json")
    assert none.status_code == 400 and "systems" in none.json()["fields"]
    odd = api.post(
        "/api/v1/tokens/", {"user": personas["publisher"].pk, "systems": ["crm"], "days": 7}, format="json"
    )
    assert odd.status_code == 400


def test_only_admins_see_users_and_tokens(as_, personas):
    admin_only = {
        "anonymous": 401,
        "admin": 200,
        "ops": 403,
        "auditor": 403,
        "publisher": 403,
        "outsider": 403,
    }
    assert statuses(as_, "get", "/api/v1/users/") == admin_only
    assert statuses(as_, "get", "/api/v1/tokens/") == admin_only
    assert (
        statuses(as_, "patch", f"/api/v1/users/{personas['outsider'].pk}/", {"role": "auditor"}) == admin_only
    )
