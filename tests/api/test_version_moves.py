"""API version moves through the API, as on the version-move page: real events delivered on v1 to
a loopback target; the move's start, dry run (the side-by-side payloads as JSON), switch, switch
back and discard through the same services, each audited; admins only; a step the move's state
does not allow is a 409 with the service's words."""

import pytest

from hub.models import AuditEntry, VersionMove, VersionMoveState
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel, Mapping
from tests.api.conftest import last_audit, statuses
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields
from tests.sandbox_helpers import drain_all
from tests.versioned_target import VersionedTarget

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def target():
    with VersionedTarget() as server:
        yield server


@pytest.fixture
def flow(target):
    hr = SystemFactory(name="HR", slug="hr")
    contacts = SystemFactory(
        name="Contacts", slug="contacts", base_url=target.url, api_version="v1",
        api_version_in="header", api_version_name="X-Api-Version",
    )  # fmt: skip
    person = model_with_fields(hr, "Person", "/people", "id! email! name")
    contact = model_with_fields(contacts, "Contact", "/contacts", "email! name")
    rules = [{"target": "email", "source": "email"}, {"target": "name", "source": "name"}]
    flow = flow_with_mapping(source_model=person, target_model=contact, rules=rules, operation="create")
    for n in (1, 2):
        payload = {"id": f"evt-{n}", "data": {"id": f"p{n}", "email": f"p{n}@example.com", "name": f"P {n}"}}
        events_store([IncomingEvent(hr, "person.added", payload["id"], payload)])
    drain_all()
    return flow


def start(as_, flow, **extra):
    body = {
        "system": flow.target_system_id,
        "to_version": "v2",
        "to_in": "header",
        "to_name": "X-Api-Version",
    }
    return as_("admin").post("/api/v1/version-moves/", {**body, **extra}, format="json")


def test_a_move_from_start_to_switch_back_and_discard(as_, flow, target):
    response = start(as_, flow)
    assert response.status_code == 201, response.json()
    move = response.json()
    assert move["state"] == "prepared" and move["from_version"] == "v1" and move["to_version"] == "v2"
    assert move["flows"] == [flow.pk]
    assert last_audit("version_start").diff["copied_models"] == ["Contact"]
    copy = DataModel.objects.get(name="Contact (v2)")
    listed = as_("admin").get(f"/api/v1/version-moves/?system={flow.target_system_id}").json()
    assert [m["id"] for m in listed["results"]] == [move["id"]]

    # The new version renames email: the admin fixes the copied mapping, then tries it.
    copy.fields.filter(path="email").update(path="email_address")
    rules = [{"target": "email_address", "source": "email"}, {"target": "name", "source": "name"}]
    mapping_version_save(mapping=Mapping.objects.get(target_model=copy), rules=rules, actor=None)
    too_soon = as_("admin").post(f"/api/v1/version-moves/{move['id']}/switch/", {}, format="json")
    assert too_soon.status_code == 409
    assert too_soon.json()["error"] == "try the dry run first: it shows what the new version would send"

    sent = len(target.seen)
    dry = as_("admin").post(f"/api/v1/version-moves/{move['id']}/dry-run/", {}, format="json")
    assert dry.status_code == 200, dry.json()
    (result,) = dry.json()["flows"]
    assert result["flow"] == flow.pk and result["differing"] == 2 and result["problems"] == []
    assert "v1" in result["old_call"] and "v2" in result["new_call"]
    newest = result["events"][0]
    assert newest["old"] == {"email": "p2@example.com", "name": "P 2"}
    assert newest["new"] == {"email_address": "p2@example.com", "name": "P 2"}
    assert sorted((c["path"], c["kind"], c["old"], c["new"]) for c in newest["changes"]) == [
        ("email", "removed", "p2@example.com", None), ("email_address", "added", None, "p2@example.com"),
    ]  # fmt: skip
    assert len(target.seen) == sent  # nothing was sent
    assert last_audit("version_dry_run").diff["flows"][flow.name]["differing"] == 2

    switched = as_("admin").post(f"/api/v1/version-moves/{move['id']}/switch/", {}, format="json")
    assert switched.status_code == 200, switched.json()
    assert switched.json()["state"] == "switched"
    flow.refresh_from_db()
    assert flow.target_model == copy
    back = as_("admin").post(f"/api/v1/version-moves/{move['id']}/switch-back/", {}, format="json")
    assert back.status_code == 200 and back.json()["state"] == "switched_back"
    again = as_("admin").post(f"/api/v1/version-moves/{move['id']}/switch-back/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "this move has not been switched over"

    discarded = as_("admin").post(f"/api/v1/version-moves/{move['id']}/discard/", {}, format="json")
    assert discarded.status_code == 200 and discarded.json()["state"] == "discarded"
    assert not DataModel.objects.filter(name="Contact (v2)").exists()
    assert last_audit("version_discard").diff["removed_models"] == ["Contact (v2)"]
    verbs = set(AuditEntry.objects.values_list("verb", flat=True))
    assert {
        "version_start",
        "version_dry_run",
        "version_switch",
        "version_switch_back",
        "version_discard",
    } <= verbs


def test_a_second_move_while_one_is_open_is_a_409(as_, flow):
    assert start(as_, flow).status_code == 201
    response = start(as_, flow, to_version="v3")
    assert response.status_code == 409
    assert "already being moved to another version" in response.json()["error"]
    assert VersionMove.objects.count() == 1


def test_only_admins_see_and_move(as_, flow):
    assert statuses(as_, "get", "/api/v1/version-moves/") == {
        "anonymous": 401, "admin": 200, "ops": 403, "auditor": 403, "publisher": 403, "outsider": 403,
    }  # fmt: skip
    body = {
        "system": flow.target_system_id,
        "to_version": "v2",
        "to_in": "header",
        "to_name": "X-Api-Version",
    }
    found = statuses(as_, "post", "/api/v1/version-moves/", body)
    assert {k: v for k, v in found.items() if k != "admin"} == {
        "anonymous": 401, "ops": 403, "auditor": 403, "publisher": 403, "outsider": 403,
    }  # fmt: skip
    move = VersionMove.objects.get()
    for step in ("dry-run", "switch", "switch-back", "discard"):
        assert (
            as_("ops").post(f"/api/v1/version-moves/{move.pk}/{step}/", {}, format="json").status_code == 403
        )
    assert VersionMove.objects.get().state == VersionMoveState.PREPARED


@pytest.mark.parametrize(
    "changes",
    [
        {"to_version": ""}, {"to_version": 2}, {"to_in": "cookie"}, {"system": 999999}, {"system": "contacts"},
        {"to_version": "x" * 41}, {"document": "not: [an openapi"},
    ],
)  # fmt: skip
def test_bad_starts_are_4xx_with_the_reason_and_change_nothing(as_, flow, changes):
    response = start(as_, flow, **changes)
    assert response.status_code in (400, 409), response.json()
    assert response.json()["error"]
    assert not VersionMove.objects.exists()
    assert not DataModel.objects.filter(name="Contact (v2)").exists()


def test_an_unknown_move_is_a_404(as_, flow):
    assert as_("admin").get("/api/v1/version-moves/999999/").status_code == 404
    assert as_("admin").post("/api/v1/version-moves/999999/switch/", {}, format="json").status_code == 404
    assert as_("admin").get("/api/v1/version-moves/?state=lost").status_code == 400
