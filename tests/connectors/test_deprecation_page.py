"""The system page says in plain words what the system's answers announced about its own end: what
is deprecated, since when, the switch-off date and how far off it is, the vendor's link and words."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connectors.models import ApiDeprecation
from tests.deprecating_target import DeprecatingTarget
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def notice(system, **fields) -> ApiDeprecation:
    seen = {"first_seen_at": NOW - timedelta(days=2), "last_seen_at": NOW, "times_seen": 12}
    return ApiDeprecation.objects.create(
        system=system, method="POST", path="/v1/contacts", **{**seen, **fields}
    )


def page(client, user, system) -> str:
    client.force_login(user)
    response = client.get(reverse("connectors-detail", args=[system.pk]))
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def test_it_words_a_deprecation_with_a_sunset():
    system = SystemFactory(name="Old CRM")
    words = notice(
        system,
        deprecated=True,
        deprecated_since=datetime(2025, 12, 1, tzinfo=UTC),
        sunset_at=datetime(2027, 3, 1, tzinfo=UTC),
    ).in_words(NOW)
    assert words == (
        "Old CRM says POST /v1/contacts is deprecated (since 2025-12-01) "
        "and will be switched off on 2027-03-01, 84 days from now."
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"deprecated": True}, "Old CRM says POST /v1/contacts is deprecated; it has not said when"),
        (
            {"sunset_at": NOW + timedelta(days=1, hours=1)},
            "Old CRM says POST /v1/contacts will be switched off on 2026-12-08, 1 day from now.",
        ),
        ({"sunset_at": NOW - timedelta(days=3)}, "was to be switched off on 2026-12-04, 3 days ago."),
        ({"warning": "use v2"}, "Old CRM sends a warning about POST /v1/contacts."),
    ],
)
def test_it_words_each_kind_of_notice(fields, expected):
    assert expected in notice(SystemFactory(name="Old CRM"), **fields).in_words(NOW)


@pytest.mark.parametrize("role", ["admin", "ops", "auditor"])
def test_the_system_page_shows_it_to_every_role(client, personas, role):
    system = SystemFactory(name="Old CRM")
    notice(
        system,
        deprecated=True,
        sunset_at=timezone.now() + timedelta(days=20),
        link="https://developer.example.com/v2-migration",
        warning="/v1/contacts is deprecated, use /v2/contacts",
    )
    text = page(client, personas[role], system)
    assert "Old CRM is retiring part of its API." in text
    assert "Old CRM says POST /v1/contacts is deprecated and will be switched off on" in text
    assert "20 days from now" in text
    assert '<span class="badge bad">soon</span>' in text
    assert "It adds: “/v1/contacts is deprecated, use /v2/contacts”." in text
    assert 'href="https://developer.example.com/v2-migration"' in text
    assert "in 12 answers" in text


def test_a_system_that_announced_nothing_shows_no_notice(client, personas):
    system = SystemFactory(name="Fine CRM")
    assert "retiring" not in page(client, personas["auditor"], system)


def test_an_outsider_does_not_see_it(client, personas):
    system = SystemFactory(name="Old CRM")
    notice(system, deprecated=True)
    client.force_login(personas["outsider"])
    response = client.get(reverse("connectors-detail", args=[system.pk]))
    assert response.status_code in (302, 403)


def test_testing_the_connection_tells_the_admin_at_once_and_keeps_it(client, personas):
    headers = {"Sunset": "Mon, 01 Mar 2027 00:00:00 GMT", "Warning": '299 - "use /v2"'}
    with DeprecatingTarget(headers) as target:
        system = SystemFactory(name="Old CRM", base_url=target.url)
        client.force_login(personas["ops"])
        response = client.post(
            reverse("connectors-test", args=[system.pk]),
            {"path": "/v1/contacts"},
            headers={"HX-Request": "true"},
        )
    text = " ".join(response.content.decode().split())
    assert response.status_code == 200
    assert "Old CRM says GET /v1/contacts will be switched off on 2027-03-01" in text
    assert "It adds: “use /v2”." in text
    kept = ApiDeprecation.objects.get(system=system)
    assert (kept.method, kept.path, kept.warning) == ("GET", "/v1/contacts", "use /v2")
