"""The data-flow map stays readable at 10 systems and 40 flows: no label covers another, each
flow is labelled with its name and consistency, every health looks different (not by colour
alone), the legend is on the page and in the downloaded image."""

import struct

import pytest
from playwright.sync_api import expect

from hub.models import Flow, FlowState
from tests.factories import flows_for_map

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every node (systems and flow labels) and every edge that has a label, with its label's box.
LABEL_BOXES = """() => {
  const cy = window.hubFlowMap;
  const boxes = cy.nodes().map((n) => ({ id: n.id(), box: n.boundingBox({ includeLabels: true, includeOverlays: false }) }));
  cy.edges().filter((e) => e.style("label")).forEach((e) => boxes.push({
    id: e.id(), box: e.boundingBox({ includeLabels: true, includeNodes: false, includeEdges: false, includeOverlays: false }),
  }));
  return boxes;
}"""


def overlapping(boxes: list[dict]) -> list[tuple[str, str]]:
    pairs = []
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            a, b = first["box"], second["box"]
            if a["x1"] < b["x2"] and b["x1"] < a["x2"] and a["y1"] < b["y2"] and b["y1"] < a["y2"]:
                pairs.append((first["id"], second["id"]))
    return pairs


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def crowded_map(sign_in, personas, live_server):
    flows = flows_for_map(systems=10, flows=40)
    page = sign_in(personas["auditor"])
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/flows/map/")
    page.wait_for_function("() => window.hubFlowMap && window.hubFlowMap.nodes('.flow').length === 40")
    return page, flows


def test_no_two_labels_overlap_at_ten_systems_and_forty_flows(crowded_map):
    page, _ = crowded_map
    boxes = page.evaluate(LABEL_BOXES)
    assert len(boxes) == 50  # 10 systems and 40 flow labels
    assert overlapping(boxes) == []
    # Readable without zooming in: the text is drawn at no less than 70% of its size (9 px and up).
    assert page.evaluate("() => window.hubFlowMap.zoom()") >= 0.7


def test_each_flow_is_labelled_with_its_name_and_consistency(crowded_map):
    page, flows = crowded_map
    labels = page.evaluate(
        "() => window.hubFlowMap.nodes('.flow').map((n) => n.data('text').replace(/\\n/g, ' '))"
    )
    for flow in flows:
        frequency = "every 15 min" if flow.schedule_minutes else "real-time"
        assert any(flow.name in label and label.endswith(frequency) for label in labels), flow.name


def test_draft_and_no_traffic_yet_differ_in_more_than_colour(crowded_map):
    page, _ = crowded_map
    look = page.evaluate("""() => {
      const cy = window.hubFlowMap;
      const of = (state) => {
        const flow = cy.nodes(`.flow.${state}`)[0];
        const leg = flow.connectedEdges()[0];
        return { icon: flow.data("text")[0], border: flow.style("border-style"),
                 line: leg.style("line-style"), dash: leg.style("line-dash-pattern") };
      };
      return { draft: of("draft"), idle: of("idle"), ok: of("ok"), failing: of("failing"), paused: of("paused") };
    }""")
    assert look["draft"]["icon"] != look["idle"]["icon"]
    assert look["draft"]["border"] != look["idle"]["border"]
    assert (look["draft"]["line"], look["draft"]["dash"]) != (look["idle"]["line"], look["idle"]["dash"])
    icons = {state: shown["icon"] for state, shown in look.items()}
    assert len(set(icons.values())) == len(icons)


def test_the_legend_is_on_the_page_and_in_the_downloaded_image(crowded_map):
    page, _ = crowded_map
    legend = page.get_by_label("Legend")
    for words in ("Working", "Failing", "Paused", "Silent", "Draft", "No traffic yet"):
        expect(legend).to_contain_text(words)
    map_only = page.evaluate("""() => new Promise((resolve) => {
      const image = new Image();
      image.onload = () => resolve([image.width, image.height]);
      image.src = window.hubFlowMap.png({ full: true, scale: 2, output: "base64uri" });
    })""")
    # The legend band under the map holds each health's line colour (drawn on the canvas).
    colours = page.evaluate("""async () => {
      const bitmap = await createImageBitmap(await window.hubFlowMapImage());
      const canvas = document.createElement("canvas");
      canvas.width = bitmap.width; canvas.height = bitmap.height;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(bitmap, 0, 0);
      const band = ctx.getImageData(0, bitmap.height - 80, bitmap.width, 80).data;
      const seen = new Set();
      for (let i = 0; i < band.length; i += 4) seen.add(`${band[i]},${band[i + 1]},${band[i + 2]}`);
      return ["31,138,76", "200,56,46", "79,121,181", "154,163,175"].filter((c) => seen.has(c));
    }""")
    assert len(colours) == 4  # working, failing, no traffic yet, draft
    with page.expect_download() as download:
        page.get_by_role("button", name="Download image").click()
    assert download.value.suggested_filename == "data-flow-map.png"
    width, height = png_size(open(download.value.path(), "rb").read())
    assert width >= map_only[0] and height > map_only[1] + 100  # a title above, the legend below


def test_pointing_at_a_flow_label_explains_it_and_clicking_opens_the_flow(crowded_map, live_server):
    page, flows = crowded_map
    failing = next(f for f in flows if f.name.endswith(" 00"))
    where = page.evaluate(
        """(id) => {
          const node = window.hubFlowMap.getElementById(id);
          const map = document.getElementById("flowmap");
          const top = map.getBoundingClientRect().top + window.scrollY;
          window.scrollTo(0, top + node.renderedPosition().y - window.innerHeight / 2);
          const box = map.getBoundingClientRect();
          const at = node.renderedPosition();
          return { x: box.left + at.x, y: box.top + at.y };
        }""",
        f"flow-{failing.pk}",
    )
    page.mouse.move(where["x"], where["y"])
    info = page.locator("#map-info")
    expect(info).to_contain_text(failing.name)
    expect(info).to_contain_text("Failing")
    expect(info).to_contain_text("Every 15 minutes")
    page.mouse.click(where["x"], where["y"])
    page.wait_for_url(f"{live_server.url}/flows/{failing.pk}/")


def test_a_change_of_health_restyles_the_flow_without_a_reload(crowded_map, live_server):
    page, flows = crowded_map
    working = next(f for f in flows if f.name.endswith(" 03"))
    page.clock.install()
    page.goto(f"{live_server.url}/flows/map/")
    page.wait_for_function("() => window.hubFlowMap && window.hubFlowMap.nodes('.flow').length === 40")
    look = f"() => {{ const n = window.hubFlowMap.getElementById('flow-{working.pk}'); return [n.classes(), n.data('text')[0], n.connectedEdges()[0].data('line')]; }}"
    classes, icon, _ = page.evaluate(look)
    assert "ok" in classes and icon == "✓"
    Flow.objects.filter(pk=working.pk).update(state=FlowState.PAUSED)
    page.clock.fast_forward("00:16")
    expect(page.locator(f'tr[data-edge="flow-{working.pk}"] .badge')).to_have_text("Paused")
    classes, icon, line = page.evaluate(look)
    assert "paused" in classes and "ok" not in classes and icon == "‖" and line == "dashed"
