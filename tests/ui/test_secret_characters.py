"""Credential inputs refuse control characters: a line break, tab, NUL or any other C0/C1 character
in a secret is refused beside the input that has it, saying which character and where, and nothing
is stored. The services refuse them too, whoever calls them."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from connectors.models import AuthScheme, System
from hub.services.systems import system_create, system_update
from tests.factories import SystemFactory
from tests.ui.test_systems import form_data

pytestmark = pytest.mark.django_db

REFUSED = [  # (sign-in method, input, value, what the form says)
    ("api_key", "api_key", "key-part-one\nkey-part-two", "a line break at character 13"),
    ("api_key", "api_key", "key-part-one\r\nkey-part-two", "a line break at character 13"),
    ("bearer", "token", "tok\ten-value", "a tab at character 4"),
    ("basic", "password", "pass\x00word", "a null character at character 5"),
    ("oauth2_client_credentials", "client_secret", "sec\x1bret", "control character (U+001B)"),
    ("oauth2_client_credentials", "client_id", "client\x7fid", "control character (U+007F)"),
    ("api_key", "webhook_secret", "whsec\x85next", "control character (U+0085)"),
]
OTHER_INPUTS = {"api_key": "some-api-key", "token": "some-token", "username": "someone",
                "password": "some-password", "client_id": "some-client", "client_secret": "some-secret"}  # fmt: skip


@pytest.fixture
def admin_client(client, personas):
    client.force_login(personas["admin"])
    return client


@pytest.mark.parametrize("scheme, name, value, message", REFUSED)
def test_it_refuses_a_control_character_in_a_new_systems_secret(admin_client, scheme, name, value, message):
    response = admin_client.post(
        reverse("connectors-add"), form_data(auth_scheme=scheme, **{**OTHER_INPUTS, name: value})
    )
    assert response.status_code == 200
    errors = response.context["form"].errors[name]
    assert len(errors) == 1 and message in errors[0] and "copy it again" in errors[0]
    assert value not in response.content.decode()
    assert not System.objects.exists()


@pytest.mark.parametrize("scheme, name, value, message", REFUSED)
def test_it_refuses_a_control_character_when_secrets_are_replaced(admin_client, scheme, name, value, message):
    system = SystemFactory(auth_scheme=scheme, credentials={"api_key": "kept-key"})
    response = admin_client.post(reverse("connectors-credentials", args=[system.pk]), {name: value})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[name])
    system.refresh_from_db()
    assert system.credentials == {"api_key": "kept-key"} and system.secret == "test-webhook-secret"


def test_it_takes_a_pasted_secret_without_the_line_break_around_it(admin_client):
    response = admin_client.post(reverse("connectors-add"), form_data(api_key="\npasted-key-1234\n"))
    assert response.status_code == 302
    assert System.objects.get().credentials == {"api_key": "pasted-key-1234"}


def test_the_services_refuse_control_characters_whoever_calls_them(personas):
    fields = {"name": "Scripted", "base_url": "https://example.com", "auth_scheme": AuthScheme.API_KEY}
    with pytest.raises(ValidationError) as refused:
        system_create(fields=fields, credentials={"api_key": "a-key\nmore"}, actor=personas["admin"])
    assert "line break" in refused.value.message_dict["api_key"][0]
    system = system_create(fields=fields, credentials={"api_key": "a-good-key"}, actor=personas["admin"])
    with pytest.raises(ValidationError) as refused:
        system_update(system=system, fields={}, webhook_secret="hook\x00secret", actor=personas["admin"])
    assert "null character" in refused.value.message_dict["webhook_secret"][0]
    assert System.objects.get().credentials == {"api_key": "a-good-key"}
