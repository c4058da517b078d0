"""Users and roles, managed by admins in the browser; every change audited."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from hub.models import ApiToken, AuditEntry
from hub.roles import roles_of
from tests.factories import SystemFactory, UserFactory, api_token_for

pytestmark = pytest.mark.django_db
User = get_user_model()
HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(client, personas):
    client.force_login(personas["admin"])
    return client


def post_urls(user, token_pk=1):
    return [
        reverse("hub-users-add"),
        reverse("hub-users-role", args=[user.pk]),
        reverse("hub-users-active", args=[user.pk]),
        reverse("hub-users-password", args=[user.pk]),
        reverse("hub-users-token", args=[user.pk]),
        reverse("hub-users-token-revoke", args=[token_pk]),
        reverse("hub-users-lift-pause"),
    ]


@pytest.mark.parametrize("who", ["ops", "auditor", "outsider", "publisher"])
def test_it_lets_only_admins_manage_users(client, personas, who):
    client.force_login(personas[who])
    target = personas["ops"]
    assert client.get(reverse("hub-users")).status_code == 403
    assert client.get(reverse("hub-users-add")).status_code == 403
    for url in post_urls(target):
        assert client.post(url, {"role": "admin", "active": "0"}).status_code == 403, url
    assert roles_of(User.objects.get(pk=target.pk)) == {"ops"}
    assert not AuditEntry.objects.exclude(verb="sign_in").exists()


def test_it_sends_the_anonymous_to_sign_in(client, personas):
    response = client.get(reverse("hub-users"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_it_lists_users_with_their_role(admin_client, personas):
    html = admin_client.get(reverse("hub-users")).content.decode()
    for persona in personas.values():
        assert persona.username in html
    assert "Auditor" in html and "Publisher" in html


def test_it_creates_a_user_with_a_role_and_audits_it_without_the_password(admin_client, personas):
    response = admin_client.post(
        reverse("hub-users-add"),
        {
            "username": "nina",
            "email": "nina@example.com",
            "role": "auditor",
            "password": "a-long-unusual-phrase",
        },
    )
    assert response.status_code == 302
    nina = User.objects.get(username="nina")
    assert roles_of(nina) == {"auditor"} and nina.check_password("a-long-unusual-phrase")
    entry = AuditEntry.objects.get(verb="create", target_type="user")
    assert entry.actor == personas["admin"] and entry.diff["role"] == "auditor"
    assert "a-long-unusual-phrase" not in str(entry.diff)


BAD_NEW_USER = {  # input: {bad value: what the form says beside it}
    "password": {"short": "too short", "password123": "too common"},
    "username": {
        "oscar-ops": "already a user",
        "OSCAR-OPS": "already a user",
        "bad name!": "Enter a valid username",
        "x" * 5000: "at most 150",
    },
    "email": {"not-an-email": "valid email"},
    "role": {"superhero": "Select a valid choice"},
}


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({field: value}, field, message)
        for field, bad in BAD_NEW_USER.items()
        for value, message in bad.items()
    ],
)
def test_it_explains_a_bad_new_user_next_to_the_field(admin_client, personas, data, field, message):
    form = {"username": "nina", "email": "", "role": "ops", "password": "a-long-unusual-phrase", **data}
    response = admin_client.post(reverse("hub-users-add"), form)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not User.objects.filter(username="nina").exists()


def test_it_changes_a_role_in_place_and_audits_it(admin_client, personas):
    ops = personas["ops"]
    response = admin_client.post(reverse("hub-users-role", args=[ops.pk]), {"role": "auditor"}, headers=HTMX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="users-region"')
    assert roles_of(User.objects.get(pk=ops.pk)) == {"auditor"}
    assert AuditEntry.objects.get(verb="change_role").diff == {"role": ["ops", "auditor"]}


def test_it_does_not_let_an_admin_take_away_their_own_admin_role(admin_client, personas):
    me = personas["admin"]
    response = admin_client.post(reverse("hub-users-role", args=[me.pk]), {"role": "ops"}, headers=HTMX)
    assert "can&#x27;t take away your own admin role" in response.content.decode()
    assert roles_of(User.objects.get(pk=me.pk)) == {"admin"}
    assert not AuditEntry.objects.exclude(verb="sign_in").exists()


def test_it_deactivates_and_reactivates_a_user_but_never_yourself(admin_client, personas):
    ops, me = personas["ops"], personas["admin"]
    admin_client.post(reverse("hub-users-active", args=[ops.pk]), {"active": "0"}, headers=HTMX)
    assert not User.objects.get(pk=ops.pk).is_active
    html = admin_client.get(reverse("hub-users")).content.decode()
    assert "Reactivate" in html and "Deactivated" in html
    admin_client.post(reverse("hub-users-active", args=[ops.pk]), {"active": "1"}, headers=HTMX)
    assert User.objects.get(pk=ops.pk).is_active
    assert [e.verb for e in AuditEntry.objects.exclude(verb="sign_in").order_by("id")] == [
        "deactivate",
        "reactivate",
    ]

    response = admin_client.post(reverse("hub-users-active", args=[me.pk]), {"active": "0"}, headers=HTMX)
    assert "deactivate yourself" in response.content.decode()
    assert User.objects.get(pk=me.pk).is_active


def test_it_asks_before_deactivating(admin_client, personas):
    html = admin_client.get(reverse("hub-users")).content.decode()
    assert 'hx-confirm="Deactivate oscar-ops?' in html


def test_a_deactivated_user_can_no_longer_sign_in(client, admin_client, personas):
    from tests.factories import PASSWORD

    admin_client.post(reverse("hub-users-active", args=[personas["ops"].pk]), {"active": "0"})
    other = client.__class__()
    response = other.post(reverse("login"), {"username": "oscar-ops", "password": PASSWORD})
    assert response.status_code == 200 and "didn" in response.content.decode()


def test_it_resets_a_password_with_the_validators(admin_client, personas):
    ops = personas["ops"]
    url = reverse("hub-users-password", args=[ops.pk])
    response = admin_client.post(url, {"password": "abc", "password_again": "abc"})
    assert "too short" in " ".join(response.context["form"].errors["password"])
    response = admin_client.post(
        url, {"password": "new-long-phrase-9", "password_again": "other-long-phrase"}
    )
    assert "not the same" in " ".join(response.context["form"].errors["password_again"])
    response = admin_client.post(
        url, {"password": "new-long-phrase-9", "password_again": "new-long-phrase-9"}
    )
    assert response.status_code == 302
    assert User.objects.get(pk=ops.pk).check_password("new-long-phrase-9")
    entry = AuditEntry.objects.get(verb="reset_password")
    assert "new-long-phrase-9" not in str(entry.diff)


def test_an_admin_resetting_their_own_password_stays_signed_in(admin_client, personas):
    me = personas["admin"]
    admin_client.post(
        reverse("hub-users-password", args=[me.pk]),
        {"password": "new-long-phrase-9", "password_again": "new-long-phrase-9"},
    )
    assert admin_client.get(reverse("hub-users")).status_code == 200


def new_token(admin_client, machine, **form) -> tuple[str, object]:
    """Create a token on the Users page; returns the key shown once, and the response."""
    system = SystemFactory()
    data = {"name": "shop server", "systems": [system.pk], "days": "90", **form}
    response = admin_client.post(reverse("hub-users-token", args=[machine.pk]), data, headers=HTMX)
    html = response.content.decode()
    start = html.find('value="hub_')
    key = html[start + len('value="') : html.find('"', start + len('value="'))] if start >= 0 else ""
    return key, response


def test_it_shows_a_new_api_token_once_then_only_its_prefix(admin_client, personas):
    machine = personas["publisher"]
    key, response = new_token(admin_client, machine)
    assert key.startswith("hub_") and "shown only this once" in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=machine)
    later = admin_client.get(reverse("hub-users")).content.decode()
    assert key not in later and f"{token.prefix}…" in later and "shop server" in later
    entry = AuditEntry.objects.get(verb="create_token")
    assert key not in str(entry.diff) and entry.target_id == str(machine.pk)

    admin_client.post(reverse("hub-users-token-revoke", args=[token.pk]), headers=HTMX)
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert AuditEntry.objects.filter(verb="revoke_token").count() == 1


def test_it_makes_tokens_only_for_publisher_machine_accounts(admin_client, personas):
    _, response = new_token(admin_client, personas["ops"])
    assert "publisher role" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_machine_account_may_hold_two_tokens_while_one_replaces_the_other(admin_client, personas):
    machine = personas["publisher"]
    first, _ = new_token(admin_client, machine, name="old server")
    second, _ = new_token(admin_client, machine, name="new server")
    assert first and second and first != second
    assert ApiToken.objects.filter(user=machine).count() == 2


def test_a_publisher_token_works_against_the_api_until_revoked(admin_client, client, personas):
    machine = personas["publisher"]
    key, _ = new_token(admin_client, machine)
    other = client.__class__()
    assert other.get("/api/v1/flows/", headers={"Authorization": f"Token {key}"}).status_code != 401
    admin_client.post(reverse("hub-users-token-revoke", args=[ApiToken.objects.get(user=machine).pk]))
    assert other.get("/api/v1/flows/", headers={"Authorization": f"Token {key}"}).status_code == 401


def test_it_lists_users_in_a_constant_number_of_queries(
    admin_client, personas, django_assert_max_num_queries
):
    systems = [SystemFactory(), SystemFactory()]
    api_token_for(personas["publisher"], systems)
    # 8 before tokens were hashed; +1 each: tokens, their systems, the systems for the token
    # form, paused accounts, paused addresses.
    with django_assert_max_num_queries(13) as few:
        admin_client.get(reverse("hub-users"))
    for i in range(15):
        extra = UserFactory(username=f"extra{i}", role="ops" if i % 2 else "publisher")
        if i % 2 == 0:
            api_token_for(extra, systems)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_client.get(reverse("hub-users"))
    assert "extra14" in response.content.decode()


def test_it_shows_every_problem_of_a_new_user_in_one_round(admin_client, personas):
    response = admin_client.post(
        reverse("hub-users-add"),
        {"username": "oscar-ops", "email": "", "role": "ops", "password": "password"},
    )
    errors = response.context["form"].errors
    assert "already a user" in " ".join(errors["username"]) and "too common" in " ".join(errors["password"])
