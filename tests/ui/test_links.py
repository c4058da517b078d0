"""Links that cannot rot: every navigation entry opens for every role that sees it, and every link
on the main pages answers. A renamed page raises NoReverseMatch here instead of vanishing."""

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from dlq.models import DeadLetter
from dlq.services import dead_letter_create
from hub.models import Attempt, Delivery, DeliveryStatus, Event
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = pytest.mark.django_db

NAV = [
    "Overview", "Flows", "Data-flow map", "Systems", "Data models", "Dead letters", "Alerts", "Sync history",
    "Audit log", "Users", "Demo systems", "API",
]  # fmt: skip
NAV_BY_ROLE = {
    "admin": NAV,
    "ops": [label for label in NAV if label != "Users"],
    "auditor": [label for label in NAV if label not in ("Users", "Demo systems")],
}


class Links(HTMLParser):
    """Every href on a page, and the main navigation's entries with the one marked current."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.nav: list[tuple[str, str, bool]] = []
        self._in_nav = False
        self._entry: tuple[str, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if attrs.get("href") is not None:
            self.hrefs.append(attrs["href"])
        if tag == "nav" and attrs.get("aria-label") == "Main":
            self._in_nav = True
        if self._in_nav and tag == "a" and "class" not in attrs:
            self._entry = (attrs["href"], attrs.get("aria-current") == "page")

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False
        if tag == "a":
            self._entry = None

    def handle_data(self, data: str) -> None:
        if self._entry and data.strip():
            self.nav.append((data.strip(), *self._entry))
            self._entry = None


def parse(response) -> Links:
    links = Links()
    links.feed(response.content.decode())
    return links


@pytest.fixture
def world(personas):
    """A little of everything the main pages show: two systems, a flow, a failed delivery, a dead letter."""
    crm = SystemFactory(name="CRM", slug="crm", kind="crm")
    books = SystemFactory(name="Books", slug="books", kind="accounting")
    deal = model_with_fields(crm, "Deal", "/deals", "id! amount:number",
                             sample={"id": "d1", "amount": 3})  # fmt: skip
    invoice = model_with_fields(books, "Invoice", "/invoices", "number!")
    flow = flow_with_mapping(source_model=deal, target_model=invoice, rules=[{"target": "number", "source": "id"}],
                             event_type="deal.won", name="Won deals to invoices", actor=personas["admin"])  # fmt: skip
    event = Event.objects.create(
        system=crm, event_type="deal.won", idempotency_key="k1", payload={"id": "d1"}
    )
    delivery = Delivery.objects.create(
        event=event, flow=flow, record_key="d1", status=DeliveryStatus.DEAD, attempts=1,
        last_error_class="rejected", last_error="Books said no", finished_at=timezone.now(),
    )  # fmt: skip
    Attempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(), duration_ms=12,
                           outcome="rejected", error_class="rejected", message="Books said no")  # fmt: skip
    letter = dead_letter_create(
        delivery=delivery, error_class="rejected", reason="Books said no", last_response={}
    )
    return {"crm": crm, "deal": deal, "flow": flow, "letter": letter}


@pytest.mark.parametrize("role", sorted(NAV_BY_ROLE))
def test_it_opens_every_navigation_entry_for_every_role(client, personas, world, role):
    client.force_login(personas[role])
    nav = parse(client.get(reverse("home"))).nav
    assert [label for label, _, _ in nav] == NAV_BY_ROLE[role]
    for label, url, _ in nav:
        response = client.get(url)
        assert response.status_code == 200, f"{label} ({url}) answered {response.status_code} to {role}"
        current = [entry for entry, _, is_current in parse(response).nav if is_current]
        assert current == [label], f"on {url}, {current} marked current instead of {label}"


@pytest.mark.parametrize("role", ["publisher", "outsider"])
def test_it_shows_no_navigation_to_roles_without_pages(client, personas, role):
    client.force_login(personas[role])
    assert client.get(reverse("home")).status_code == 403


@pytest.mark.parametrize(
    "page, current",
    [
        (lambda w: reverse("flows-detail", args=[w["flow"].pk]), "Flows"),
        (lambda w: reverse("flows-add"), "Flows"),
        (lambda w: reverse("mappings-mapper", args=[w["flow"].mapping_id]), "Data models"),
        (lambda w: reverse("connectors-detail", args=[w["crm"].pk]), "Systems"),
        (lambda w: reverse("dlq-detail", args=[w["letter"].pk]), "Dead letters"),
        (lambda w: reverse("hub-history-event", args=[w["letter"].delivery.event_id]), "Sync history"),
    ],
)
def test_it_marks_the_section_of_a_page_below_a_navigation_entry(client, personas, world, page, current):
    client.force_login(personas["admin"])
    nav = parse(client.get(page(world))).nav
    assert [label for label, _, is_current in nav if is_current] == [current]


def test_a_navigation_entry_for_a_missing_page_fails_loudly():
    request = RequestFactory().get("/")
    template = Template('{% load hub_nav %}{% nav_item "hub-no-such-page" "Nowhere" %}')
    with pytest.raises(NoReverseMatch):
        template.render(Context({"request": request}))


def main_pages(world) -> list[str]:
    flow, deal = world["flow"], world["deal"]
    return [
        reverse("home"),
        reverse("flows-list"),
        reverse("flows-detail", args=[flow.pk]),
        reverse("flows-map"),
        reverse("connectors-list"),
        reverse("connectors-detail", args=[world["crm"].pk]),
        reverse("mappings-models"),
        reverse("mappings-model-detail", args=[deal.pk]),
        reverse("mappings-mapper", args=[flow.mapping_id]),
        reverse("mappings-history", args=[flow.mapping_id]),
        reverse("dlq-inbox"),
        reverse("dlq-detail", args=[world["letter"].pk]),
        reverse("hub-users"),
        reverse("hub-history"),
        reverse("hub-history-event", args=[world["letter"].delivery.event_id]),
        reverse("hub-audit"),
    ]


def test_every_link_on_the_main_pages_answers(client, personas, world):
    client.force_login(personas["admin"])
    targets: dict[str, str] = {}
    for page in main_pages(world):
        response = client.get(page)
        assert response.status_code == 200, f"{page} answered {response.status_code}"
        for href in parse(response).hrefs:
            url = urljoin(f"http://testserver{page}", href)
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc == "testserver":
                targets.setdefault(parts.path + (f"?{parts.query}" if parts.query else ""), page)
    assert len(targets) > 30  # the walk found the pages' links, not an empty shell

    broken = []
    static = "/" + settings.STATIC_URL.lstrip("/")
    for url, found_on in sorted(targets.items()):
        if url.startswith(static):
            if finders.find(urlsplit(url).path.removeprefix(static)) is None:
                broken.append(f"{url} (on {found_on}): no such static file")
            continue
        status = client.get(url).status_code
        if status not in (200, 302):
            broken.append(f"{url} (on {found_on}): {status}")
    assert broken == []
    assert DeadLetter.objects.get().resolved_at is None  # walking the links changed nothing
