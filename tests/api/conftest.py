"""What the API tests share: a client per persona, and a look at the audit log."""

import pytest
from rest_framework.test import APIClient

from hub.models import AuditEntry

ROLES = ("admin", "ops", "auditor", "publisher", "outsider")


@pytest.fixture
def as_(personas):
    """as_("ops") is an API client signed in as the ops persona; as_(None) is signed in as nobody."""

    def client(persona: str | None) -> APIClient:
        api = APIClient()
        if persona is not None:
            api.force_authenticate(personas[persona])
        return api

    return client


def last_audit(verb: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(verb=verb).order_by("-seq").first()
    assert entry is not None, f"no audit entry {verb!r}"
    return entry


def statuses(as_, method: str, url: str, body=None) -> dict[str, int]:
    """The status each persona (and nobody) gets for one request."""
    found = {}
    for persona in (None, *ROLES):
        response = getattr(as_(persona), method)(url, body, format="json")
        found[persona or "anonymous"] = response.status_code
    return found
