import pytest
from django.core.management import call_command

from hub.metrics.recording import worker_heartbeat


@pytest.mark.django_db
def test_it_publishes_a_valid_openapi_schema(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/events/" in text and "/api/v1/dead-letters/{id}/replay/" in text


@pytest.mark.django_db
def test_it_answers_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    worker_heartbeat("test-host:schema")  # a worker drained just now (tests/metrics: each missing)
    assert client.get("/readyz").json()["status"] == "ok"


@pytest.mark.django_db
def test_it_serves_the_api_docs_without_any_cdn(client, personas):
    client.force_login(personas["admin"])
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html


@pytest.mark.django_db
def test_it_shows_the_api_schema_only_to_signed_in_users(client):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)
