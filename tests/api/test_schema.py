"""The OpenAPI schema describes the configuration API: every resource, the secrets marked
write-only in requests and absent from every answer."""

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

RESOURCES = [
    "/api/v1/systems/{id}/test-connection/", "/api/v1/models/{id}/fields/", "/api/v1/models/{id}/field-order/",
    "/api/v1/models/{id}/sample/", "/api/v1/fields/{id}/", "/api/v1/mappings/{id}/versions/",
    "/api/v1/mappings/{id}/versions/{number}/restore/", "/api/v1/mappings/{id}/preview/",
    "/api/v1/flows/{id}/enable/", "/api/v1/flows/{id}/test-event/", "/api/v1/flows/{id}/poll/",
    "/api/v1/alert-rules/{id}/", "/api/v1/alert-channels/{id}/test/", "/api/v1/alerts/{id}/mute/",
    "/api/v1/users/{id}/", "/api/v1/tokens/{id}/revoke/",
    "/api/v1/drift/", "/api/v1/drift/{id}/", "/api/v1/drift/{id}/update-model/", "/api/v1/drift/{id}/release/",
    "/api/v1/drift/{id}/dismiss/", "/api/v1/version-moves/", "/api/v1/version-moves/{id}/dry-run/",
    "/api/v1/version-moves/{id}/switch/", "/api/v1/version-moves/{id}/switch-back/",
    "/api/v1/version-moves/{id}/discard/", "/api/v1/systems/{id}/template-models/",
    "/api/v1/models/from-api-description/", "/api/v1/models/from-template/",
]  # fmt: skip
SECRETS = {
    "SystemRequest": ["credentials", "webhook_secret"],
    "ChannelRequest": ["secrets"],
    "UserRequest": ["password"],
}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_resource_is_described(schema):
    assert [path for path in RESOURCES if path not in schema["paths"]] == []


def test_secrets_are_write_only_and_never_in_an_answer(schema):
    components = schema["components"]["schemas"]
    for component, names in SECRETS.items():
        for name in names:
            assert components[component]["properties"][name]["writeOnly"] is True, (component, name)
    answers = {name: c for name, c in components.items() if not name.endswith("Request")}
    for name, component in answers.items():
        properties = set(component.get("properties", {}))
        assert not properties & {"credentials", "webhook_secret", "secrets", "password", "key_hash"}, name
    assert "credentials_set" in components["System"]["properties"]
    assert "key" in components["ApiTokenCreated"]["properties"]
    assert "key" not in components["ApiToken"]["properties"]
