"""Moving to a new API version from the vendor's new API description: each copied data model takes
the fields of its schema, and the move says per model what was added, removed or changed type. The
description can be pasted or read from the system, asked for in the new version."""

import json

import pytest

from hub.services.errors import ConfigError
from hub.services.versions import version_move_start
from mappings.models import DataModel
from tests.factories import SystemFactory, UserFactory, model_with_fields
from tests.versioned_target import VersionedTarget

pytestmark = pytest.mark.django_db

V2 = {
    "openapi": "3.0.3",
    "info": {"title": "Contacts", "version": "2"},
    "paths": {},
    "components": {
        "schemas": {
            "Contact": {
                "type": "object",
                "required": ["email_address"],
                "properties": {
                    "email_address": {"type": "string"},
                    "name": {"type": "string"},
                    "age": {"type": "integer"},
                },
            }
        }
    },
}


@pytest.fixture
def admin():
    return UserFactory(username="alice-admin", role="admin")


def contacts(base_url: str = "http://127.0.0.1:9"):
    system = SystemFactory(name="Contacts", slug="contacts", base_url=base_url, api_version="v1")
    model_with_fields(system, "Contact", "/v1/contacts", "email! name age", description="People we write to")
    model_with_fields(system, "Note", "/v1/notes", "text")
    return system


def test_a_pasted_description_gives_the_copies_its_fields_and_names_the_differences(admin):
    system = contacts()
    move = version_move_start(
        system=system, to_version="v2", to_in="path", to_name="", actor=admin, document=json.dumps(V2)
    )
    copy = DataModel.objects.get(name="Contact (v2)")
    assert {(f.path, f.type, f.required) for f in copy.fields.all()} == {
        ("email_address", "string", True),
        ("name", "string", False),
        ("age", "integer", False),
    }
    assert copy.description == "People we write to" and copy.resource_path == "/v1/contacts"
    assert move.differences["Contact (v2)"] == {
        "schema": "Contact",
        "added": ["email_address"],
        "removed": ["email"],
        "changed": [["age", "string", "integer"]],
    }
    # A model the description does not name is copied as it was, and the page says so.
    assert move.differences["Note (v2)"]["schema"] == ""
    assert DataModel.objects.get(name="Note (v2)").fields.get().path == "text"
    # The old version's models are untouched.
    old = DataModel.objects.get(name="Contact")
    assert {f.path for f in old.fields.all()} == {"email", "name", "age"} and old.api_version == "v1"


def test_the_description_is_read_from_the_system_in_the_new_version(admin):
    with VersionedTarget() as target:
        target.documents["v2"] = V2
        system = contacts(target.url)
        move = version_move_start(
            system=system,
            to_version="v2",
            to_in="path",
            to_name="",
            actor=admin,
            document_path="/v1/openapi.json",
        )
        assert [s.path for s in target.seen] == ["/v2/openapi.json"]
    assert move.differences["Contact (v2)"]["added"] == ["email_address"]


def test_a_description_that_cannot_be_read_is_refused_and_nothing_is_copied(admin):
    system = contacts()
    with pytest.raises(ConfigError, match="cannot be read"):
        version_move_start(
            system=system, to_version="v2", to_in="path", to_name="", actor=admin, document="{not json"
        )
    assert not DataModel.objects.filter(api_version="v2").exists()
