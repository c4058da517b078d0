"""The engine's front door answers vendor handshakes as the web server's webhook view does: Slack's
signed url_verification and Meta's GET verification get their challenge back, and neither is stored."""

import json
import time

import pytest
import requests

from connectors.signatures import signed_headers
from hub.models import Event
from tests.hub.test_webhook_handshakes import SLACK_CHALLENGE, system_from

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_engine_answers_slacks_url_verification_and_stores_nothing(start_engine):
    slack = system_from("slack")
    engine = start_engine()
    body = json.dumps(SLACK_CHALLENGE).encode()
    headers = {"Content-Type": "application/json", **signed_headers(slack, body, timestamp=int(time.time()))}
    answer = requests.post(f"{engine.url}/hooks/{slack.slug}/", data=body, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.text == SLACK_CHALLENGE["challenge"]
    assert answer.headers["Content-Type"].startswith("text/plain")
    unsigned = requests.post(f"{engine.url}/hooks/{slack.slug}/", data=body, timeout=30)
    assert unsigned.status_code == 401
    assert not Event.objects.exists()


def test_the_engine_answers_metas_get_verification(start_engine):
    whatsapp = system_from("whatsapp-business")
    engine = start_engine()
    url = f"{engine.url}/hooks/{whatsapp.slug}/"
    answer = requests.get(url, params={"hub.mode": "subscribe", "hub.challenge": "1158201444"}, timeout=30)
    assert answer.status_code == 200 and answer.text == "1158201444"
    other = requests.get(url, params={"hub.mode": "nothing"}, timeout=30)
    assert other.status_code == 405 and other.headers["Allow"] == "POST" and "POST" in other.json()["error"]
    assert not Event.objects.exists()
