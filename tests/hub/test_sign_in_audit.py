"""Sign-ins, refused sign-ins and changes made in the Django admin are in the audit log."""

import pytest
from django.test import Client
from django.urls import reverse

from hub.models import AuditEntry
from hub.services.audit import audit_verify
from tests.factories import PASSWORD, SystemFactory

pytestmark = pytest.mark.django_db


def sign_in(username: str, password: str) -> int:
    response = Client(REMOTE_ADDR="192.0.2.7").post(
        reverse("login"), {"username": username, "password": password}
    )
    return response.status_code


def test_it_records_a_sign_in(personas):
    assert sign_in("oscar-ops", PASSWORD) == 302
    entry = AuditEntry.objects.get(verb="sign_in")
    assert (entry.actor, entry.actor_name, entry.target_type, entry.target_label) == (
        personas["ops"],
        "oscar-ops",
        "user",
        "oscar-ops",
    )
    assert entry.diff == {"address": "192.0.2.7"}


def test_it_records_a_refused_sign_in_without_the_password(personas):
    assert sign_in("oscar-ops", "wrong-password") == 200
    assert sign_in("nobody-here", "wrong-password") == 200
    refused = list(AuditEntry.objects.filter(verb="sign_in_failed").order_by("seq"))
    assert [(e.actor, e.actor_name, e.target_id, e.target_label) for e in refused] == [
        (None, "", str(personas["ops"].pk), "oscar-ops"),
        (None, "", "", "nobody-here"),
    ]
    assert refused[0].diff == {"username": "oscar-ops", "address": "192.0.2.7"}
    assert "wrong-password" not in str(list(AuditEntry.objects.values()))
    assert not AuditEntry.objects.filter(verb="sign_in").exists()
    assert audit_verify().ok


def test_it_records_a_change_made_in_the_django_admin(admin_client, admin_user):
    system = SystemFactory(name="CRM")
    response = admin_client.post(reverse("admin:connectors_system_delete", args=[system.pk]), {"post": "yes"})
    assert response.status_code == 302
    entry = AuditEntry.objects.get(verb="admin_delete")
    assert (entry.actor, entry.target_type, entry.target_id, entry.target_label) == (
        admin_user,
        "system",
        str(system.pk),
        "CRM",
    )


def test_the_django_admin_deletes_one_object_at_a_time_so_each_is_audited(admin_client):
    """Its bulk delete logs with bulk_create, which the audit trail cannot hear: it is switched off."""
    systems = [SystemFactory(name="CRM"), SystemFactory(name="Books")]
    changelist = reverse("admin:connectors_system_changelist")
    assert "delete_selected" not in admin_client.get(changelist).text
    admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [s.pk for s in systems], "post": "yes"}
    )
    assert len(type(systems[0]).objects.filter(pk__in=[s.pk for s in systems])) == 2
