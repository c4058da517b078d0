"""The connector registry and the sign-in table feed the System model and the system form; every
connector keeps exactly the contract the hub calls, and declares typed settings."""

import inspect
from dataclasses import asdict

import pytest
from django.core.exceptions import ValidationError

from connectors.auth import AUTH_SCHEMES, AuthScheme
from connectors.base import Connector, ConnectorConfig
from connectors.config import config_load, config_problems, declared
from connectors.models import AUTH_SECRET_FIELDS, System
from connectors.registry import CONNECTORS, connector_class
from hub.ui.forms.systems import SystemForm

pytestmark = pytest.mark.django_db


def clean_errors(**fields) -> dict[str, list[str]]:
    system = System(name="People", slug="people", **fields)
    with pytest.raises(ValidationError) as caught:
        system.full_clean(exclude=["credentials", "webhook_secret"])
    return caught.value.message_dict


@pytest.mark.parametrize("kind", CONNECTORS)
@pytest.mark.parametrize("method", ["check", "push", "fetch"])
def test_every_connector_takes_the_keyword_arguments_the_hub_passes(kind, method):
    wanted = inspect.signature(getattr(Connector, method)).parameters
    found = inspect.signature(getattr(connector_class(kind), method)).parameters
    assert list(found.values()) == list(wanted.values())
    assert all(p.kind == p.KEYWORD_ONLY for name, p in found.items() if name != "self")


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda c: c.check(path="/"), "check(*, path)"),
        (
            lambda c: c.push(
                operation="create", resource="/x", record={}, target_id=None, idempotency_key="k"
            ),
            "push(*, operation, resource, record, target_id, idempotency_key, id_path, key)",
        ),
        (
            lambda c: c.lookup(resource="/x", param="external_id", field="external_id", value="1"),
            "lookup(*, resource, param, field, value, id_path)",
        ),
        (lambda c: c.fetch(resource="/x", since=None, page_token=None, limit=1), "fetch(*, resource, since"),
    ],
)
def test_the_base_connector_names_what_a_new_connector_must_write(call, named):
    class Half(Connector):
        pass

    with pytest.raises(NotImplementedError) as caught:
        call(Half(System()))
    assert f"Half must implement {named}" in str(caught.value)


@pytest.mark.parametrize("kind", CONNECTORS)
def test_every_connector_declares_typed_settings_whose_defaults_pass(kind):
    config = connector_class(kind).Config
    assert issubclass(config, ConnectorConfig)
    assert [item.key for item in declared(config)][0] == "health_path"
    assert config_problems(config, {}) == {} and config_problems(config, asdict(config())) == {}


def test_a_connector_reads_its_settings_typed_and_passes_over_what_does_not_fit():
    settings = {"update_method": "PUT", "limit_param": 5, "unknown": "x", "since_param": ""}
    config = config_load(connector_class("rest").Config, settings)
    assert (config.update_method, config.limit_param, config.since_param) == ("PUT", "limit", "updated_since")


def test_the_model_refuses_a_kind_of_api_the_registry_does_not_know():
    errors = clean_errors(connector="soap")
    assert errors["connector"] == [
        "Unknown kind of API “soap”. Choose one of: rest (Generic REST / JSON), jsonapi (JSON:API)."
    ]


def test_the_model_refuses_settings_its_connector_does_not_declare_or_accept():
    errors = clean_errors(connector="jsonapi", settings={"health_path": "people", "update_method": "PUT"})
    assert errors["settings"] == [
        "update_method: unknown setting; known: health_path, page_size_param, since_filter",
        "health_path: Start the path with “/”, without spaces, e.g. /deals.",
    ]
    assert clean_errors(connector="rest", settings={"limit_param": ""})["settings"] == [
        "limit_param: Name the parameter, e.g. limit."
    ]


def test_the_model_checks_the_settings_of_its_sign_in_method():
    assert clean_errors(auth_scheme="api_key", auth_config={"header": "X Api Key"})["auth_config"] == [
        "header: A header name has letters, digits and hyphens only, e.g. X-Api-Key."
    ]
    assert clean_errors(auth_scheme="oauth2_client_credentials", auth_config={"token_url": ""})[
        "auth_config"
    ] == ["token_url: Enter the token URL, e.g. /oauth/token."]
    assert "auth_config" in clean_errors(auth_scheme="bearer", auth_config={"header": "X-Api-Key"})


def test_the_sign_in_table_feeds_the_model_the_forms_and_the_secret_list():
    choices = System._meta.get_field("auth_scheme").choices
    assert choices == [(str(scheme), method.label) for scheme, method in AUTH_SCHEMES.items()]
    assert set(AUTH_SCHEMES) == set(AuthScheme)
    form = SystemForm()
    for scheme, method in AUTH_SCHEMES.items():
        assert AUTH_SECRET_FIELDS[scheme] == tuple(method.secrets)
        for key, secret in method.secrets.items():
            assert form.fields[key].label == secret.label
        for item in declared(method.settings):
            assert form.fields[item.name].label == item.setting.label
