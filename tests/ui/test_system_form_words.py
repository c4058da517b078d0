"""The register-a-system form in plain words: jargon under "Advanced", defaults by kind of system."""

import json

import pytest
from django.urls import reverse

from connectors.kinds import KIND_DEFAULTS, kind_defaults
from connectors.models import System, SystemKind
from hub.ui.forms.systems import SystemForm
from tests.factories import SystemFactory
from tests.ui.test_systems import form_data

pytestmark = pytest.mark.django_db


def kind_table(page: str) -> dict:
    start = page.index('<script id="kind-defaults" type="application/json">') + len(
        '<script id="kind-defaults" type="application/json">'
    )
    return json.loads(page[start : page.index("</script>", start)])


@pytest.mark.parametrize("kind", [str(kind) for kind in SystemKind])
def test_every_kind_defaults_are_values_the_form_accepts(kind):
    data = form_data(kind=kind, name=f"A {kind} system", **kind_defaults(kind))
    data.update(token="t0ken", username="ann", password="pw", client_id="id", client_secret="sec")
    form = SystemForm(data)
    assert form.is_valid(), form.errors
    for name, value in KIND_DEFAULTS[kind].items():
        assert str(getattr(form.instance, name)) == str(value)


def test_the_new_system_page_carries_the_defaults_and_keeps_jargon_under_advanced(client, personas):
    client.force_login(personas["admin"])
    page = client.get(reverse("connectors-add")).content.decode()
    table = kind_table(page)
    assert table["payments"]["signature_scheme"] == "timestamped_hmac_sha256"
    assert table["hr"]["auth_scheme"] == "bearer" and table["other"] == {}
    assert "Does the system sign its webhooks?" in page
    assert "Yes, with a signing secret (most systems)" in page
    assert "HMAC-SHA256 of the body" not in page and "Signature encoding" not in page
    advanced = page[
        page.index('id="webhook-advanced"') : page.index("</details>", page.index('id="webhook-advanced"'))
    ]
    script = page[page.index('<script id="kind-defaults"') :]
    outside = page.replace(advanced, "").replace(script, "")
    for jargon in ('name="signature_encoding"', 'name="signature_header"', 'name="event_type_path"', "header:X-Event-Type"):  # fmt: skip
        assert jargon in advanced
        assert jargon not in outside
    assert 'id="webhook-advanced" open' not in page  # closed until needed


def test_an_error_under_advanced_opens_it(client, personas):
    client.force_login(personas["admin"])
    page = client.post(reverse("connectors-add"), form_data(event_type_path="not a path!")).content.decode()
    assert 'id="webhook-advanced" open' in page and 'id="where-advanced" open' not in page
    assert not System.objects.exists()


def test_editing_a_system_keeps_its_own_settings(client, personas):
    system = SystemFactory(name="Shop", kind=SystemKind.ECOMMERCE)
    client.force_login(personas["admin"])
    page = client.get(reverse("connectors-edit", args=[system.pk])).content.decode()
    assert 'id="kind-defaults"' not in page and "data-kind-defaults" not in page
