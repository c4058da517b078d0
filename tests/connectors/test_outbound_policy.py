"""Where the hub may connect (connectors/netpolicy.py): by default never to cloud metadata,
link-local, private, loopback, unspecified or multicast addresses, checked after DNS when the
connection is made, for every path out of the hub (deliveries, polling, Test connection, OAuth
token URLs, alert webhooks); resource paths never lead off the system's base URL.

Each refusal is proved against a real listening socket that counts the TCP connections it
accepts: a refused address gets none. The tests allow loopback (pyproject's pytest-env); these
override it with the default policy where they say so."""

import http.server
import json
import socket
import threading
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from connectors.base import ConnectorError
from connectors.models import AuthScheme
from connectors.netpolicy import guarded_session, policy_parse
from connectors.registry import connector_for
from dlq.models import DeadLetter
from hub.alerts.channels import ChannelError, Notice, WebhookChannel
from hub.models import Delivery, Trigger
from hub.pipeline.drain import deliveries_process_batch
from hub.pipeline.ingest import IncomingEvent, events_store
from hub.pipeline.polling import flow_poll
from hub.services.specification import spec_import
from hub.services.systems import system_create, system_test_connection
from mappings.models import DataModel
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db
TOKEN = "tok-outbound-policy-bearer"


class Listener(http.server.ThreadingHTTPServer):
    """A real HTTP server that counts the TCP connections it accepts and the requests it answers
    (with the credentials they carried); it may answer every request with a redirect instead."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", redirect_to: str | None = None) -> None:
        self.accepts = 0
        self.requests: list[dict] = []
        self.redirect_to = redirect_to
        super().__init__((host, 0), _Answer)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self):
        self.accepts += 1
        return super().get_request()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"

    def credentials_seen(self) -> list[str]:
        return [r["auth"] for r in self.requests if r["auth"]]

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Answer(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization") or self.headers.get("X-Api-Key") or ""
        self.server.requests.append({"line": f"{self.command} {self.path}", "auth": auth})
        if self.server.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.server.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/oauth/token"):
            body = {"access_token": TOKEN, "expires_in": 3600}
        else:
            body = {"data": [], "id": "r1"}
        data = json.dumps(body).encode()
        self.send_response(201 if self.command == "POST" and "token" not in self.path else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = _answer


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def default_policy(settings):
    """The policy of a deployment that sets nothing."""
    settings.HUB_OUTBOUND_ALLOW = []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- every path out of the hub, given an address: what it said -------------------------------


def _delivery(base_url: str) -> str:
    """A delivery's write, through the pipeline: what the delivery's last error says."""
    source = SystemFactory(name="Shop", base_url="https://shop.example.com")
    target = SystemFactory(base_url=base_url, auth_scheme=AuthScheme.BEARER, credentials={"token": TOKEN})
    flow = flow_with_mapping(
        source_model=model_with_fields(source, "Order", "/orders", "id!"),
        target_model=model_with_fields(target, "Invoice", "/invoices", "number!"),
        rules=[{"target": "number", "source": "id"}],
    )
    events_store([IncomingEvent(flow.source_system, "order.created", "o1", {"data": {"id": "o1"}})])
    deliveries_process_batch()
    delivery = Delivery.objects.get()
    return delivery.last_error if delivery.status != "succeeded" else "succeeded"


def _polling(base_url: str) -> str:
    source = SystemFactory(base_url=base_url, auth_scheme=AuthScheme.BEARER, credentials={"token": TOKEN})
    target = SystemFactory(name="Books", base_url="https://books.example.com")
    flow = flow_with_mapping(
        source_model=model_with_fields(source, "Deal", "/deals", "id!"),
        target_model=model_with_fields(target, "Invoice", "/invoices", "number!"),
        rules=[{"target": "number", "source": "id"}],
        trigger=Trigger.SCHEDULED,
        schedule_minutes=15,
    )
    return flow_poll(flow=flow).error or "polled"


def _test_connection(base_url: str) -> str:
    system = SystemFactory(base_url=base_url, auth_scheme=AuthScheme.BEARER, credentials={"token": TOKEN})
    return system_test_connection(system=system, path="/deals", actor=None).headline


def _oauth_token_url(base_url: str) -> str:
    """Sign-in fetches a token from the token URL (a full URL) before the call itself."""
    system = SystemFactory(
        base_url=base_url,
        auth_scheme=AuthScheme.OAUTH2,
        auth_config={"token_url": f"{base_url}/oauth/token"},
        credentials={"client_id": "hub", "client_secret": "s3cret"},
    )
    try:
        connector_for(system).push(
            operation="create", resource="/deals", record={"id": "1"}, target_id=None, idempotency_key="k1"
        )
    except ConnectorError as exc:
        return exc.message
    return "sent"


def _alert_webhook(base_url: str) -> str:
    channel = WebhookChannel({}, {"url": f"{base_url}/hook?token=chat-secret", "signing_secret": "s"})
    notice = Notice("test", "Flow", "rule", "a test", "http://hub.example/alerts/1/", datetime.now(UTC))
    try:
        return channel.send(notice)
    except ChannelError as exc:
        return str(exc)


PATHS = {
    "delivery": _delivery,
    "polling": _polling,
    "test connection": _test_connection,
    "OAuth token URL": _oauth_token_url,
    "alert webhook": _alert_webhook,
}

# Host as written in a URL -> words the refusal must contain. The loopback spellings reach the
# listener when allowed (the next test), so its count of accepted connections proves none was made;
# the other addresses cannot be listened on here.
REFUSED = [
    ("169.254.169.254", "169.254.169.254 is a cloud metadata address; the hub never connects there"),
    ("[fd00:ec2::254]", "fd00:ec2::254 is a cloud metadata address; the hub never connects there"),
    ("100.100.100.200", "100.100.100.200 is a cloud metadata address; the hub never connects there"),
    (
        "metadata.google.internal",
        "metadata.google.internal is a cloud metadata address; the hub never connects there",
    ),
    ("169.254.10.1", "169.254.10.1 is a link-local address"),
    ("[fe80::1]", "fe80::1 is a link-local address"),
    ("10.1.2.3", "10.1.2.3 is a private network address"),
    ("172.16.0.9", "172.16.0.9 is a private network address"),
    ("192.168.0.1", "192.168.0.1 is a private network address"),
    ("[fd12::1]", "fd12::1 is a private network address"),
    ("100.64.0.1", "100.64.0.1 is a private network address"),
    ("224.0.0.1", "224.0.0.1 is a multicast address"),
    ("0.0.0.0", "0.0.0.0 is an unspecified address"),
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("localhost", "localhost is a loopback address"),
    ("[::1]", "::1 is a loopback address"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 is a loopback address"),
    ("2130706433", "2130706433 is a loopback address"),
    ("0177.0.0.1", "0177.0.0.1 is a loopback address"),
    ("0x7f.1", "0x7f.1 is a loopback address"),
]
LOOPBACK_SPELLINGS = ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0177.0.0.1"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("host", "words"), REFUSED)
def test_it_refuses_each_address_by_default_on_every_path_without_connecting(
    default_policy, listener, path, host, words
):
    said = PATHS[path](f"http://{host}:{listener.port}")
    assert words in said
    if "never connects there" not in words:
        assert "the hub connects there only when HUB_OUTBOUND_ALLOW includes" in said
    if path == "OAuth token URL":
        assert said.startswith("token endpoint unreachable: ")
    assert listener.accepts == 0, "not even a TCP connection"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_it_connects_to_loopback_when_configured(settings, listener, path, host):
    settings.HUB_OUTBOUND_ALLOW = ["loopback"]
    said = PATHS[path](f"http://{host}:{listener.port}")
    assert "loopback" not in said and "could not" not in said.lower(), said
    assert listener.accepts >= 1 and listener.requests


def test_a_refused_address_pauses_the_flow_and_holds_its_events_instead_of_retrying(default_policy, listener):
    said = _delivery(listener.url)
    delivery = Delivery.objects.select_related("flow").get()
    assert "127.0.0.1 is a loopback address" in said
    assert delivery.status == "retrying" and delivery.last_error_class == "outbound_refused"
    assert delivery.flow.state == "paused"
    assert "outbound policy refuses the address" in delivery.flow.paused_reason
    assert "HUB_OUTBOUND_ALLOW" in delivery.flow.paused_reason
    assert not DeadLetter.objects.exists() and listener.accepts == 0


def test_a_range_allows_what_it_contains_and_nothing_more(settings, listener):
    settings.HUB_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    assert _test_connection(listener.url).startswith("Connected")
    refused = _test_connection(f"http://127.0.0.2:{listener.port}")
    assert "127.0.0.2 is a loopback address" in refused and listener.accepts == 1


def test_metadata_addresses_stay_refused_whatever_is_allowed(settings):
    settings.HUB_OUTBOUND_ALLOW = ["link-local", "private", "169.254.0.0/16", "100.64.0.0/10"]
    for host in ("169.254.169.254", "100.100.100.200", "[fd00:ec2::254]"):
        assert "cloud metadata address; the hub never connects there" in _test_connection(f"http://{host}")


def test_it_checks_the_address_a_name_resolves_to_when_it_connects(default_policy, listener, monkeypatch):
    """A name that looks harmless when saved but resolves to loopback when called (DNS
    rebinding): the connection checks what DNS says at that moment."""
    real = socket.getaddrinfo

    def rebound(host, *args, **kwargs):
        return real("127.0.0.1" if host == "rebound.example" else host, *args, **kwargs)

    system = SystemFactory(base_url=f"http://rebound.example:{listener.port}")
    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    with pytest.raises(ConnectorError) as refused:
        connector_for(system).push(
            operation="update", resource="/deals", record={}, target_id="1", idempotency_key="k"
        )
    assert "rebound.example resolves to 127.0.0.1, a loopback address" in refused.value.message
    assert listener.accepts == 0


def test_test_connection_answers_the_same_for_an_open_and_a_closed_port_on_a_refused_address(
    default_policy, listener
):
    open_port = _test_connection(f"http://127.0.0.1:{listener.port}")
    closed = _test_connection(f"http://127.0.0.1:{closed_port()}")
    assert open_port == closed
    assert open_port.startswith("Not tested: 127.0.0.1 is a loopback address")
    assert listener.accepts == 0
    by_name = _test_connection(f"http://localhost:{listener.port}")
    assert by_name == _test_connection(f"http://localhost:{closed_port()}") and listener.accepts == 0


def test_test_connection_keeps_its_helpful_words_for_allowed_addresses(listener):
    assert _test_connection(listener.url).startswith("Connected, and the credentials were accepted")
    port = closed_port()
    assert (
        _test_connection(f"http://127.0.0.1:{port}")
        == f"Could not reach http://127.0.0.1:{port}: nothing answered there."
    )


# ---- redirects ---------------------------------------------------------------------------------


@pytest.fixture
def inside():
    """A server on another loopback address, standing for the company network."""
    server = Listener(host="127.0.0.2")
    yield server
    server.close()


def test_a_redirect_to_a_refused_address_is_refused(settings, inside):
    settings.HUB_OUTBOUND_ALLOW = ["127.0.0.1/32"]
    bouncer = Listener(redirect_to=inside.url)
    try:
        with guarded_session() as session:
            with pytest.raises(Exception) as refused:
                session.get(bouncer.url + "/start", timeout=2)
        assert "127.0.0.2 is a loopback address" in str(refused.value)
        system = SystemFactory(
            base_url=bouncer.url, auth_scheme=AuthScheme.BEARER, credentials={"token": TOKEN}
        )
        said = _push(system)
        assert "127.0.0.2 is a loopback address" in said
        assert len(bouncer.requests) == 2 and inside.accepts == 0
    finally:
        bouncer.close()


def test_a_redirect_to_another_place_gets_no_credentials(listener):
    """Requests strips Authorization on such a redirect, but not an API key in its own header: the
    hub does not follow a redirect off the system's own host and port at all."""
    bouncer = Listener(redirect_to=listener.url)
    try:
        system = SystemFactory(
            base_url=bouncer.url,
            auth_scheme=AuthScheme.API_KEY,
            credentials={"api_key": "key-never-elsewhere"},
        )
        said = _push(system)
        assert f"127.0.0.1:{listener.port} is not where this system lives" in said
        assert listener.accepts == 0 and bouncer.credentials_seen() == ["key-never-elsewhere"]
    finally:
        bouncer.close()


def _push(system) -> str:
    try:
        connector_for(system).push(
            operation="update", resource="/deals", record={"id": "1"}, target_id="1", idempotency_key="k"
        )
    except ConnectorError as exc:
        return exc.message
    return "sent"


# ---- resource paths stay on the base URL ---------------------------------------------------------

ELSEWHERE = ["http://127.0.0.1:{port}/steal", "HTTPS://127.0.0.1:{port}/steal", "//127.0.0.1:{port}/steal"]


@pytest.mark.parametrize("path", [*ELSEWHERE, "/v2/../../admin", "/v2/%2e%2e/admin", "/deals\\..\\x"])
def test_the_model_form_refuses_a_path_that_leads_off_the_base_url(client, personas, path):
    model = model_with_fields(SystemFactory(), "Deal", "/deals", "id!")
    client.force_login(personas["admin"])
    form = {"name": "Deal", "id_path": "id", "resource_path": path.format(port=9), "cursor_field": ""}
    page = client.post(reverse("mappings-model-edit", args=[model.pk]), form, HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    assert "A path cannot" in page.text or "not a full address" in page.text
    model.refresh_from_db()
    assert model.resource_path == "/deals"


def test_the_specification_import_refuses_each_such_path_by_entry():
    system = SystemFactory(slug="crm")
    models = "\n".join(
        f'  - {{system: crm, name: M{n}, resource_path: "{path}", fields: [{{path: id}}]}}'
        for n, path in enumerate([*(p.format(port=9) for p in ELSEWHERE), "/a/../b"])
    )
    report = spec_import(text=f"models:\n{models}\n", actor=None)
    assert not report.applied and not DataModel.objects.filter(system=system).exists()
    assert report.errors == [
        "models[0] 'crm/M0': resource_path: Enter a path on the system's base URL, such as /deals, not a "
        "full address (http://127.0.0.1:9/steal): the hub only sends a system's requests, and its "
        "credentials, to its own base URL.",
        "models[1] 'crm/M1': resource_path: Enter a path on the system's base URL, such as /deals, not a "
        "full address (HTTPS://127.0.0.1:9/steal): the hub only sends a system's requests, and its "
        "credentials, to its own base URL.",
        "models[2] 'crm/M2': resource_path: A path cannot start with “//” (//127.0.0.1:9/steal): that "
        "names another server. Use one “/”, e.g. /deals.",
        "models[3] 'crm/M3': resource_path: A path cannot contain “.” or “..” steps (/a/../b): write the "
        "path as it is, e.g. /v2/deals.",
    ]


CALLS = {
    "push": lambda c, resource: c.push(
        operation="create", resource=resource, record={}, target_id=None, idempotency_key="k"
    ),
    "fetch": lambda c, resource: c.fetch(resource=resource, since=None, page_token=None, limit=5),
    "lookup": lambda c, resource: c.lookup(resource=resource, param="q", field="q", value="v"),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("path", ELSEWHERE[:2])
def test_a_stored_absolute_path_is_refused_when_called_and_the_token_goes_nowhere(listener, call, path):
    """Rows written before the rule, or past it: the connector still sends nothing elsewhere."""
    other = Listener()
    try:
        system = SystemFactory(
            base_url=listener.url, auth_scheme=AuthScheme.BEARER, credentials={"token": TOKEN}
        )
        model = DataModel.objects.create(
            system=system, name="Stolen", resource_path=path.format(port=other.port)
        )
        with pytest.raises(ConnectorError, match="it is not on"):
            CALLS[call](connector_for(system), model.resource_path)
        assert other.accepts == 0 and other.credentials_seen() == []
        assert listener.requests == []
    finally:
        other.close()


def test_test_connection_refuses_a_path_that_leads_off_the_base_url(listener):
    system = SystemFactory(base_url=listener.url)
    for path in ("/../admin", f"//127.0.0.1:{listener.port}/x"):
        report = system_test_connection(system=system, path=path, actor=None)
        assert not report.ok and ("“..”" in report.headline or "“/”" in report.headline)
    assert listener.accepts == 0


# ---- the addresses people type in ---------------------------------------------------------------


def test_a_refused_base_url_is_refused_when_saved_with_words_on_how_to_allow_it(default_policy):
    with pytest.raises(ValidationError) as refused:
        system_create(
            fields={"name": "Meta", "base_url": "http://169.254.169.254/latest"}, credentials={}, actor=None
        )
    assert refused.value.message_dict["base_url"] == [
        "169.254.169.254 is a cloud metadata address; the hub never connects there."
    ]
    with pytest.raises(ValidationError) as private:
        system_create(fields={"name": "ERP", "base_url": "http://10.0.0.5/api"}, credentials={}, actor=None)
    assert private.value.message_dict["base_url"] == [
        "10.0.0.5 is a private network address; the hub connects there only when HUB_OUTBOUND_ALLOW "
        "includes private (or a range such as 10.0.0.5/32). Whoever runs the hub can allow it by adding "
        "that to HUB_OUTBOUND_ALLOW in the hub's environment (comma separated) and restarting the hub."
    ]


def test_the_specification_import_refuses_a_refused_base_url_by_entry(default_policy):
    report = spec_import(
        text="systems:\n  - {slug: meta, name: Meta, base_url: 'http://169.254.169.254/'}\n", actor=None
    )
    assert report.errors == [
        "systems[0] 'meta': base_url: 169.254.169.254 is a cloud metadata address; the hub never connects there."
    ]


def test_a_refused_token_url_and_alert_webhook_are_refused_when_saved(default_policy):
    system = SystemFactory.build(
        name="Auth", slug="auth", base_url="https://api.example.com", auth_scheme=AuthScheme.OAUTH2,
        auth_config={"token_url": "http://127.0.0.1:9/oauth/token"},
    )  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        system.full_clean(exclude=["credentials", "webhook_secret"])
    assert "token_url: 127.0.0.1 is a loopback address" in refused.value.message_dict["auth_config"][0]
    with pytest.raises(ValidationError) as webhook:
        WebhookChannel.clean({"url": "http://metadata.google.internal/hook"}, stored={})
    assert webhook.value.message_dict["url"] == [
        "metadata.google.internal is a cloud metadata address; the hub never connects there."
    ]


def test_the_system_page_and_its_edit_form_say_the_address_is_refused_and_how_to_allow_it(
    default_policy, client, personas
):
    system = SystemFactory(name="ERP", base_url="http://10.0.0.5/api")
    client.force_login(personas["admin"])
    for view in ("connectors-detail", "connectors-edit"):
        text = " ".join(client.get(reverse(view, args=[system.pk])).content.decode().split())
        assert "The hub does not connect to this address." in text
        assert "HUB_OUTBOUND_ALLOW includes private" in text and "restarting the hub" in text
    fine = SystemFactory(name="Cloud", base_url="https://api.example.com")
    assert "does not connect" not in client.get(reverse("connectors-detail", args=[fine.pk])).content.decode()


def test_the_setting_refuses_what_it_cannot_read():
    assert policy_parse(["loopback", " Private ", "10.20.0.0/16", "fd00::/8"]).keywords == {
        "loopback",
        "private",
    }
    with pytest.raises(ValueError, match="'intranet' is neither one of link-local, loopback, private"):
        policy_parse(["intranet"])
