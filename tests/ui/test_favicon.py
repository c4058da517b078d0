"""The hub's icon: linked from every page and answered at /favicon.ico, so no browser logs a 404."""

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_every_page_links_the_icon(personas):
    client = Client()
    assert (
        'rel="icon" href="/static/hub/favicon.svg" type="image/svg+xml"'
        in client.get(reverse("login")).content.decode()
    )
    client.force_login(personas["auditor"])
    assert 'href="/static/hub/favicon.svg"' in client.get(reverse("home")).content.decode()


def test_favicon_ico_leads_to_the_svg_for_anyone():
    client = Client()
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/hub/favicon.svg"
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content)
