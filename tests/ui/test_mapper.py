"""The visual field mapper's page, its preview and save endpoints, the history and restoring."""

import json

import pytest
from django.urls import reverse

from hub.models import AuditEntry, Event
from mappings.models import MappingVersion
from tests.factories import crm_and_books, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db

V1_RULES = [{"target": "currency", "source": "currency"}]


@pytest.fixture
def flow(personas):
    crm, books = crm_and_books()
    deal = model_with_fields(
        crm,
        "Deal",
        "/deals",
        "id! amount:number currency customer.email",
        sample={"id": "deal_1", "amount": 12.5, "currency": "EUR", "customer": {"email": "Ann@Example.com"}},
    )
    invoice = model_with_fields(books, "Invoice", "/invoices", "number! email! total_minor:integer currency")
    return flow_with_mapping(
        source_model=deal,
        target_model=invoice,
        rules=V1_RULES,
        actor=personas["admin"],
        name="Deals to invoices",
    )


@pytest.fixture
def mapping(flow):
    return flow.mapping


def as_user(client, user):
    client.force_login(user)
    return client


def post_json(client, url, body, **extra):
    return client.post(
        url, json.dumps(body) if not isinstance(body, str) else body, content_type="application/json", **extra
    )


def page_config(response) -> dict:
    text = response.text
    start = text.index('<script id="mapper-config" type="application/json">') + len(
        '<script id="mapper-config" type="application/json">'
    )
    return json.loads(text[start : text.index("</script>", start)])


# --- who may do what ------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "ops", "auditor"])
def test_it_shows_the_mapper_to_every_role_but_only_admins_can_edit(client, personas, persona, mapping):
    response = as_user(client, personas[persona]).get(reverse("mappings-mapper", args=[mapping.pk]))
    assert response.status_code == 200
    config = page_config(response)
    assert config["can_edit"] is (persona == "admin")
    assert (config["urls"]["save"] is not None) is (persona == "admin")
    assert ('id="save-button"' in response.text) is (persona == "admin")


def test_it_refuses_outsiders_and_sends_anonymous_visitors_to_sign_in(client, personas, mapping):
    url = reverse("mappings-mapper", args=[mapping.pk])
    assert client.get(url).status_code == 302
    assert post_json(client, reverse("mappings-preview", args=[mapping.pk]), {"rules": []}).status_code == 302
    c = as_user(client, personas["outsider"])
    assert c.get(url).status_code == 403
    assert post_json(c, reverse("mappings-preview", args=[mapping.pk]), {"rules": []}).status_code == 403


@pytest.mark.parametrize("persona", ["ops", "auditor"])
def test_it_refuses_saving_and_restoring_to_readers(client, personas, persona, mapping):
    c = as_user(client, personas[persona])
    rules = [*V1_RULES, {"target": "number", "source": "id"}]
    assert post_json(c, reverse("mappings-save", args=[mapping.pk]), {"rules": rules}).status_code == 403
    assert c.post(reverse("mappings-restore", args=[mapping.pk, 1])).status_code == 403
    assert MappingVersion.objects.filter(mapping=mapping).count() == 1
    # Trying the mapping changes nothing, so readers may.
    assert post_json(c, reverse("mappings-preview", args=[mapping.pk]), {"rules": rules}).status_code == 200


# --- the page -------------------------------------------------------------------------------------


def test_it_gives_the_page_fields_rules_transforms_events_and_flows(client, personas, flow, mapping):
    crm = flow.source_system
    for number in range(25):
        Event.objects.create(
            system=crm,
            event_type="deal.won",
            idempotency_key=f"k{number}",
            payload={"type": "deal.won", "data": {"id": f"deal_{number}"}},
        )
    Event.objects.create(
        system=flow.target_system, event_type="invoice.paid", idempotency_key="other", payload={}
    )
    response = as_user(client, personas["admin"]).get(reverse("mappings-mapper", args=[mapping.pk]))
    config = page_config(response)
    assert config["rules"] == V1_RULES
    assert config["version"] == 1
    assert [f["path"] for f in config["source"]["fields"]] == ["id", "amount", "currency", "customer.email"]
    assert {f["path"]: f["required"] for f in config["target"]["fields"]}["email"] is True
    lower = next(t for t in config["transforms"] if t["name"] == "lower")
    assert lower["label"] == "Lower case"
    assert len(config["events"]) == 20  # the newest 20 of the source system only
    assert all(e["label"].startswith("deal.won · ") for e in config["events"])
    assert "Deals to invoices" in response.text


def test_it_renders_the_mapper_with_a_fixed_number_of_queries(
    client, personas, flow, mapping, django_assert_max_num_queries
):
    for number in range(30):
        Event.objects.create(
            system=flow.source_system,
            event_type="deal.won",
            idempotency_key=f"k{number}",
            payload={"data": {}},
        )
    c = as_user(client, personas["admin"])
    with django_assert_max_num_queries(8):
        assert c.get(reverse("mappings-mapper", args=[mapping.pk])).status_code == 200


# --- preview --------------------------------------------------------------------------------------


def test_it_previews_rules_on_the_sample_with_each_rules_value(client, personas, mapping):
    rules = [
        {"target": "email", "source": "customer.email", "transforms": [{"name": "lower"}]},
        {
            "target": "total_minor",
            "source": "amount",
            "transforms": [{"name": "money_to_minor", "options": {"currency": "EUR"}}],
        },
        {"target": "number", "constant": "INV-1"},
    ]
    answer = post_json(
        as_user(client, personas["auditor"]),
        reverse("mappings-preview", args=[mapping.pk]),
        {"rules": rules, "record_source": "sample"},
    ).json()
    assert answer["output"] == {"email": "ann@example.com", "total_minor": 1250, "number": "INV-1"}
    assert answer["values"] == ["ann@example.com", 1250, "INV-1"]
    assert answer["errors"] == []
    assert answer["source_values"]["customer.email"] == "Ann@Example.com"


def test_it_returns_each_rules_error_for_showing_beside_it(client, personas, mapping):
    rules = [
        {"target": "email", "source": "customer.email"},
        {
            "target": "total_minor",
            "source": "currency",
            "transforms": [{"name": "cast", "options": {"to": "integer"}}],
        },
        {"target": "number", "source": "id", "transforms": [{"name": "lowr"}]},
        {"target": "currency", "source": "currency", "ui_state": "open"},
    ]
    answer = post_json(
        as_user(client, personas["admin"]), reverse("mappings-preview", args=[mapping.pk]), {"rules": rules}
    ).json()
    by_index = {error["index"]: error for error in answer["errors"]}
    assert answer["output"] == {"email": "Ann@Example.com"}
    assert set(by_index) == {1, 2, 3}
    assert by_index[1]["problem"] == 'cannot convert "EUR" to a number'
    assert by_index[1]["message"].startswith("Rule 2 (total_minor): ")
    assert 'unknown transform "lowr" (did you mean "lower"?)' in by_index[2]["problem"]
    assert 'unknown setting "ui_state"' in by_index[3]["problem"]


def test_it_previews_on_a_real_event_or_a_pasted_record(client, personas, flow, mapping):
    event = Event.objects.create(
        system=flow.source_system,
        event_type="deal.won",
        idempotency_key="e1",
        payload={"type": "deal.won", "data": {"id": "deal_9", "currency": "usd"}},
    )
    c = as_user(client, personas["admin"])
    url = reverse("mappings-preview", args=[mapping.pk])
    rules = [{"target": "currency", "source": "currency", "transforms": [{"name": "upper"}]}]
    from_event = post_json(
        c, url, {"rules": rules, "record_source": "event", "event_id": str(event.pk)}
    ).json()
    assert from_event["output"] == {"currency": "USD"}
    assert from_event["record"] == {"id": "deal_9", "currency": "usd"}
    pasted = post_json(
        c, url, {"rules": rules, "record_source": "paste", "record_text": '{"currency": "gbp"}'}
    ).json()
    assert pasted["output"] == {"currency": "GBP"}


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {"record_source": "paste", "record_text": '{"currency": "gbp",}'},
            "This is not valid JSON: line 1 column 20: Expecting property name enclosed in double quotes",
        ),
        ({"record_source": "paste", "record_text": "  "}, "Paste a record in JSON"),
        (
            {"record_source": "paste", "record_text": '{"amount": NaN}'},
            "line 1 column 12: NaN is not a JSON value",
        ),
        ({"record_source": "event", "event_id": "not-a-uuid"}, "Choose an event from the list."),
        (
            {"record_source": "event", "event_id": "00000000-0000-0000-0000-000000000000"},
            "is not one of CRM's events",
        ),
    ],
)
def test_it_explains_a_record_it_cannot_preview_on(client, personas, mapping, body, message):
    response = post_json(
        as_user(client, personas["admin"]),
        reverse("mappings-preview", args=[mapping.pk]),
        {"rules": V1_RULES, **body},
    )
    assert response.status_code == 200
    assert message in response.json()["record_error"]


def test_it_never_fails_on_garbage_sent_to_the_preview(client, personas, mapping):
    c = as_user(client, personas["admin"])
    url = reverse("mappings-preview", args=[mapping.pk])
    assert post_json(c, url, "{not json").status_code == 400
    assert "must be JSON" in post_json(c, url, "{not json").json()["message"]
    assert post_json(c, url, "[1, 2]").status_code == 400
    odd = post_json(c, url, {"rules": "everything", "record_source": "paste", "record_text": "[1]"}).json()
    assert odd["errors"][0]["message"] == "The rules must be a list."
    not_object = post_json(c, url, {"rules": V1_RULES, "record_source": "paste", "record_text": "[1]"}).json()
    assert not_object["errors"][0]["message"] == "The record must be a JSON object."
    assert c.get(url).status_code == 405


def test_it_says_when_the_source_model_has_no_sample(client, personas, mapping):
    mapping.source_model.sample = None
    mapping.source_model.save()
    answer = post_json(
        as_user(client, personas["admin"]),
        reverse("mappings-preview", args=[mapping.pk]),
        {"rules": V1_RULES, "record_source": "sample"},
    ).json()
    assert answer["record_error"] == "Deal has no sample record: pick an event or paste a record."


# --- saving, history, restoring -------------------------------------------------------------------


def test_it_saves_version_2_with_a_diff_and_an_audit_entry(client, personas, mapping):
    rules = [
        {"target": "currency", "source": "currency", "transforms": [{"name": "upper"}]},
        {"target": "email", "source": "customer.email", "transforms": [{"name": "lower"}]},
    ]
    response = post_json(
        as_user(client, personas["admin"]),
        reverse("mappings-save", args=[mapping.pk]),
        {"rules": rules, "comment": "upper-case currency", "base_version": 1},
    )
    assert response.status_code == 200
    assert response.json() == {
        "saved": True,
        "version": 2,
        "message": "Saved as version 2.",
        "history_url": reverse("mappings-history", args=[mapping.pk]),
    }
    mapping.refresh_from_db()
    version = mapping.current_version
    assert (version.number, version.rules, version.comment, version.author) == (
        2,
        rules,
        "upper-case currency",
        personas["admin"],
    )
    assert [(c["target"], c["change"]) for c in version.diff] == [("currency", "changed"), ("email", "added")]
    entry = AuditEntry.objects.filter(verb="save", target_type="mapping").latest("id")
    assert entry.actor == personas["admin"] and entry.diff["version"] == 2


def test_it_refuses_to_save_rules_with_errors_and_says_which(client, personas, mapping):
    rules = [{"target": "currency", "source": "currency"}, {"target": "email"}]
    response = post_json(
        as_user(client, personas["admin"]), reverse("mappings-save", args=[mapping.pk]), {"rules": rules}
    )
    assert response.status_code == 400
    answer = response.json()
    assert answer["message"].startswith("Not saved")
    assert answer["errors"] == [
        {
            "index": 1,
            "target": "email",
            "message": "Rule 2 (email): choose a source field, a constant, or a transform "
            "that produces a value",
            "problem": "choose a source field, a constant, or a transform that produces a value",
        }
    ]
    assert MappingVersion.objects.filter(mapping=mapping).count() == 1


def test_it_refuses_to_overwrite_a_version_saved_meanwhile(client, personas, mapping):
    c = as_user(client, personas["admin"])
    url = reverse("mappings-save", args=[mapping.pk])
    assert (
        post_json(c, url, {"rules": [{"target": "number", "source": "id"}], "base_version": 1}).status_code
        == 200
    )
    stale = post_json(c, url, {"rules": [{"target": "email", "source": "customer.email"}], "base_version": 1})
    assert stale.status_code == 409
    assert "alice-admin saved version 2 while you were editing" in stale.json()["message"]
    same = post_json(c, url, {"rules": [{"target": "number", "source": "id"}], "base_version": 2}).json()
    assert same == {"saved": False, "version": 2, "message": "Nothing has changed since version 2."}
    assert post_json(c, url, "nope").status_code == 400


def test_it_refuses_the_second_of_two_saves_from_the_same_version_and_writes_nothing(
    client, personas, mapping
):
    url = reverse("mappings-save", args=[mapping.pk])
    v2 = [{"target": "number", "source": "id"}]
    assert (
        post_json(as_user(client, personas["admin"]), url, {"rules": v2, "base_version": 1}).status_code
        == 200
    )
    # The second editor also started from version 1; even the very rules of version 2 are refused,
    # since they have not seen it.
    for rules in ([{"target": "email", "source": "customer.email"}], v2):
        stale = post_json(client, url, {"rules": rules, "comment": "mine", "base_version": 1})
        assert stale.status_code == 409
        assert stale.json() == {
            "message": "Not saved: alice-admin saved version 2 while you were editing. "
            "Open the history to see their change, then reload this page.",
            "version": 2,
        }
    assert list(mapping.versions.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert AuditEntry.objects.filter(verb="save", target_type="mapping").count() == 2


def test_it_shows_the_history_with_readable_diffs(client, personas, mapping, django_assert_max_num_queries):
    c = as_user(client, personas["admin"])
    for comment, rules in [
        ("add number", [*V1_RULES, {"target": "number", "source": "id"}]),
        (
            "lower-case email",
            [
                *V1_RULES,
                {"target": "number", "source": "id"},
                {"target": "email", "source": "customer.email", "transforms": [{"name": "lower"}]},
            ],
        ),
        (
            "drop number",
            [
                {"target": "currency", "constant": "EUR"},
                {"target": "email", "source": "customer.email", "transforms": [{"name": "lower"}]},
            ],
        ),
    ]:
        post_json(c, reverse("mappings-save", args=[mapping.pk]), {"rules": rules, "comment": comment})
    auditor = as_user(client, personas["auditor"])
    with django_assert_max_num_queries(5):
        page = auditor.get(reverse("mappings-history", args=[mapping.pk]))
    text = page.text
    assert text.index("Version 4") < text.index("Version 3") < text.index("Version 1")
    assert "alice-admin" in text and "“lower-case email”" in text
    assert "email ← customer.email, then Lower case" in text
    assert "Removed" in text and "Changed" in text and "Added" in text
    assert "currency ← &quot;EUR&quot;" in text
    assert "Restore this version" not in text  # auditors cannot restore


def test_it_restores_an_old_version_as_a_new_one(client, personas, mapping):
    c = as_user(client, personas["admin"])
    post_json(
        c, reverse("mappings-save", args=[mapping.pk]), {"rules": [{"target": "number", "source": "id"}]}
    )
    history = c.get(reverse("mappings-history", args=[mapping.pk]))
    assert history.text.count("Restore this version") == 1  # not on the current version
    assert "hx-confirm=" in history.text
    response = c.post(reverse("mappings-restore", args=[mapping.pk, 1]), follow=True)
    assert "Restored version 1: it is now version 3." in response.text
    mapping.refresh_from_db()
    assert mapping.current_version.number == 3
    assert mapping.current_version.rules == V1_RULES
    assert mapping.current_version.comment == "restored version 1"
    htmx = c.post(reverse("mappings-restore", args=[mapping.pk, 2]), HTTP_HX_REQUEST="true")
    assert htmx["HX-Redirect"] == reverse("mappings-history", args=[mapping.pk])
    assert c.post(reverse("mappings-restore", args=[mapping.pk, 99])).status_code == 404


def test_it_offers_same_named_fields_and_likely_pairs_to_admins_only(client, personas, mapping):
    config = page_config(
        as_user(client, personas["admin"]).get(reverse("mappings-mapper", args=[mapping.pk]))
    )
    offered = {s["target"]: s for s in config["suggestions"]}
    assert offered["currency"]["rule"] == {"target": "currency", "source": "currency"}
    assert offered["currency"]["same_named"] is True
    assert offered["email"]["rule"] == {"target": "email", "source": "customer.email"}
    assert offered["email"]["same_named"] is True
    assert "number" not in offered and "total_minor" not in offered

    client.force_login(personas["ops"])
    assert page_config(client.get(reverse("mappings-mapper", args=[mapping.pk])))["suggestions"] == []
