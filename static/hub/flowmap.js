/* The data-flow map: systems as nodes, each flow as an arrow from its source to its target with a
   label in the middle (its name, icon and consistency), styled by health.

   Each label is a node of its own, so dagre lays the labels out with the systems: no two overlap,
   however many flows join the same two systems. The arrow is drawn in two legs, source -> label
   and label -> target. Laid out left to right; the map grows taller rather than shrinking its
   text; the styles are refreshed from the map's JSON every 15 seconds without reloading. */
(function () {
  "use strict";

  const container = document.getElementById("flowmap");
  if (!container || !window.cytoscape) return;

  // Health is told by colour, line style and icon together (the icon comes with the JSON).
  const STYLES = {
    ok: { color: "#1f8a4c", line: "solid", dash: [], width: 2.5, border: "solid", fill: "#ffffff" },
    failing: { color: "#c8382e", line: "solid", dash: [], width: 4, border: "double", fill: "#fdeceb" },
    paused: { color: "#6b7280", line: "dashed", dash: [0.5, 6], width: 3.5, border: "dotted", fill: "#f2f3f5" },
    silent: { color: "#b7791f", line: "dashed", dash: [4, 4], width: 2.5, border: "dashed", fill: "#fdf3e1" },
    draft: { color: "#9aa3af", line: "dashed", dash: [10, 6], width: 2, border: "dashed", fill: "#f5f6f8" },
    idle: { color: "#4f79b5", line: "solid", dash: [], width: 1.5, border: "solid", fill: "#ffffff" },
  };
  const HEALTH = Object.keys(STYLES);
  const info = document.getElementById("map-info");
  const updated = document.getElementById("map-updated");
  const defaultInfo = info ? info.innerHTML : "";
  let data = JSON.parse(document.getElementById("flowmap-data").textContent);

  const FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
  const FLOW_FONT_SIZE = 13;
  const LINE_HEIGHT = 1.3;
  const LABEL_MAX_WIDTH = 130; // a flow's name wraps onto more lines beyond this
  const PADDING = 30;
  const MAX_HEIGHT = 2400;
  const measure = document.createElement("canvas").getContext("2d");

  function textWidth(text, size, weight) {
    measure.font = `${weight || "normal"} ${size}px ${FONT}`;
    return measure.measureText(text).width;
  }

  // Words onto lines no wider than `max`; a single word wider than that keeps a line of its own.
  function wrap(text, max, size) {
    const lines = [];
    let line = "";
    text.split(/\s+/).forEach((word) => {
      const next = line ? `${line} ${word}` : word;
      if (line && textWidth(next, size) > max) {
        lines.push(line);
        line = word;
      } else {
        line = next;
      }
    });
    if (line) lines.push(line);
    // A short last word ("00") joins the line before rather than standing alone.
    const last = lines.length - 1;
    if (last > 0 && textWidth(`${lines[last - 1]} ${lines[last]}`, size) <= max * 1.2) {
      lines.splice(last - 1, 2, `${lines[last - 1]} ${lines[last]}`);
    }
    return lines;
  }

  // The icon takes the same room whichever state it shows, so a change of health needs no new layout.
  const ICON_ROOM = Math.max(...data.legend.map((item) => textWidth(`${item.icon} `, FLOW_FONT_SIZE)));

  function flowLabel(e) {
    const style = STYLES[e.health] || STYLES.idle;
    const lines = wrap(e.name, LABEL_MAX_WIDTH - ICON_ROOM, FLOW_FONT_SIZE);
    lines[0] = `${e.icon} ${lines[0]}`;
    lines.push(e.frequency);
    const width = Math.max(...lines.map((line) => textWidth(line, FLOW_FONT_SIZE))) + ICON_ROOM;
    return {
      text: lines.join("\n"),
      w: Math.ceil(width) + 20,
      h: Math.ceil(lines.length * FLOW_FONT_SIZE * LINE_HEIGHT) + 14,
      color: style.color,
      border: style.border,
      fill: style.fill,
    };
  }

  // Which flows run against the map's left-to-right direction, from a first layout of the systems
  // alone. Those are laid out in reverse (their arrow still points at their target), so that each
  // label sits between its two systems rather than beyond one of them, which widens the map.
  let backward = new Set();
  function backwardFlows(d) {
    const probe = window.cytoscape({
      headless: true,
      elements: d.nodes
        .map((n) => ({ group: "nodes", data: { id: n.id } }))
        .concat(d.edges.map((e) => ({ group: "edges", data: { id: e.id, source: e.source, target: e.target } }))),
    });
    probe.layout({ name: "dagre", rankDir: "LR", acyclicer: "greedy", fit: false, animate: false }).run();
    const x = (id) => probe.getElementById(id).position("x");
    const found = new Set(d.edges.filter((e) => x(e.source) > x(e.target)).map((e) => e.id));
    probe.destroy();
    return found;
  }

  // How a leg looks; its ends are fixed when it is made (cytoscape moves no edge through data()).
  function legLook(e) {
    const style = STYLES[e.health] || STYLES.idle;
    return {
      color: style.color,
      line: style.line,
      dash: style.dash.length ? style.dash : [1, 0],
      width: style.width,
    };
  }

  function legData(e, leg) {
    const [from, to] = leg === "out" ? [e.source, e.id] : [e.id, e.target];
    const reversed = backward.has(e.id);
    return Object.assign(
      { id: `${e.id}-${leg}`, flow: e.id, source: reversed ? to : from, target: reversed ? from : to, url: e.url },
      legLook(e),
    );
  }

  function elements(d) {
    backward = backwardFlows(d);
    const systems = d.nodes.map((n) => {
      // The kind adds nothing when the system is named after it ("HR", kind HR).
      const kindLine = n.kind === "Other" ? "system" : `${n.kind} system`;
      const lines = n.label.toLowerCase() === n.kind.toLowerCase() ? [n.label] : [n.label, kindLine];
      const width = Math.max(textWidth(lines[0], 15, "bold"), ...lines.slice(1).map((line) => textWidth(line, 13)));
      return {
        group: "nodes",
        classes: "system",
        data: { id: n.id, label: lines.join("\n"), name: n.label, kind: n.kind, url: n.url, w: width + 32, h: 20 + lines.length * 19 },
      };
    });
    const flows = d.edges.map((e) => ({
      group: "nodes",
      classes: `flow ${e.health}`,
      data: Object.assign({}, e, flowLabel(e)),
    }));
    const legs = [];
    d.edges.forEach((e) => {
      legs.push({ group: "edges", classes: `leg ${e.health}`, data: legData(e, "out") });
      const arrow = backward.has(e.id) ? "into-target reversed" : "into-target";
      legs.push({ group: "edges", classes: `leg ${arrow} ${e.health}`, data: legData(e, "in") });
    });
    return systems.concat(flows, legs);
  }

  const layout = {
    name: "dagre",
    rankDir: "LR",
    // Greedy cycle breaking keeps a map full of two-way flows compact.
    acyclicer: "greedy",
    nodeSep: 16,
    edgeSep: 12,
    rankSep: 36,
    padding: PADDING,
    fit: true,
    animate: false,
    // dagre's route for each leg; used for legs that span ranks (see runLayout).
    useDagreEdgeControlPoints: true,
    automaticDagreEdgeStyle: false,
  };

  const cy = window.cytoscape({
    container: container,
    elements: elements(data),
    layout: { name: "preset" },
    minZoom: 0.2,
    maxZoom: 2.5,
    style: [
      {
        selector: "node.system",
        style: {
          shape: "round-rectangle",
          "background-color": "#e8eeff",
          "border-width": 2,
          "border-color": "#3056d3",
          label: "data(label)",
          "text-wrap": "wrap",
          "text-valign": "center",
          "text-halign": "center",
          "font-size": 14,
          "font-weight": "bold",
          "font-family": FONT,
          color: "#1d2330",
          width: "data(w)",
          height: "data(h)",
          "line-height": 1.35,
        },
      },
      {
        selector: "node.flow",
        style: {
          shape: "round-rectangle",
          "background-color": "data(fill)",
          "border-width": 2,
          "border-color": "data(color)",
          "border-style": "data(border)",
          label: "data(text)",
          "text-wrap": "wrap",
          "text-valign": "center",
          "text-halign": "center",
          "font-size": FLOW_FONT_SIZE,
          "font-family": FONT,
          "line-height": LINE_HEIGHT,
          color: "#1d2330",
          width: "data(w)",
          height: "data(h)",
        },
      },
      // A double line needs room to show as two.
      { selector: "node.flow.failing", style: { "border-width": 5 } },
      { selector: "node.flow.draft", style: { color: "#4b5563" } },
      {
        selector: "edge",
        style: {
          "curve-style": "bezier",
          width: "data(width)",
          "line-color": "data(color)",
          "line-style": "data(line)",
          "line-dash-pattern": "data(dash)",
          "line-cap": "round",
          "target-arrow-shape": "none",
        },
      },
      {
        selector: "edge.into-target",
        style: { "target-arrow-shape": "triangle", "target-arrow-color": "data(color)", "arrow-scale": 1.1 },
      },
      {
        // Laid out from the target to the label (see backwardFlows): the arrow is at its source end.
        selector: "edge.into-target.reversed",
        style: { "target-arrow-shape": "none", "source-arrow-shape": "triangle", "source-arrow-color": "data(color)" },
      },
      {
        // A leg that skips a rank follows dagre's route around the nodes in between.
        selector: "edge.routed",
        style: {
          "curve-style": "unbundled-bezier",
          "control-point-weights": (edge) => edge.scratch("controlPointWeights"),
          "control-point-distances": (edge) => edge.scratch("controlPointDistances"),
          "edge-distances": "intersection",
        },
      },
      { selector: "node.hover", style: { "border-width": 3, "underlay-color": "#3056d3", "underlay-opacity": 0.12, "underlay-padding": 4 } },
      { selector: "edge.hover", style: { width: 4.5, "z-index": 10 } },
      { selector: ".faded", style: { opacity: 0.18 } },
    ],
  });

  function defaultHeight() {
    return Math.max(460, window.innerHeight - 270);
  }

  // Fit the picture to the width; when that would shrink the text below its size, the map grows
  // taller (up to MAX_HEIGHT) and the page scrolls instead.
  function fitReadably() {
    const box = cy.elements().boundingBox();
    const zoom = Math.min(1, (container.clientWidth - 2 * PADDING) / Math.max(box.w, 1));
    const wanted = Math.ceil(box.h * zoom + 2 * PADDING);
    container.style.height = `${Math.min(MAX_HEIGHT, Math.max(defaultHeight(), wanted))}px`;
    cy.resize();
    cy.fit(undefined, PADDING);
    // A small map is not blown up to fill the screen.
    if (cy.zoom() > 1.2) {
      cy.zoom(1.2);
      cy.center();
    }
  }

  function runLayout() {
    cy.layout(layout).run();
    cy.edges().forEach((edge) => {
      const distances = edge.scratch("controlPointDistances") || [];
      edge.toggleClass("routed", distances.some((d) => Math.abs(d) > 12));
    });
    fitReadably();
  }
  runLayout();

  function escapeHtml(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }

  function describe(flow) {
    const d = flow.data();
    const counts = `${d.succeeded} delivered, ${d.failed} failed, ${d.waiting} waiting in the last 24 h`;
    return (
      `<span class="badge ${d.health}">${escapeHtml(d.health_label)}</span> ` +
      `<strong>${escapeHtml(d.name)}</strong> · ${escapeHtml(d.what)} · on ${escapeHtml(d.event)} · ${escapeHtml(d.consistency)}` +
      `<br><span class="muted">${escapeHtml(String(d.reason).replace(/\.$/, ""))} · ${counts}.</span>`
    );
  }

  // The flow a label or a leg stands for.
  function flowOf(target) {
    return target.isEdge() ? cy.getElementById(target.data("flow")) : target;
  }

  // Pointing at something highlights it and what it joins; clicking opens its page.
  cy.on("mouseover", "node, edge", (event) => {
    const target = event.target;
    const isSystem = target.hasClass("system");
    const shown = isSystem ? target : flowOf(target);
    // A system with its flows and the systems at their other ends; a flow with its two systems.
    const near = isSystem
      ? target.closedNeighborhood().closedNeighborhood()
      : shown.closedNeighborhood();
    cy.elements().not(near).addClass("faded");
    shown.addClass("hover");
    shown.connectedEdges().addClass("hover");
    container.style.cursor = "pointer";
    if (info) {
      info.innerHTML = isSystem
        ? `<strong>${escapeHtml(target.data("name"))}</strong> (${escapeHtml(target.data("kind"))}) · ` +
          `${target.outgoers("node.flow").length} flows out, ${target.incomers("node.flow").length} in`
        : describe(shown);
    }
  });
  cy.on("mouseout", "node, edge", () => {
    cy.elements().removeClass("faded hover");
    container.style.cursor = "default";
    if (info) info.innerHTML = defaultInfo;
  });
  cy.on("tap", "node, edge", (event) => {
    const url = event.target.data("url");
    if (url) window.location.assign(url);
  });

  function topology(d) {
    return JSON.stringify([
      d.nodes.map((n) => n.id + n.label + n.kind),
      d.edges.map((e) => e.id + e.source + e.target + e.label),
    ]);
  }

  function refresh(next) {
    if (topology(next) !== topology(data)) {
      cy.elements().remove();
      cy.add(elements(next));
      runLayout();
    } else {
      next.edges.forEach((e) => {
        const flow = cy.getElementById(e.id);
        flow.data(Object.assign({}, e, flowLabel(e)));
        flow.connectedEdges().data(legLook(e));
        HEALTH.forEach((state) => flow.union(flow.connectedEdges()).toggleClass(state, state === e.health));
      });
    }
    // Keep the list view's badges in step with the picture.
    next.edges.forEach((e) => {
      const badge = document.querySelector(`tr[data-edge="${e.id}"] .badge`);
      if (badge) {
        badge.className = `badge ${e.health}`;
        badge.textContent = e.health_label;
        badge.title = e.reason;
      }
    });
    data = next;
    if (updated) {
      const at = new Date(next.generated_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      updated.textContent = `${next.nodes.length} systems · ${next.edges.length} flows · updated ${at}`;
    }
  }

  const every = (data.refresh_seconds || 15) * 1000;
  window.setInterval(() => {
    if (document.hidden) return;
    fetch(container.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : null))
      .then((next) => next && refresh(next))
      .catch(() => {});
  }, every);

  const fit = document.getElementById("map-fit");
  if (fit) fit.addEventListener("click", () => cy.fit(undefined, PADDING));

  // --- the downloaded image: a title, the map, and the legend drawn under it ---------------------

  const SCALE = 2;

  // The legend's items laid out in rows no wider than `width` (in unscaled pixels).
  function legendRows(ctx, width) {
    const rows = [[]];
    let x = 0;
    data.legend.forEach((item) => {
      const itemWidth = 36 + ctx.measureText(`${item.icon} ${item.label}`).width + 28;
      if (x + itemWidth > width && rows[rows.length - 1].length) {
        rows.push([]);
        x = 0;
      }
      rows[rows.length - 1].push(item);
      x += itemWidth;
    });
    return rows;
  }

  function drawLegend(ctx, top, width) {
    ctx.font = `14px ${FONT}`;
    ctx.textBaseline = "middle";
    legendRows(ctx, width - 2 * PADDING).forEach((row, i) => {
      const y = top + 14 + i * 28;
      let x = PADDING;
      row.forEach((item) => {
        const style = STYLES[item.state] || STYLES.idle;
        ctx.strokeStyle = style.color;
        ctx.lineWidth = style.width;
        ctx.lineCap = "round";
        ctx.setLineDash(style.dash);
        ctx.beginPath();
        ctx.moveTo(x, y);
        ctx.lineTo(x + 28, y);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#1d2330";
        const text = `${item.icon} ${item.label}`;
        ctx.fillText(text, x + 36, y);
        x += 36 + ctx.measureText(text).width + 28;
      });
    });
  }

  function mapImage() {
    return new Promise((resolve, reject) => {
      const picture = new Image();
      picture.onerror = reject;
      picture.onload = () => {
        const width = Math.max(picture.width / SCALE, 640);
        const measureCtx = document.createElement("canvas").getContext("2d");
        measureCtx.font = `14px ${FONT}`;
        const legendHeight = 28 * legendRows(measureCtx, width - 2 * PADDING).length + 20;
        const titleHeight = 48;
        const canvas = document.createElement("canvas");
        canvas.width = Math.ceil(width * SCALE);
        canvas.height = Math.ceil((titleHeight + picture.height / SCALE + legendHeight) * SCALE);
        const ctx = canvas.getContext("2d");
        ctx.scale(SCALE, SCALE);
        ctx.fillStyle = "#ffffff";
        ctx.fillRect(0, 0, width, canvas.height / SCALE);
        ctx.fillStyle = "#1d2330";
        ctx.font = `bold 18px ${FONT}`;
        ctx.textBaseline = "middle";
        const when = new Date(data.generated_at).toLocaleString();
        ctx.fillText(`Data-flow map · ${data.nodes.length} systems · ${data.edges.length} flows · ${when}`, PADDING, titleHeight / 2);
        ctx.drawImage(picture, 0, titleHeight, picture.width / SCALE, picture.height / SCALE);
        const legendTop = titleHeight + picture.height / SCALE;
        ctx.strokeStyle = "#e2e6eb";
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(PADDING, legendTop);
        ctx.lineTo(width - PADDING, legendTop);
        ctx.stroke();
        drawLegend(ctx, legendTop + 6, width);
        canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("no image"))), "image/png");
      };
      picture.src = cy.png({ full: true, scale: SCALE, bg: "#ffffff", output: "base64uri" });
    });
  }

  const png = document.getElementById("map-png");
  if (png) {
    png.addEventListener("click", () => {
      mapImage().then((blob) => {
        const link = document.createElement("a");
        link.href = URL.createObjectURL(blob);
        link.download = "data-flow-map.png";
        document.body.appendChild(link);
        link.click();
        link.remove();
        window.setTimeout(() => URL.revokeObjectURL(link.href), 1000);
      });
    });
  }

  window.hubFlowMap = cy; // for tests and the curious
  window.hubFlowMapImage = mapImage;
})();
