"""The specification over the API and on the import page: export, preview (a dry run) and apply,
admins only; the page shows what would be added, changed and removed before applying."""

import pytest
import yaml
from django.urls import reverse

from hub.demo import SYSTEMS, demo_seed
from hub.models import Flow
from hub.services.specification import spec_export

pytestmark = pytest.mark.django_db
EXPORT, PREVIEW, APPLY = (
    "/api/v1/specification/",
    "/api/v1/specification/preview/",
    "/api/v1/specification/apply/",
)


@pytest.fixture
def demo(personas):
    demo_seed(actor=personas["admin"], urls={slug: f"http://127.0.0.1:9/{slug}" for slug in SYSTEMS})
    return personas


def one_flow_less() -> tuple[str, str]:
    doc = yaml.safe_load(spec_export())
    gone = doc["flows"].pop()["name"]
    doc["flows"][0]["description"] = "Told by the document"
    return yaml.safe_dump(doc), gone


@pytest.mark.parametrize("who", ["ops", "auditor", "publisher", "outsider"])
def test_only_admins_reach_the_specification_endpoints(client, demo, who):
    client.force_login(demo[who])
    assert client.get(EXPORT).status_code == 403
    for url in (PREVIEW, APPLY):
        answer = client.post(url, {"document": "format: 1"}, content_type="application/json")
        assert answer.status_code == 403 and "error" in answer.json()


def test_an_admin_exports_the_document(client, demo):
    client.force_login(demo["admin"])
    answer = client.get(EXPORT)
    assert answer.status_code == 200 and answer["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(answer.content)["systems"][0]["slug"] == "accounting"


def test_a_preview_changes_nothing_and_apply_applies_with_removals(client, demo):
    client.force_login(demo["admin"])
    text, gone = one_flow_less()
    body = {"document": text, "remove_unlisted": True}
    preview = client.post(PREVIEW, body, content_type="application/json")
    assert preview.status_code == 200, preview.content
    report = preview.json()
    assert report["dry_run"] and not report["applied"]
    assert [(c["section"], c["name"]) for c in report["removed"]] == [("flow", gone)]
    [changed] = report["changed"]
    assert changed["values"][0]["setting"] == "description"
    assert changed["values"][0]["after"] == "Told by the document"
    assert Flow.objects.filter(name=gone).exists()
    applied = client.post(APPLY, body, content_type="application/json").json()
    assert applied["applied"] and not Flow.objects.filter(name=gone).exists()
    again = client.post(APPLY, body, content_type="application/json").json()
    assert again["summary"] == "No changes: the hub already matches this document." and not again["applied"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "some fields are not valid"),
        ({"document": 7}, "some fields are not valid"),
        ({"document": "flows: {}"}, "1 problems found; nothing was changed."),
        ({"document": "flows: [{name: x}]"}, "problems found; nothing was changed."),
    ],
)
def test_a_bad_document_is_a_400_that_says_where(client, demo, body, message):
    client.force_login(demo["admin"])
    for url in (PREVIEW, APPLY):
        answer = client.post(url, body, content_type="application/json")
        assert answer.status_code == 400 and message in answer.json()["error"]


def test_the_import_page_previews_then_applies_with_the_removal_box(client, demo):
    client.force_login(demo["admin"])
    text, gone = one_flow_less()
    url = reverse("flows-spec-import")
    page = client.get(url).content.decode()
    assert 'name="remove_unlisted"' in page and "checked" not in page.split('name="remove_unlisted"')[1][:40]
    kept = client.post(url, {"text": text, "action": "preview"}).content.decode()
    assert 'id="spec-changed"' in kept and 'id="spec-removed"' not in kept
    preview = client.post(url, {"text": text, "action": "preview", "remove_unlisted": "on"}).content.decode()
    assert 'id="spec-removed"' in preview and f"Flow “{gone}”" in preview
    assert "→ <strong>Told by the document</strong>" in preview
    assert '<input type="hidden" name="remove_unlisted" value="on">' in preview
    assert Flow.objects.filter(name=gone).exists()
    applied = client.post(url, {"text": text, "action": "apply", "remove_unlisted": "on"})
    assert applied.status_code == 302 and not Flow.objects.filter(name=gone).exists()
    again = client.post(url, {"text": text, "action": "preview"}).content.decode()
    assert "No changes" in again
