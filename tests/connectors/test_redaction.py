"""The redactor finds a secret in every form a target may echo it back in."""

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from connectors.auth import forget_token, oauth2_token
from connectors.redaction import REDACTED, Redactor
from tests.echo_target import EchoTarget
from tests.factories import SystemFactory

SECRET = 'sk-"quoted"\\back/slash é ü &+=?#'


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
        json.dumps(SECRET)[1:-1].replace("\\u00e9", "\\u00E9"),
        json.dumps(json.dumps(SECRET)[1:-1])[1:-1],
        json.dumps(json.dumps(SECRET, ensure_ascii=False)[1:-1])[1:-1],
        repr(SECRET)[1:-1],
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        quote(SECRET),
        quote_plus(SECRET),
    ],
)
def test_it_finds_a_secret_in_every_form(form):
    text = Redactor([SECRET]).text(f"the target said: {form} (twice: {form})")
    assert text == f"the target said: {REDACTED} (twice: {REDACTED})"


def test_it_finds_a_newline_secret_as_an_exception_quotes_it():
    secret = "nl-key\nsecond"
    error = f"Invalid return character(s) in header value: {secret!r}"
    assert Redactor([secret]).text(error) == f"Invalid return character(s) in header value: '{REDACTED}'"


def test_it_cuts_only_after_redacting():
    text = "x" * 15 + "secret-value-1234"
    assert Redactor(["secret-value-1234"]).text(text, 20) == "x" * 15 + REDACTED[:5]


def test_it_replaces_a_longer_secret_whole_and_ignores_short_values():
    redactor = Redactor(["abcd", "abcd-efgh", "xyz"])
    assert redactor.text("abcd-efgh abcd xyz") == f"{REDACTED} {REDACTED} xyz"


def test_it_redacts_every_string_of_a_summary():
    summary = {"headers": {"X-Key": "k-12345"}, "body": ["k-12345", 3, None], "k-12345": True}
    assert Redactor(["k-12345"]).data(summary) == {
        "headers": {"X-Key": REDACTED},
        "body": [REDACTED, 3, None],
        REDACTED: True,
    }


@pytest.mark.django_db
def test_it_knows_the_base64_of_a_basic_pair():
    system = SystemFactory(auth_scheme="basic", credentials={"username": "user-éa", "password": "pw-1234"})
    redactor = Redactor.for_system(system)
    for encoding in ("latin-1", "utf-8"):
        pair = base64.b64encode("user-éa:pw-1234".encode(encoding)).decode()
        assert redactor.text(f"Authorization: Basic {pair}") == f"Authorization: Basic {REDACTED}"


@pytest.mark.django_db
def test_it_knows_the_oauth_tokens_the_hub_obtained():
    with EchoTarget() as echo:
        system = SystemFactory(
            base_url=echo.url,
            auth_scheme="oauth2_client_credentials",
            credentials={"client_id": "hub-client"},
        )
        import requests

        with requests.Session() as session:
            oauth2_token(system, session)
        access, refresh = echo.tokens
        redactor = Redactor.for_system(system)
        assert redactor.text(f"{access} {quote(refresh, safe='')}") == f"{REDACTED} {REDACTED}"
        forget_token(system)
