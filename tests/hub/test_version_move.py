"""Proof of issue 12 point 3: a target moves from v1 to v2 of its API (v2 renames `email` to
`email_address`). Real events are delivered on v1; the admin makes the v2 copies, fixes the
mapping, and the dry run shows the differences on those real events while nothing is sent; the
switch sends the next event to v2, placed where the system says (header, path or query), and
switching back sends the next one to v1 again. Every step is audited."""

import pytest

from hub.models import AuditEntry, Delivery, DeliveryStatus, Flow, VersionMoveState
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.services.datamodels import field_add, field_remove
from hub.services.errors import ConfigError
from hub.services.mappings import mapping_version_save
from hub.services.versions import (
    version_dry_run,
    version_move_discard,
    version_move_start,
    version_switch,
    version_switch_back,
)
from mappings.models import DataModel, Mapping
from tests.factories import SystemFactory, UserFactory, flow_with_mapping, model_with_fields
from tests.sandbox_helpers import drain_all
from tests.versioned_target import VersionedTarget

pytestmark = pytest.mark.django_db(transaction=True)

# Where the version goes: (System fields, the contacts' resource path, how the target sees it).
PLACES = {
    "header": ({"api_version_in": "header", "api_version_name": "X-Api-Version"}, "/contacts"),
    "path": ({"api_version_in": "path", "api_version_name": ""}, "/v1/contacts"),
    "query": ({"api_version_in": "query", "api_version_name": "api-version"}, "/contacts"),
}


@pytest.fixture
def target():
    with VersionedTarget() as server:
        yield server


def setup_flow(target: VersionedTarget, place: str) -> Flow:
    fields, resource = PLACES[place]
    hr = SystemFactory(name="HR", slug="hr")
    contacts = SystemFactory(
        name="Contacts", slug="contacts", base_url=target.url, api_version="v1", **fields
    )
    person = model_with_fields(hr, "Person", "/people", "id! email! name")
    contact = model_with_fields(contacts, "Contact", resource, "email! name")
    rules = [{"target": "email", "source": "email"}, {"target": "name", "source": "name"}]
    return flow_with_mapping(source_model=person, target_model=contact, rules=rules, operation="create")


def publish(flow: Flow, n: int) -> None:
    payload = {
        "id": f"evt-{n}",
        "type": "person.added",
        "data": {"id": f"p{n}", "email": f"p{n}@example.com", "name": f"P {n}"},
    }
    events_store([IncomingEvent(flow.source_system, "person.added", payload["id"], payload)])
    drain_all()


def placed(seen, place: str) -> str:
    """The version the target read from where this place puts it (and only from there)."""
    if place == "header":
        assert "api-version" not in seen.query
        return seen.headers.get("x-api-version", "")
    if place == "query":
        assert "x-api-version" not in seen.headers
        return seen.query.get("api-version", "")
    assert "x-api-version" not in seen.headers and "api-version" not in seen.query
    return seen.path.split("/")[1]


@pytest.mark.parametrize("place", PLACES)
def test_a_version_switch_with_a_dry_run_on_real_events_and_a_switch_back(target, place):
    admin = UserFactory(username="alice-admin", role="admin")
    flow = setup_flow(target, place)
    for n in range(1, 4):
        publish(flow, n)
    assert [placed(s, place) for s in target.writes()] == ["v1"] * 3
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 3

    # 1. The v2 copies of the target's models and of the mapping that writes them.
    system = flow.target_system
    move = version_move_start(
        system=system,
        to_version="v2",
        to_in=system.api_version_in,
        to_name=system.api_version_name,
        actor=admin,
    )
    copy = DataModel.objects.get(system=system, name="Contact (v2)", api_version="v2")
    new_mapping = Mapping.objects.get(target_model=copy)
    assert DataModel.objects.get(system=system, name="Contact").api_version == "v1"
    flow.refresh_from_db()
    assert flow.target_model.name == "Contact" and system.api_version == "v1"  # nothing switched yet

    # 2. A dry run before the mapping is fixed: the same payloads, and v2 would refuse them.
    sent_before = len(target.seen)
    (unfixed,) = version_dry_run(move=move, actor=admin)
    assert len(unfixed.events) == 3 and unfixed.differing == 0
    field_remove(field=copy.fields.get(path="email"), actor=admin)
    field_add(model=copy, path="email_address", type="string", required=True, actor=admin)
    (unfixed,) = version_dry_run(move=move, actor=admin)
    assert any("email_address" in p for p in unfixed.problems)
    with pytest.raises(ConfigError, match="email_address"):
        version_switch(move=move, actor=admin)

    # The admin fixes the mapping; the dry run shows the rename on each real event.
    rules = [{"target": "email_address", "source": "email"}, {"target": "name", "source": "name"}]
    mapping_version_save(mapping=new_mapping, rules=rules, actor=admin)
    (result,) = version_dry_run(move=move, actor=admin)
    assert result.problems == [] and len(result.events) == 3 and result.differing == 3
    newest = result.events[0]
    assert newest.old == {"email": "p3@example.com", "name": "P 3"}
    assert newest.new == {"email_address": "p3@example.com", "name": "P 3"}
    assert {(c.path, c.kind) for c in newest.changes} == {("email", "removed"), ("email_address", "added")}
    assert newest.problems == []
    assert "v1" in result.old_call and "v2" in result.new_call
    assert len(target.seen) == sent_before  # nothing was sent

    # 3. Switch over: the next event goes to v2, where the system puts the version.
    version_switch(move=move, actor=admin)
    system.refresh_from_db()
    flow.refresh_from_db()
    assert system.api_version == "v2" and flow.target_model == copy and flow.mapping == new_mapping
    publish(flow, 4)
    last = target.writes()[-1]
    assert placed(last, place) == "v2" and last.body == {"email_address": "p4@example.com", "name": "P 4"}

    # 4. Switch back: the next event goes to v1 again, as before.
    version_switch_back(move=move, actor=admin)
    system.refresh_from_db()
    flow.refresh_from_db()
    assert system.api_version == "v1" and flow.target_model.name == "Contact"
    publish(flow, 5)
    last = target.writes()[-1]
    assert placed(last, place) == "v1" and last.body == {"email": "p5@example.com", "name": "P 5"}
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 5

    move.refresh_from_db()
    assert move.state == VersionMoveState.SWITCHED_BACK
    verbs = list(AuditEntry.objects.filter(target_type="system").values_list("verb", flat=True))
    for verb in ("version_start", "version_dry_run", "version_switch", "version_switch_back"):
        assert verb in verbs


def test_the_copies_stay_until_the_admin_removes_them(target):
    admin = UserFactory(username="alice-admin", role="admin")
    flow = setup_flow(target, "header")
    system = flow.target_system
    move = version_move_start(
        system=system, to_version="v2", to_in="header", to_name="X-Api-Version", actor=admin
    )
    version_dry_run(move=move, actor=admin)
    with pytest.raises(ConfigError, match="already being moved"):
        version_move_start(
            system=system, to_version="v3", to_in="header", to_name="X-Api-Version", actor=admin
        )
    version_switch(move=move, actor=admin)
    version_switch_back(move=move, actor=admin)
    assert DataModel.objects.filter(name="Contact (v2)").exists()  # kept after switching back
    version_move_discard(move=move, actor=admin)
    assert not DataModel.objects.filter(name="Contact (v2)").exists()
    assert Mapping.objects.filter(target_model__name="Contact").count() == 1
    flow.refresh_from_db()
    assert flow.target_model.name == "Contact"
    assert AuditEntry.objects.filter(verb="version_discard").exists()


def test_switching_needs_a_dry_run_first(target):
    admin = UserFactory(username="alice-admin", role="admin")
    flow = setup_flow(target, "header")
    move = version_move_start(
        system=flow.target_system, to_version="v2", to_in="header", to_name="X-Api-Version", actor=admin
    )
    with pytest.raises(ConfigError, match="dry run first"):
        version_switch(move=move, actor=admin)


def test_a_system_without_a_version_moves_to_one_and_on_to_the_next(target):
    admin = UserFactory(username="alice-admin", role="admin")
    flow = setup_flow(target, "header")
    system = flow.target_system
    system.api_version = ""
    system.save()
    first = version_move_start(
        system=system, to_version="v1", to_in="header", to_name="X-Api-Version", actor=admin
    )
    version_dry_run(move=first, actor=admin)
    version_switch(move=first, actor=admin)
    system.refresh_from_db()
    second = version_move_start(
        system=system, to_version="v2", to_in="header", to_name="X-Api-Version", actor=admin
    )
    # Only the models in use are copied again: "Contact (v1)" becomes "Contact (v2)".
    assert sorted(
        DataModel.objects.filter(pk__in=second.model_pairs.values()).values_list("name", flat=True)
    ) == ["Contact (v2)"]
