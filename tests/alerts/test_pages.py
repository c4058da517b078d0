"""The alert pages: every role reads; ops acknowledge and mute; admins write rules as sentences and
set up channels, whose secrets are never shown again."""

import pytest
from django.urls import reverse

from hub.alerts.models import Alert, AlertRule, Channel
from hub.models import AuditEntry
from tests.alerts.helpers import SIGNING_SECRET, evaluate, flows_with_every_kind, minutes, only_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def firing(flow, channels):
    """An alert that resolved earlier, and one firing now (the flow went quiet)."""
    only_rule(flow, "silence", window_minutes=10)
    minutes(11)
    evaluate()
    old = Alert.objects.get()
    Alert.objects.filter(pk=old.pk).update(resolved_at=old.started_at, summary="it was fine again")
    evaluate()
    return Alert.objects.firing().get()


def as_user(client, personas, role: str):
    client.force_login(personas[role])
    return client


PAGES = ["alerts-list", "alerts-rules", "alerts-channels"]


@pytest.mark.parametrize("role", ["admin", "ops", "auditor"])
def test_every_role_reads_the_alert_pages(client, personas, firing, role):
    as_user(client, personas, role)
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 200
    assert client.get(reverse("alerts-detail", args=[firing.pk])).status_code == 200
    assert b'href="/alerts/"' in client.get("/").content  # in the navigation


def test_outsiders_are_refused_and_strangers_sent_to_sign_in(client, personas, firing):
    assert client.get(reverse("alerts-list")).status_code == 302
    as_user(client, personas, "outsider")
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 403


def test_the_alerts_page_puts_firing_first_with_buttons_for_ops_only(client, personas, firing):
    page = as_user(client, personas, "ops").get(reverse("alerts-list")).content.decode()
    assert (
        page.index("Firing now")
        < page.index("gets no events for more than 10 minutes")
        < page.index("Recently resolved")
        < page.index("it was fine again")
    )
    assert "Acknowledge</button>" in page and "Mute for</button>" in page
    auditor_page = as_user(client, personas, "auditor").get(reverse("alerts-list")).content.decode()
    assert "Acknowledge</button>" not in auditor_page and "Mute for</button>" not in auditor_page


def test_the_list_refreshes_itself_as_a_partial(client, personas, firing):
    as_user(client, personas, "auditor")
    response = client.get(reverse("alerts-list"), headers={"HX-Request": "true", "HX-Target": "alert-list"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="alert-list"') and "<html" not in body


def test_ops_acknowledge_and_mute_and_it_is_audited(client, personas, firing):
    as_user(client, personas, "ops")
    response = client.post(reverse("alerts-acknowledge", args=[firing.pk]), {"next": "list"})
    assert response.status_code == 302 and response["Location"] == reverse("alerts-list")
    response = client.post(reverse("alerts-mute", args=[firing.pk]), {"minutes": "240"})
    assert response["Location"] == reverse("alerts-detail", args=[firing.pk])
    firing.refresh_from_db()
    assert firing.acknowledged_by == personas["ops"] and firing.rule.muted_until is not None
    page = client.get(reverse("alerts-detail", args=[firing.pk])).content.decode()
    assert "Acknowledged by oscar-ops" in page and "Muted until" in page and "muted for 4 hours" in page
    verbs = set(AuditEntry.objects.filter(actor=personas["ops"]).values_list("verb", flat=True))
    assert {"acknowledge", "mute"} <= verbs
    client.post(reverse("alerts-unmute", args=[firing.pk]))
    assert AlertRule.objects.get(pk=firing.rule_id).muted_until is None


def test_acknowledging_twice_says_who_did_it_first(client, personas, firing):
    as_user(client, personas, "ops").post(reverse("alerts-acknowledge", args=[firing.pk]))
    response = as_user(client, personas, "admin").post(
        reverse("alerts-acknowledge", args=[firing.pk]), follow=True
    )
    assert "Not acknowledged: oscar-ops acknowledged it already." in response.content.decode()


def test_auditors_cannot_act_and_ops_cannot_configure(client, personas, firing, flow):
    as_user(client, personas, "auditor")
    assert client.post(reverse("alerts-acknowledge", args=[firing.pk])).status_code == 403
    as_user(client, personas, "ops")
    rule = firing.rule
    assert client.get(reverse("alerts-rule-add") + f"?kind=silence&flow={flow.pk}").status_code == 403
    assert client.post(reverse("alerts-rule-edit", args=[rule.pk]), {}).status_code == 403
    assert client.post(reverse("alerts-rule-delete", args=[rule.pk])).status_code == 403
    channel = Channel.objects.first()
    assert client.post(reverse("alerts-channel-test", args=[channel.pk])).status_code == 403
    assert client.get(reverse("alerts-channel-add", args=["email"])).status_code == 403


def test_the_rule_form_reads_as_a_sentence_and_adds_the_rule(admin_client, flow):
    url = reverse("alerts-rule-add") + f"?kind=error_rate&flow={flow.pk}"
    page = admin_client.get(url).content.decode()
    sentence = page[page.index('id="rule-sentence"') : page.index("</p>", page.index('id="rule-sentence"'))]
    for words in ("Tell me when", "fails more than", 'name="threshold"', "%", "of its tries over", "minutes"):
        assert words in sentence
    response = admin_client.post(
        url,
        {
            "flow": flow.pk,
            "threshold": "35",
            "window_minutes": "30",
            "renotify_minutes": "0",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    rule = AlertRule.objects.filter(flow=flow, kind="error_rate").latest("id")
    assert (
        rule.describe() == "fails more than 35% of its tries over 30 minutes" and rule.renotify_minutes == 0
    )
    entry = AuditEntry.objects.get(verb="create", target_type="alertrule")
    assert entry.target_label == "Deals to invoices: fails more than 35% of its tries over 30 minutes"


def test_the_rule_form_refuses_numbers_it_cannot_use(admin_client, flow):
    url = reverse("alerts-rule-add") + f"?kind=error_rate&flow={flow.pk}"
    response = admin_client.post(
        url, {"flow": flow.pk, "threshold": "150", "window_minutes": "", "renotify_minutes": "60"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"threshold", "window_minutes"}
    assert "Please correct the marked numbers." in response.content.decode()


def test_a_silence_rule_switches_between_learned_and_a_fixed_time(admin_client, flow):
    rule = AlertRule.objects.get(flow=flow, kind="silence")
    url = reverse("alerts-rule-edit", args=[rule.pk])
    fixed = {
        "window_minutes_mode": "fixed",
        "window_minutes": "45",
        "renotify_minutes": "60",
        "enabled": "on",
    }
    admin_client.post(url, fixed)
    rule.refresh_from_db()
    assert rule.describe() == "gets no events for more than 45 minutes"
    response = admin_client.post(url, {**fixed, "window_minutes_mode": "fixed", "window_minutes": ""})
    assert "Enter the number of minutes" in response.content.decode()
    admin_client.post(url, {**fixed, "window_minutes_mode": "learned", "window_minutes": ""})
    rule.refresh_from_db()
    assert rule.window_minutes is None
    diff = AuditEntry.objects.filter(verb="update", target_type="alertrule").order_by("at", "id").last().diff
    assert diff == {"window_minutes": [45, None]}


def test_the_rules_page_shows_each_flow_s_rules_in_plain_words_with_their_reading(admin_client, flow):
    page = admin_client.get(reverse("alerts-rules")).content.decode()
    assert "Deals to invoices" in page
    assert "fails more than 20% of its tries over 15 minutes" in page
    assert "0 of 0 tries failed in the last 15 minutes: too few to judge" in page
    assert "still learning its usual volume" in page


def test_an_admin_adds_a_webhook_whose_secrets_are_never_shown_again(admin_client, receiver):
    response = admin_client.post(
        reverse("alerts-channel-add", args=["webhook"]),
        {"name": "Chat", "url": receiver.url, "signing_secret": SIGNING_SECRET, "enabled": "on"},
    )
    assert response.status_code == 302
    channel = Channel.objects.get(name="Chat")
    for url in (
        reverse("alerts-channels"),
        reverse("alerts-channel-edit", args=[channel.pk]),
        reverse("alerts-list"),
    ):
        page = admin_client.get(url).content.decode()
        assert "T0KEN" not in page and SIGNING_SECRET not in page
    channels_page = admin_client.get(reverse("alerts-channels")).content.decode()
    assert f"http://127.0.0.1:{receiver.server.server_port}/…" in channels_page
    edit_page = admin_client.get(reverse("alerts-channel-edit", args=[channel.pk])).content.decode()
    assert edit_page.count("Stored encrypted") == 2


def test_the_webhook_form_refuses_a_url_it_cannot_post_to(admin_client):
    response = admin_client.post(
        reverse("alerts-channel-add", args=["webhook"]), {"name": "Chat", "url": "ftp://example.com/x"}
    )
    assert response.context["form"].errors == {"url": ["Enter an http:// or https:// URL."]}
    response = admin_client.post(
        reverse("alerts-channel-add", args=["email"]), {"name": "Mail", "to": "ops, b@x.io"}
    )
    assert response.context["form"].errors == {"to": ["“ops” is not an email address."]}


def test_send_test_answers_the_channel_row_with_its_result(admin_client, channels, receiver):
    receiver.status = 503
    email, webhook = channels
    response = admin_client.post(
        reverse("alerts-channel-test", args=[webhook.pk]), headers={"HX-Request": "true"}
    )
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="channel-{webhook.pk}"')
    assert "Failed" in row and "127.0.0.1 answered HTTP 503" in row
    response = admin_client.post(reverse("alerts-channel-test", args=[email.pk]), follow=True)
    assert "Test sent through Ops email: emailed ops@example.com." in response.content.decode()


def test_a_failing_channel_shows_on_the_alerts_page(client, personas, flow, channels, receiver):
    receiver.status = 500
    only_rule(flow, "silence", window_minutes=10)
    minutes(11)
    evaluate()
    page = as_user(client, personas, "auditor").get(reverse("alerts-list")).content.decode()
    assert "Channel “Ops chat” is failing." in page and "127.0.0.1 answered HTTP 500" in page


def test_deleting_a_rule_and_a_channel_is_audited(admin_client, flow, channels):
    rule = AlertRule.objects.filter(flow=flow).first()
    admin_client.post(reverse("alerts-rule-delete", args=[rule.pk]))
    admin_client.post(reverse("alerts-channel-delete", args=[channels[0].pk]))
    assert (
        not AlertRule.objects.filter(pk=rule.pk).exists()
        and not Channel.objects.filter(name="Ops email").exists()
    )
    deleted = set(AuditEntry.objects.filter(verb="delete").values_list("target_type", flat=True))
    assert deleted == {"alertrule", "channel"}


def test_the_alert_pages_read_in_a_fixed_number_of_queries(
    client, personas, flow, django_assert_max_num_queries
):
    as_user(client, personas, "admin")
    flows_with_every_kind(1, flow)
    evaluate()

    def queries(name: str) -> int:
        with django_assert_max_num_queries(40) as counted:
            assert client.get(reverse(name)).status_code == 200
        return len(counted.captured_queries)

    few = {name: queries(name) for name in PAGES}
    flows_with_every_kind(5, flow, start=1)
    minutes(1)
    evaluate()
    assert {name: queries(name) for name in PAGES} == few
