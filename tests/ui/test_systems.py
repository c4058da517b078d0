"""Systems pages: the guided form, write-only secrets, test connection, delete, and who may do what."""

import pytest
from django.urls import reverse

from connectors.models import AuthScheme, SignatureScheme, System
from connectors.sandbox import DEMO_CREDENTIALS
from hub.models import AuditEntry, Event
from hub.services.specification import spec_export, spec_import
from tests.connectors.jsonapi_server import MEDIA_TYPE, TOKEN, JsonApiServer
from tests.factories import DataModelFactory, SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
API_KEY = "sk-live-4f9a8b7c6d5e-do-not-show"
HOOK_SECRET = "whsec-9f8e7d6c5b4a-do-not-show"


@pytest.fixture
def admin_client(client, personas):
    client.force_login(personas["admin"])
    return client


@pytest.fixture
def crm():
    return SystemFactory(
        name="Sales CRM",
        slug="sales-crm",
        base_url="https://crm.example.com/api",
        auth_scheme=AuthScheme.API_KEY,
        auth_config={"header": "X-Api-Key"},
        credentials={"api_key": API_KEY},
        webhook_secret={"secret": HOOK_SECRET},
    )


def form_data(**overrides) -> dict:
    data = {
        "kind": "crm",
        "name": "Sales CRM",
        "slug": "",
        "base_url": "https://crm.example.com/api",
        "api_version": "2024-06",
        "connector": "rest",
        "connect_timeout": "3",
        "read_timeout": "10",
        "rate_limit_per_second": "",
        "health_path": "",
        "auth_scheme": "api_key",
        "api_key_header": "X-Api-Key",
        "token_url": "/oauth/token",
        "scope": "",
        "api_key": API_KEY,
        "token": "",
        "username": "",
        "password": "",
        "client_id": "",
        "client_secret": "",
        "signature_scheme": "hmac_sha256",
        "signature_header": "X-Signature",
        "signature_encoding": "hex",
        "signature_prefix": "sha256=",
        "signature_tolerance_seconds": "300",
        "webhook_secret": HOOK_SECRET,
        "event_type_path": "type",
        "idempotency_key_path": "id",
        "record_path": "data",
    }
    data.update(overrides)
    return data


def page_urls(system):
    return {
        "list": reverse("connectors-list"),
        "detail": reverse("connectors-detail", args=[system.pk]),
        "add": reverse("connectors-add"),
        "edit": reverse("connectors-edit", args=[system.pk]),
        "credentials": reverse("connectors-credentials", args=[system.pk]),
    }


# -- who may do what ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, allowed",
    [
        ("admin", {"list", "detail", "add", "edit", "credentials"}),
        ("ops", {"list", "detail"}),
        ("auditor", {"list", "detail"}),
        ("outsider", set()),
        ("publisher", set()),
    ],
)
def test_it_lets_every_role_read_and_only_admins_change(client, personas, crm, who, allowed):
    client.force_login(personas[who])
    for name, url in page_urls(crm).items():
        assert client.get(url).status_code == (200 if name in allowed else 403), name


def test_it_sends_the_anonymous_to_sign_in(client, crm):
    for url in page_urls(crm).values():
        response = client.get(url)
        assert response.status_code == 302 and reverse("login") in response["Location"]


def test_an_auditor_gets_403_on_every_change(client, personas, crm):
    client.force_login(personas["auditor"])
    for url in [
        reverse("connectors-add"),
        reverse("connectors-edit", args=[crm.pk]),
        reverse("connectors-credentials", args=[crm.pk]),
        reverse("connectors-test", args=[crm.pk]),
        reverse("connectors-delete", args=[crm.pk]),
    ]:
        assert client.post(url, form_data(name="Hacked")).status_code == 403, url
    assert System.objects.get(pk=crm.pk).name == "Sales CRM"
    assert not AuditEntry.objects.exclude(verb="sign_in").exists()


def test_an_auditor_sees_no_add_edit_or_delete_buttons(client, personas, crm):
    client.force_login(personas["auditor"])
    listing = client.get(reverse("connectors-list")).content.decode()
    detail = client.get(reverse("connectors-detail", args=[crm.pk])).content.decode()
    assert reverse("connectors-add") not in listing
    assert reverse("connectors-edit", args=[crm.pk]) not in detail
    assert reverse("connectors-delete", args=[crm.pk]) not in detail
    assert "Test connection" not in detail


def test_ops_may_test_a_connection_but_not_change_the_system(client, personas, crm):
    client.force_login(personas["ops"])
    assert client.post(reverse("connectors-test", args=[crm.pk]), headers=HTMX).status_code == 200
    assert client.post(reverse("connectors-edit", args=[crm.pk]), form_data()).status_code == 403


# -- registering and changing -----------------------------------------------------------------------


def test_it_registers_a_system_with_a_slug_from_its_name_and_audits_it_without_secrets(
    admin_client, personas
):
    response = admin_client.post(reverse("connectors-add"), form_data())
    system = System.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "connectors-detail", args=[system.pk]
    )
    assert system.slug == "sales-crm" and system.kind == "crm"
    assert system.credentials == {"api_key": API_KEY} and system.secret == HOOK_SECRET
    assert system.auth_config == {"header": "X-Api-Key"}
    entry = AuditEntry.objects.get(verb="create", target_type="system")
    assert entry.actor == personas["admin"]
    assert entry.diff["created"]["credentials_set"] == {"api_key": True}
    assert API_KEY not in str(entry.diff) and HOOK_SECRET not in str(entry.diff)


def test_it_makes_a_unique_slug_when_two_names_slugify_alike(admin_client):
    admin_client.post(reverse("connectors-add"), form_data(name="Sales CRM"))
    admin_client.post(reverse("connectors-add"), form_data(name="Sales-CRM"))
    assert sorted(System.objects.values_list("slug", flat=True)) == ["sales-crm", "sales-crm-2"]


def test_it_keeps_only_the_credentials_of_the_chosen_sign_in_method(admin_client):
    admin_client.post(
        reverse("connectors-add"),
        form_data(
            auth_scheme="oauth2_client_credentials",
            client_id="hub",
            client_secret="s3cret-client",
            api_key="stray",
            scope="read write",
        ),
    )
    system = System.objects.get()
    assert system.credentials == {"client_id": "hub", "client_secret": "s3cret-client"}
    assert system.auth_config == {"token_url": "/oauth/token", "scope": "read write"}


def test_an_empty_secret_on_edit_keeps_the_stored_one_and_a_new_one_replaces_it(admin_client, crm):
    url = reverse("connectors-edit", args=[crm.pk])
    response = admin_client.post(
        url, form_data(name="Sales CRM", slug="sales-crm", api_key="", webhook_secret="", api_version="v9")
    )
    assert response.status_code == 302
    crm.refresh_from_db()
    assert crm.credentials == {"api_key": API_KEY} and crm.secret == HOOK_SECRET and crm.api_version == "v9"
    first = AuditEntry.objects.get(verb="update")
    assert first.diff["api_version"] == ["", "v9"] and "credentials_replaced" not in first.diff

    admin_client.post(
        url, form_data(name="Sales CRM", slug="sales-crm", api_key="new-key-0000", webhook_secret="")
    )
    crm.refresh_from_db()
    assert crm.credentials == {"api_key": "new-key-0000"} and crm.secret == HOOK_SECRET
    second = AuditEntry.objects.filter(verb="update").order_by("-id").first()
    assert second.diff["credentials_replaced"] == ["api_key"] and "new-key-0000" not in str(second.diff)


def test_it_replaces_only_the_secrets_on_the_credentials_page(admin_client, crm):
    url = reverse("connectors-credentials", args=[crm.pk])
    response = admin_client.post(url, {"api_key": "", "webhook_secret": ""})
    assert "Type at least one new value" in response.content.decode()
    response = admin_client.post(url, {"api_key": "", "webhook_secret": "whsec-rotated-1234"})
    assert response.status_code == 302
    crm.refresh_from_db()
    assert crm.secret == "whsec-rotated-1234" and crm.credentials == {"api_key": API_KEY}
    assert AuditEntry.objects.get(verb="update").diff == {"webhook_secret_replaced": True}


def test_it_never_renders_a_stored_secret(admin_client, crm):
    DataModelFactory(system=crm, name="Deal", resource_path="/deals")
    pages = [*page_urls(crm).values(), reverse("home")]
    # and a form sent back with errors, carrying a new secret the admin just typed
    bad_edit = admin_client.post(
        reverse("connectors-edit", args=[crm.pk]), form_data(base_url="nope", api_key="typed-new-key-1234")
    )
    assert bad_edit.status_code == 200
    for url in pages:
        html = admin_client.get(url).content.decode()
        assert API_KEY not in html and HOOK_SECRET not in html, url
    for html in (bad_edit.content.decode(),):
        assert "typed-new-key-1234" not in html and API_KEY not in html
    detail = admin_client.get(reverse("connectors-detail", args=[crm.pk])).content.decode()
    assert "set ✓" in detail


def test_it_echoes_no_typed_secret_when_a_new_form_comes_back_with_errors(admin_client):
    response = admin_client.post(
        reverse("connectors-add"),
        form_data(
            name="", auth_scheme="basic", username="typed-user-name", password="typed-password-9", api_key=""
        ),
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "typed-user-name" not in html and "typed-password-9" not in html and HOOK_SECRET not in html


BAD_INPUT = {  # input: {bad value: what the form says beside it}
    "name": {"": "This field is required", "n" * 10_000: "at most 100", "bad\x00name": "Null characters"},
    "base_url": {
        "not a url": "starting with http",
        "ftp://example.com": "starting with http",
        "https://" + "a" * 600 + ".com": "at most 500",
    },
    "connect_timeout": {"-3": "at least 0.1"},
    "read_timeout": {"1e309": "Enter a number", "nan": "Enter a number", "99999": "at most 300"},
    "rate_limit_per_second": {"0": "at least 0.01", "lots": "Enter a number"},
    "signature_tolerance_seconds": {
        "-1": "greater than or equal to 1",
        "9" * 40: "less than or equal to 86400",
    },
    "slug": {"Not A Slug": "lowercase letters", "s" * 61: "at most 60"},
    "api_key": {"": "Enter the API key", "k" * 3000: "at most 2000"},
    "api_key_header": {"X Api Key": "header name", "": "Enter the name"},
    "auth_scheme": {"telepathy": "Select a valid choice"},
    "webhook_secret": {"": "signing secret"},
    "signature_header": {"bad header": "header name"},
    "event_type_path": {"a b": "dotted path"},
    "record_path": {"x" * 201: "at most 200"},
    "health_path": {"deals": "Start the path"},
    "connector": {"soap": "Unknown kind of API “soap”"},
    "update_method": {"POST": "Select a valid choice"},
    "list_records_path": {"data..x": "not a valid path"},
}
BAD_INPUT_FOR_A_CHOICE = [  # (the inputs, the one the form explains, what it says)
    ({"auth_scheme": "oauth2_client_credentials", "token_url": "ftp:/x"}, "token_url", "https://"),
    ({"auth_scheme": "oauth2_client_credentials"}, "client_id", "Enter the client ID"),
    ({"connector": "jsonapi", "page_size_param": "page size"}, "page_size_param", "parameter name"),
    ({"connector": "jsonapi", "since_filter": ""}, "since_filter", "Name the parameter"),
]


@pytest.mark.parametrize(
    "overrides, field, message",
    [({field: value}, field, message) for field, bad in BAD_INPUT.items() for value, message in bad.items()]
    + BAD_INPUT_FOR_A_CHOICE,
)
def test_it_explains_bad_input_next_to_the_field_instead_of_failing(admin_client, overrides, field, message):
    response = admin_client.post(reverse("connectors-add"), form_data(**overrides))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not System.objects.exists()


def test_it_refuses_a_duplicate_name_or_slug(admin_client, crm):
    response = admin_client.post(reverse("connectors-add"), form_data(name="sales crm"))
    assert "already a system with this name" in " ".join(response.context["form"].errors["name"])
    response = admin_client.post(reverse("connectors-add"), form_data(name="Other", slug="sales-crm"))
    assert "already uses this short name" in " ".join(response.context["form"].errors["slug"])
    assert System.objects.count() == 1


def test_it_accepts_a_system_that_only_sends_webhooks(admin_client):
    response = admin_client.post(
        reverse("connectors-add"), form_data(base_url="", auth_scheme="none", api_key="")
    )
    assert response.status_code == 302
    system = System.objects.get()
    html = admin_client.get(reverse("connectors-detail", args=[system.pk])).content.decode()
    assert "only receives webhooks" in html


# -- kinds of API and their settings -----------------------------------------------------------------


def shown_for(html: str, name: str) -> str:
    """The options an input is shown for: the data-values of the block around it."""
    before = html[: html.index(f'name="{name}"')]
    return before[before.rindex("data-values=") :].split('"')[1]


def test_it_offers_every_registered_kind_of_api_and_shows_each_input_only_where_it_belongs(admin_client):
    html = admin_client.get(reverse("connectors-add")).content.decode()
    assert '<option value="rest" selected>Generic REST / JSON</option>' in html
    assert '<option value="jsonapi">JSON:API</option>' in html
    assert shown_for(html, "health_path") == "rest jsonapi"
    assert shown_for(html, "update_method") == "rest"
    assert shown_for(html, "page_size_param") == "jsonapi"
    assert shown_for(html, "api_key_header") == "api_key"
    assert shown_for(html, "api_key") == "api_key"
    assert shown_for(html, "client_secret") == "oauth2_client_credentials"
    assert 'name="page_size_param" value="page[size]"' in html


def test_it_registers_a_jsonapi_system_whose_connection_works(admin_client):
    with JsonApiServer() as server:
        response = admin_client.post(
            reverse("connectors-add"),
            form_data(
                name="People",
                connector="jsonapi",
                base_url=server.url,
                health_path="/people",
                auth_scheme="bearer",
                api_key="",
                token=TOKEN,
            ),
        )
        system = System.objects.get()
        assert response.status_code == 302
        assert system.connector == "jsonapi" and system.credentials == {"token": TOKEN}
        assert system.settings == {
            "health_path": "/people",
            "page_size_param": "page[size]",
            "since_filter": "filter[updated_since]",
        }
        detail = admin_client.get(reverse("connectors-detail", args=[system.pk])).content.decode()
        assert "JSON:API" in detail and 'name="path" value="/people"' in detail
        html = admin_client.post(reverse("connectors-test", args=[system.pk]), headers=HTMX).content.decode()
        assert "Connected, and the credentials were accepted" in html
        assert server.received[-1]["headers"]["Accept"] == MEDIA_TYPE
        assert TOKEN not in html and TOKEN not in detail


def test_the_edit_form_shows_the_stored_settings_and_a_new_kind_replaces_them(admin_client, crm):
    crm.settings = {"health_path": "/deals", "update_method": "PUT"}
    crm.save()
    url = reverse("connectors-edit", args=[crm.pk])
    html = admin_client.get(url).content.decode()
    assert '<option value="PUT" selected>PUT</option>' in html and 'name="health_path" value="/deals"' in html
    response = admin_client.post(
        url, form_data(name="Sales CRM", slug="sales-crm", api_key="", webhook_secret="", connector="jsonapi")
    )
    assert response.status_code == 302
    crm.refresh_from_db()
    assert crm.connector == "jsonapi"
    assert crm.settings == {
        "health_path": "",
        "page_size_param": "page[size]",
        "since_filter": "filter[updated_since]",
    }
    diff = AuditEntry.objects.get(verb="update").diff
    assert diff["connector"] == ["rest", "jsonapi"] and diff["settings"][0]["update_method"] == "PUT"


def test_a_setting_the_browser_did_not_send_keeps_its_stored_value(admin_client, crm):
    crm.settings = {"health_path": "/deals", "list_records_path": "items"}
    crm.save()
    data = form_data(name="Sales CRM", slug="sales-crm", api_key="", webhook_secret="", health_path="/deals")
    admin_client.post(reverse("connectors-edit", args=[crm.pk]), data)
    crm.refresh_from_db()
    assert crm.settings["list_records_path"] == "items" and crm.settings["update_method"] == "PATCH"


# -- the detail page ---------------------------------------------------------------------------------


def test_it_shows_the_webhook_url_to_paste_and_the_signature_in_words(admin_client, crm, settings):
    settings.HUB_INGEST_URL = "https://hub.example.com"  # where senders reach the webhook front door
    crm.signature_scheme = SignatureScheme.TIMESTAMPED
    crm.signature_header = "Payments-Signature"
    crm.save()
    html = admin_client.get(reverse("connectors-detail", args=[crm.pk])).content.decode()
    assert 'value="https://hub.example.com/hooks/sales-crm/"' in html and 'data-copy="webhook-url"' in html
    assert "Payments-Signature header of the form t=&lt;unix time&gt;,v1=&lt;signature&gt;" in html
    assert "older than 300 seconds are refused" in html


def test_it_shows_the_data_models_and_flows_of_a_system(admin_client, crm):
    other = SystemFactory(name="Inventory")
    deals = model_with_fields(crm, "Deal", "/deals", "id! title")
    target = model_with_fields(other, "Adjustment", "/adjustments", "reference!")
    flow_with_mapping(
        source_model=deals,
        target_model=target,
        rules=[{"target": "reference", "source": "id"}],
        name="Won deals reduce stock",
    )
    html = admin_client.get(reverse("connectors-detail", args=[crm.pk])).content.decode()
    assert "Deal" in html and "2 fields" in html
    assert "Sends data to" in html and "Won deals reduce stock" in html
    assert "be deleted right now" in html and "Flows use it" in html
    assert (
        admin_client.get(reverse("connectors-detail", args=[other.pk]))
        .content.decode()
        .count("Receives data from")
        == 1
    )


def test_it_lists_systems_in_a_constant_number_of_queries(admin_client, django_assert_max_num_queries):
    SystemFactory()
    with django_assert_max_num_queries(10) as few:
        admin_client.get(reverse("connectors-list"))
    for _ in range(12):
        system = SystemFactory()
        DataModelFactory(system=system)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_client.get(reverse("connectors-list"))
    assert len(response.context["systems"]) == 13


def test_it_invites_an_admin_to_register_the_first_system(admin_client, client, personas):
    html = admin_client.get(reverse("connectors-list")).content.decode()
    assert "No systems yet: register your first" in html and reverse("connectors-add") in html


# -- test connection -----------------------------------------------------------------------------------


def sandbox_crm(sandbox, key: str) -> System:
    return SystemFactory(
        name="CRM",
        slug="crm",
        base_url=sandbox.url("crm"),
        auth_scheme=AuthScheme.API_KEY,
        auth_config={"header": "X-Api-Key"},
        credentials={"api_key": key},
        settings={"health_path": "/deals"},
    )


def test_it_tells_in_plain_words_that_the_connection_works(admin_client, fresh_sandbox):
    system = sandbox_crm(fresh_sandbox, DEMO_CREDENTIALS["crm"]["api_key"])
    response = admin_client.post(reverse("connectors-test", args=[system.pk]), headers=HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="test-result"') and "<html" not in html
    assert "Connected, and the credentials were accepted" in html and " ms" in html
    assert "Reachable: yes" in html
    entry = AuditEntry.objects.get(verb="test_connection")
    assert entry.diff["ok"] is True and entry.diff["path"] == "/deals"


def test_it_says_the_credentials_were_refused(admin_client, fresh_sandbox):
    system = sandbox_crm(fresh_sandbox, "wrong-key-123")
    html = admin_client.post(reverse("connectors-test", args=[system.pk]), headers=HTMX).content.decode()
    assert "the credentials were refused (401)" in html and "Credentials: refused" in html
    assert "wrong-key-123" not in html


def test_it_tests_the_first_data_models_resource_and_accepts_another_path(admin_client, fresh_sandbox):
    system = sandbox_crm(fresh_sandbox, DEMO_CREDENTIALS["crm"]["api_key"])
    DataModelFactory(system=system, name="Customer", resource_path="/customers")
    detail = admin_client.get(reverse("connectors-detail", args=[system.pk])).content.decode()
    assert 'name="path" value="/customers"' in detail
    html = admin_client.post(
        reverse("connectors-test", args=[system.pk]), {"path": "/nothing-here"}, headers=HTMX
    ).content.decode()
    assert "nothing at /nothing-here (404)" in html


def test_it_says_when_nothing_answers(admin_client):
    system = SystemFactory(base_url="http://127.0.0.1:9", connect_timeout=1)
    html = admin_client.post(reverse("connectors-test", args=[system.pk]), headers=HTMX).content.decode()
    assert "Could not reach http://127.0.0.1:9" in html and "Reachable: no" in html


@pytest.mark.parametrize("path", ["https://evil.example.com/steal", "//evil.example.com/x", "deals"])
def test_it_only_tests_paths_on_the_systems_own_base_url(admin_client, path):
    system = SystemFactory(base_url="http://127.0.0.1:9")
    html = admin_client.post(
        reverse("connectors-test", args=[system.pk]), {"path": path}, headers=HTMX
    ).content.decode()
    assert "must start with" in html


def test_it_explains_that_a_system_without_a_base_url_has_nothing_to_test(admin_client):
    system = SystemFactory(base_url="")
    html = admin_client.post(reverse("connectors-test", args=[system.pk]), headers=HTMX).content.decode()
    assert "no API base URL" in html


def test_without_htmx_the_test_result_comes_back_in_the_whole_page(admin_client):
    system = SystemFactory(base_url="")
    response = admin_client.post(reverse("connectors-test", args=[system.pk]))
    assert (
        response.status_code == 200
        and b"<html" in response.content
        and b"no API base URL" in response.content
    )


# -- delete -----------------------------------------------------------------------------------------------


def test_it_deletes_an_unused_system_with_its_models_and_audits_it(admin_client, crm):
    DataModelFactory(system=crm)
    detail = admin_client.get(reverse("connectors-detail", args=[crm.pk])).content.decode()
    assert 'hx-confirm="Delete Sales CRM' in detail
    response = admin_client.post(reverse("connectors-delete", args=[crm.pk]), headers=HTMX)
    assert response.status_code == 204 and response["HX-Redirect"] == reverse("connectors-list")
    assert not System.objects.exists()
    entry = AuditEntry.objects.get(verb="delete")
    assert entry.target_label == "Sales CRM" and API_KEY not in str(entry.diff)


def test_it_refuses_to_delete_a_system_a_flow_uses_and_says_why(admin_client, crm):
    deals = model_with_fields(crm, "Deal", "/deals", "id!")
    target = model_with_fields(SystemFactory(), "Thing", "/things", "ref")
    flow_with_mapping(
        source_model=deals,
        target_model=target,
        rules=[{"target": "ref", "source": "id"}],
        name="Deals to things",
    )
    response = admin_client.post(reverse("connectors-delete", args=[crm.pk]), follow=True)
    html = response.content.decode()
    assert "was not deleted" in html and "Deals to things" in html
    assert System.objects.filter(pk=crm.pk).exists() and not AuditEntry.objects.filter(verb="delete").exists()


def test_it_refuses_to_delete_a_system_whose_event_history_is_kept(admin_client, crm):
    Event.objects.create(system=crm, event_type="deal.won", idempotency_key="1", payload={})
    response = admin_client.post(reverse("connectors-delete", args=[crm.pk]), follow=True)
    assert "keeps their history" in response.content.decode()
    assert System.objects.filter(pk=crm.pk).exists()


# Stored credentials go only where they were entered for: moving a system to another host keeps
# them only when they are typed again, in the edit form and in an imported specification.


def edit_moving(client, crm, **overrides):
    data = form_data(
        **{"name": "Sales CRM", "slug": "sales-crm", "api_key": "", "webhook_secret": "", **overrides}
    )
    return client.post(reverse("connectors-edit", args=[crm.pk]), data)


def test_moving_to_another_host_without_the_credentials_is_refused_beside_the_address(admin_client, crm):
    response = edit_moving(admin_client, crm, base_url="https://collector.example.net/api")
    assert response.status_code == 200
    html = response.content.decode()
    assert "sends the stored credentials to a new place (collector.example.net:443)" in html
    crm.refresh_from_db()
    assert crm.base_url == "https://crm.example.com/api" and crm.credentials == {"api_key": API_KEY}


def test_moving_with_the_credentials_typed_again_is_accepted(admin_client, crm):
    response = edit_moving(
        admin_client, crm, base_url="https://collector.example.net/api", api_key="k-typed-again-1"
    )
    assert response.status_code == 302
    crm.refresh_from_db()
    assert crm.base_url == "https://collector.example.net/api"
    assert crm.credentials == {"api_key": "k-typed-again-1"}


def test_another_path_or_https_on_the_same_host_keeps_the_credentials(admin_client, crm):
    assert edit_moving(admin_client, crm, base_url="https://crm.example.com/v2").status_code == 302
    crm.refresh_from_db()
    assert crm.base_url == "https://crm.example.com/v2" and crm.credentials == {"api_key": API_KEY}


def test_an_imported_specification_cannot_move_stored_credentials(personas, crm):
    text = spec_export().replace("https://crm.example.com/api", "https://collector.example.net/api")
    report = spec_import(text=text, actor=personas["admin"])
    assert any("sales-crm" in error and "new place" in error for error in report.errors), report.errors
    assert System.objects.get(pk=crm.pk).base_url == "https://crm.example.com/api"
