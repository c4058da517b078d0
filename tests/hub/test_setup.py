"""`manage.py migrate` alone sets up what the pipeline needs: the role groups and the minutely
drain schedule, the safety net behind the kicks. Not only `manage.py up`."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django_q.models import Schedule

from hub.pipeline.schedules import DRAIN_SCHEDULE
from hub.roles import ROLES

pytestmark = pytest.mark.django_db


def setup_rows() -> tuple[list, list]:
    return (
        list(Group.objects.order_by("pk").values()),
        list(Schedule.objects.order_by("pk").values()),
    )


def test_it_has_the_role_groups_and_the_drain_schedule_once_the_database_is_migrated():
    assert set(ROLES) <= set(Group.objects.values_list("name", flat=True))
    drain = Schedule.objects.get(name=DRAIN_SCHEDULE)
    assert (drain.func, drain.schedule_type, drain.minutes, drain.repeats) == (
        "hub.tasks.deliveries_drain",
        Schedule.MINUTES,
        1,
        -1,
    )


def test_it_changes_nothing_when_migrate_runs_again():
    before = setup_rows()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("migrate", interactive=False, verbosity=0)
    assert setup_rows() == before


def test_it_puts_back_a_missing_role_and_a_drain_schedule_someone_changed():
    Group.objects.filter(name="ops").delete()
    Schedule.objects.filter(name=DRAIN_SCHEDULE).update(minutes=30, func="hub.tasks.something_else")
    call_command("migrate", interactive=False, verbosity=0)
    assert Group.objects.filter(name="ops").count() == 1
    drain = Schedule.objects.get(name=DRAIN_SCHEDULE)
    assert (drain.func, drain.minutes) == ("hub.tasks.deliveries_drain", 1)
