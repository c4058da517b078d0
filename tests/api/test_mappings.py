"""Mappings and their versions through the API: the mapper's rule checks, versions and audit."""

import pytest

from mappings.models import Mapping
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db

FIRST = [{"target": "ref", "source": "id"}]
SECOND = [{"target": "ref", "source": "id"}, {"target": "email", "source": "contact.email"}]


@pytest.fixture
def mapping():
    source = model_with_fields(SystemFactory(), "Deal", "/deals", "id! contact.email", sample={"id": 7})
    target = model_with_fields(SystemFactory(), "Invoice", "/invoices", "ref! email")
    return flow_with_mapping(source_model=source, target_model=target, rules=FIRST).mapping


def test_it_reads_the_rules_and_saves_a_new_version(as_, mapping):
    api = as_("admin")
    read = api.get(f"/api/v1/mappings/{mapping.pk}/").json()
    assert read["version"] == 1 and read["rules"] == FIRST and read["flows"]
    body = {"rules": SECOND, "comment": "the email too", "base_version": 1}
    saved = api.post(f"/api/v1/mappings/{mapping.pk}/versions/", body, format="json")
    assert saved.status_code == 201, saved.json()
    assert saved.json()["number"] == 2 and saved.json()["saved"] is True
    assert saved.json()["diff"][0]["change"] == "added"
    assert last_audit("save").diff["version"] == 2

    same = api.post(f"/api/v1/mappings/{mapping.pk}/versions/", {"rules": SECOND}, format="json")
    assert same.status_code == 200 and same.json()["saved"] is False
    versions = api.get(f"/api/v1/mappings/{mapping.pk}/versions/").json()["results"]
    assert [v["number"] for v in versions] == [2, 1]
    assert api.get(f"/api/v1/mappings/{mapping.pk}/versions/1/").json()["rules"] == FIRST
    assert api.get(f"/api/v1/mappings/{mapping.pk}/versions/9/").status_code == 404


def test_a_save_on_top_of_someone_elses_is_a_409(as_, mapping):
    body = {"rules": SECOND, "base_version": 0}
    response = as_("admin").post(f"/api/v1/mappings/{mapping.pk}/versions/", body, format="json")
    assert response.status_code == 409 and response.json()["version"] == 1


@pytest.mark.parametrize(
    "rules",
    [
        [{"source": "id"}],  # no target
        [{"target": "ref", "source": "id", "transforms": [{"name": "no-such-transform"}]}],
        [{"target": "ref", "source": "id"}, {"target": "ref", "source": "id"}],
        "not a list",
        [1, 2],
    ],
)
def test_rules_the_mapper_refuses_are_a_400_naming_the_rule(as_, mapping, rules):
    response = as_("admin").post(f"/api/v1/mappings/{mapping.pk}/versions/", {"rules": rules}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]
    assert Mapping.objects.get(pk=mapping.pk).current_version.number == 1


def test_it_restores_an_old_version_and_renames(as_, mapping):
    api = as_("admin")
    api.post(f"/api/v1/mappings/{mapping.pk}/versions/", {"rules": SECOND}, format="json")
    restored = api.post(f"/api/v1/mappings/{mapping.pk}/versions/1/restore/")
    assert (
        restored.status_code == 201 and restored.json()["number"] == 3 and restored.json()["rules"] == FIRST
    )
    renamed = api.patch(f"/api/v1/mappings/{mapping.pk}/", {"name": "Deals to invoices"}, format="json")
    assert renamed.json()["name"] == "Deals to invoices"
    assert last_audit("rename").diff["name"][1] == "Deals to invoices"
    assert api.patch(f"/api/v1/mappings/{mapping.pk}/", {"name": "  "}, format="json").status_code == 400


def test_the_preview_runs_rules_on_a_record_and_changes_nothing(as_, mapping):
    body = {"rules": SECOND, "record": {"id": 3, "contact": {"email": "ann@example.com"}}}
    response = as_("auditor").post(f"/api/v1/mappings/{mapping.pk}/preview/", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["output"] == {"ref": 3, "email": "ann@example.com"}
    sample = as_("ops").post(f"/api/v1/mappings/{mapping.pk}/preview/", {}, format="json")
    assert sample.json()["output"] == {"ref": 7} and sample.json()["record"] == {"id": 7}
    broken = as_("ops").post(
        f"/api/v1/mappings/{mapping.pk}/preview/", {"rules": [{"source": "id"}]}, format="json"
    )
    assert broken.status_code == 200 and broken.json()["errors"][0]["index"] == 0
    assert Mapping.objects.get(pk=mapping.pk).current_version.number == 1


def test_roles_match_the_mapper(as_, mapping):
    reads = {"anonymous": 401, "admin": 200, "ops": 200, "auditor": 200, "publisher": 403, "outsider": 403}
    assert statuses(as_, "get", f"/api/v1/mappings/{mapping.pk}/versions/") == reads
    assert statuses(as_, "post", f"/api/v1/mappings/{mapping.pk}/preview/", {}) == reads
    saves = statuses(as_, "post", f"/api/v1/mappings/{mapping.pk}/versions/", {"rules": FIRST})
    assert saves == {
        "anonymous": 401,
        "admin": 200,
        "ops": 403,
        "auditor": 403,
        "publisher": 403,
        "outsider": 403,
    }
