"""Saving a mapping version: the editor says which version it started from, and a save made from a
version that is no longer current is refused, even when two saves race."""

import threading
import time

import pytest
from django.db import connection, transaction

from hub.models import AuditEntry
from hub.services.errors import ConfigError
from hub.services.mappings import MappingVersionConflict, mapping_version_save
from mappings.models import Mapping, MappingVersion
from tests.factories import SystemFactory, model_with_fields

V1 = [{"target": "number", "source": "id"}]
V2 = [{"target": "number", "source": "id"}, {"target": "email", "source": "email"}]
ALSO_V2 = [{"target": "number", "source": "id", "transforms": [{"name": "upper"}]}]


@pytest.fixture
def mapping(personas):
    crm = SystemFactory(name="CRM", slug="crm")
    books = SystemFactory(name="Books", slug="books")
    deal = model_with_fields(crm, "Deal", "/deals", "id! email")
    invoice = model_with_fields(books, "Invoice", "/invoices", "number! email")
    mapping = Mapping.objects.create(name="Deals to invoices", source_model=deal, target_model=invoice)
    mapping_version_save(mapping=mapping, rules=V1, actor=personas["admin"], expected_version=0)
    return mapping


def saves_audited(mapping: Mapping) -> int:
    return AuditEntry.objects.filter(verb="save", target_type="mapping", target_id=str(mapping.pk)).count()


@pytest.mark.django_db
def test_it_refuses_the_second_of_two_saves_from_the_same_version(mapping, personas):
    first = mapping_version_save(mapping=mapping, rules=V2, actor=personas["admin"], expected_version=1)
    assert first.number == 2

    with pytest.raises(MappingVersionConflict) as refused:
        mapping_version_save(mapping=mapping, rules=ALSO_V2, actor=personas["ops"], expected_version=1)

    assert (refused.value.number, refused.value.author) == (2, personas["admin"])
    assert str(refused.value) == "alice-admin saved version 2 while you were editing"
    assert isinstance(refused.value, ConfigError)  # every entry point already answers ConfigError
    assert list(mapping.versions.order_by("number").values_list("number", "rules")) == [(1, V1), (2, V2)]
    mapping.refresh_from_db()
    assert mapping.current_version == first
    assert saves_audited(mapping) == 2


@pytest.mark.django_db
def test_it_saves_from_the_current_version_and_without_one_given(mapping, personas):
    assert mapping_version_save(mapping=mapping, rules=V2, actor=None, expected_version=1).number == 2
    # Callers that do not edit interactively (the specification import, the demo) name no version.
    assert mapping_version_save(mapping=mapping, rules=ALSO_V2, actor=None).number == 3


@pytest.mark.django_db
def test_it_refuses_a_version_ahead_of_the_current_one_and_names_nobody_when_unknown(personas):
    crm = SystemFactory(name="CRM", slug="crm")
    deal = model_with_fields(crm, "Deal", "/deals", "id!")
    empty = Mapping.objects.create(name="Nothing yet", source_model=deal, target_model=deal)
    with pytest.raises(MappingVersionConflict, match="someone saved version 0 while you were editing"):
        mapping_version_save(
            mapping=empty, rules=[{"target": "id", "source": "id"}], actor=None, expected_version=3
        )
    assert not MappingVersion.objects.filter(mapping=empty).exists()


@pytest.mark.django_db(transaction=True)
def test_two_racing_saves_from_the_same_version_let_exactly_one_win(mapping, personas):
    """Both savers are held at the mapping's row lock, then let go together: one version is written,
    the other save is refused with the winner's name (not a unique-constraint error, not a lost edit)."""
    outcomes: dict[str, object] = {}

    def save(who: str, rules: list) -> None:
        try:
            outcomes[who] = mapping_version_save(
                mapping=Mapping.objects.get(pk=mapping.pk),
                rules=rules,
                actor=personas[who],
                expected_version=1,
            )
        except Exception as exc:  # noqa: BLE001 - the assertion below names whatever went wrong
            outcomes[who] = exc
        finally:
            connection.close()

    savers = [
        threading.Thread(target=save, args=(who, rules)) for who, rules in (("admin", V2), ("ops", ALSO_V2))
    ]
    with transaction.atomic():
        Mapping.objects.select_for_update().get(pk=mapping.pk)
        for saver in savers:
            saver.start()
        wait_until_blocked(len(savers))
    for saver in savers:
        saver.join(30)

    assert not any(saver.is_alive() for saver in savers)
    won = [o for o in outcomes.values() if isinstance(o, MappingVersion)]
    lost = [o for o in outcomes.values() if not isinstance(o, MappingVersion)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], MappingVersionConflict), repr(lost[0])
    assert (lost[0].number, lost[0].author) == (2, won[0].author)
    assert MappingVersion.objects.filter(mapping=mapping).count() == 2
    mapping.refresh_from_db()
    assert mapping.current_version == won[0]
    assert saves_audited(mapping) == 2


def wait_until_blocked(count: int, timeout: float = 10.0) -> None:
    """Until `count` other sessions wait on a lock this test holds: then the race is real."""
    if connection.vendor != "postgresql":
        # SQLite: the held write lock queues them at BEGIN IMMEDIATE, which cannot be observed.
        time.sleep(0.3)
        return
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is otherwise frozen per transaction
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.02)
    raise AssertionError(f"the {count} savers never both waited on the mapping's row lock")
