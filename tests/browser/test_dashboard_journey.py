"""An auditor opens a flow's page and a system's page and sees their metrics drawn as charts,
switches the range, and the page logs no error."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from hub.metrics.recording import DeliveryTally
from hub.models import Delivery
from hub.pipeline import clock
from hub.pipeline.ingest import IncomingEvent, events_store
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def flow_with_traffic():
    source = model_with_fields(SystemFactory(slug="crm", name="CRM"), "Deal", "/deals", "id! name")
    target = model_with_fields(SystemFactory(slug="books", name="Books"), "Invoice", "/invoices", "name")
    flow = flow_with_mapping(
        source_model=source,
        target_model=target,
        rules=[{"target": "name", "source": "name"}],
        name="Deals to Books",
    )
    events_store([IncomingEvent(source.system, "deal.won", f"d{n}", {"id": n}) for n in range(6)])
    tally = DeliveryTally(clock.now() + timedelta(milliseconds=800))
    deliveries = list(Delivery.objects.select_related("event").order_by("pk"))
    for delivery in deliveries[:4]:
        tally.succeeded(delivery)
    tally.failed(flow.pk, "timeout", dead=False)
    tally.save()
    return flow


def test_it_draws_a_flows_charts_and_redraws_them_for_another_range(
    live_server, sign_in, personas, flow_with_traffic
):
    page = sign_in(personas["auditor"])
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/flows/{flow_with_traffic.pk}/")
    dashboard = page.locator("#dashboard")
    for chart in ("volume", "errors", "latency"):
        expect(dashboard.locator(f'[data-chart="{chart}"] canvas')).to_be_visible()
    expect(dashboard.locator('[data-part="now"]')).to_contain_text("Due now")
    dashboard.get_by_role("button", name="Hour").click()
    expect(dashboard.get_by_role("button", name="Hour")).to_have_attribute("aria-pressed", "true")
    expect(dashboard.locator('[data-chart="volume"] canvas')).to_be_visible()
    expect(dashboard.locator('[data-chart="volume"] .u-legend')).to_contain_text("delivered")

    page.goto(f"{live_server.url}/systems/{flow_with_traffic.source_system_id}/")
    expect(page.locator('#dashboard [data-chart="volume"] canvas')).to_be_visible()
    assert problems == []
