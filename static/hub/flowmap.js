/* The data-flow map: systems as nodes, flows as directed edges coloured by health.
   Drawn with cytoscape (vendored) and laid out left to right by dagre; the colours are refreshed
   from the map's JSON every 15 seconds without reloading the page. */
(function () {
  "use strict";

  const container = document.getElementById("flowmap");
  if (!container || !window.cytoscape) return;

  const COLORS = {
    ok: "#1f8a4c",
    failing: "#c8382e",
    paused: "#7b8494",
    silent: "#c98a1b",
    draft: "#9aa3af",
    idle: "#9aa3af",
  };
  const HEALTH = Object.keys(COLORS);
  const info = document.getElementById("map-info");
  const updated = document.getElementById("map-updated");
  const defaultInfo = info ? info.innerHTML : "";
  let data = JSON.parse(document.getElementById("flowmap-data").textContent);

  const FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
  const measure = document.createElement("canvas").getContext("2d");
  measure.font = `14px ${FONT}`;

  // Two short lines ("deal.won" over "real-time") keep labels narrower than the edges they sit on.
  function edgeData(e) {
    return Object.assign({}, e, { color: COLORS[e.health] || COLORS.idle, text: e.label.split(" · ").join("\n") });
  }

  function elements(d) {
    const nodes = d.nodes.map((n) => {
      // The kind adds nothing when the system is named after it ("HR", kind HR).
      const kindLine = n.kind === "Other" ? "system" : `${n.kind} system`;
      const lines = n.label.toLowerCase() === n.kind.toLowerCase() ? [n.label] : [n.label, kindLine];
      const width = Math.max(...lines.map((line) => measure.measureText(line).width));
      return {
        group: "nodes",
        data: { id: n.id, label: lines.join("\n"), name: n.label, kind: n.kind, url: n.url, w: width + 28, h: 52 },
      };
    });
    const edges = d.edges.map((e) => ({
      group: "edges",
      data: edgeData(e),
      classes: e.health,
    }));
    return nodes.concat(edges);
  }

  const layout = {
    name: "dagre",
    rankDir: "LR",
    // Greedy cycle breaking keeps a map full of two-way flows compact; without it dagre stretches
    // the ranks across the page and the fitted picture becomes too small to read.
    acyclicer: "greedy",
    nodeSep: 70,
    edgeSep: 30,
    rankSep: 130,
    padding: 40,
    fit: true,
    animate: false,
    // dagre's route for each edge; used for edges that span ranks (see runLayout).
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
        selector: "node",
        style: {
          shape: "round-rectangle",
          "background-color": "#ffffff",
          "border-width": 2,
          "border-color": "#3056d3",
          label: "data(label)",
          "text-wrap": "wrap",
          "text-valign": "center",
          "text-halign": "center",
          "font-size": 14,
          "font-family": FONT,
          color: "#1d2330",
          width: "data(w)",
          height: "data(h)",
          "line-height": 1.35,
        },
      },
      {
        selector: "edge",
        style: {
          "curve-style": "bezier",
          // Parallel flows between the same two systems fan out instead of drawing over each other.
          "control-point-step-size": 56,
          width: 2.5,
          "line-color": "data(color)",
          "target-arrow-color": "data(color)",
          "target-arrow-shape": "triangle",
          "arrow-scale": 1.2,
          label: "data(text)",
          "text-wrap": "wrap",
          "font-size": 12,
          "min-zoomed-font-size": 6,
          "font-family": FONT,
          color: "#1d2330",
          "text-rotation": "autorotate",
          "text-background-color": "#ffffff",
          "text-background-opacity": 0.92,
          "text-background-padding": "2px",
          "text-background-shape": "roundrectangle",
          "text-border-color": "data(color)",
          "text-border-width": 1,
          "text-border-opacity": 0.6,
        },
      },
      {
        // A flow within one system (e.g. CRM to CRM) loops above its node, clear of the label.
        selector: "edge:loop",
        style: {
          "control-point-step-size": 90,
          "edge-distances": "node-position",
          "loop-direction": "0deg",
          "loop-sweep": "-40deg",
        },
      },
      {
        // An edge that skips a rank follows dagre's route around the systems in between instead of
        // crossing them; neighbours keep plain bezier curves, which fan parallel flows apart.
        selector: "edge.routed",
        style: {
          "curve-style": "unbundled-bezier",
          "control-point-weights": (edge) => edge.scratch("controlPointWeights"),
          "control-point-distances": (edge) => edge.scratch("controlPointDistances"),
          "edge-distances": "intersection",
        },
      },
      { selector: "edge.failing", style: { width: 3.5 } },
      { selector: "edge.paused", style: { "line-style": "solid", "line-opacity": 0.8 } },
      { selector: "edge.draft, edge.idle", style: { "line-style": "dashed", "line-dash-pattern": [7, 5] } },
      { selector: "node.hover", style: { "border-width": 3, "background-color": "#e8eeff" } },
      { selector: "edge.hover", style: { width: 5, "z-index": 10, "font-weight": "bold" } },
      { selector: ".faded", style: { opacity: 0.18 } },
    ],
  });

  function runLayout() {
    cy.layout(layout).run();
    cy.edges().forEach((edge) => {
      const distances = edge.scratch("controlPointDistances") || [];
      edge.toggleClass("routed", !edge.isLoop() && distances.some((d) => Math.abs(d) > 12));
    });
    // A small map is not blown up to fill the screen.
    if (cy.zoom() > 1.2) {
      cy.zoom(1.2);
      cy.center();
    }
  }
  runLayout();

  function describe(edge) {
    const d = edge.data();
    const counts = `${d.succeeded} delivered, ${d.failed} failed, ${d.waiting} waiting in the last 24 h`;
    return (
      `<span class="badge ${d.health}">${escapeHtml(d.health_label)}</span> ` +
      `<strong>${escapeHtml(d.name)}</strong> · ${escapeHtml(d.what)} · ${escapeHtml(d.consistency)}` +
      `<br><span class="muted">${escapeHtml(String(d.reason).replace(/\.$/, ""))} · ${counts}.</span>`
    );
  }

  function escapeHtml(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }

  // Pointing at something highlights it and its neighbours; clicking opens its page.
  cy.on("mouseover", "node, edge", (event) => {
    const target = event.target;
    const near = target.isNode() ? target.closedNeighborhood() : target.union(target.connectedNodes());
    cy.elements().not(near).addClass("faded");
    target.addClass("hover");
    container.style.cursor = target.isNode() && !target.data("url") ? "default" : "pointer";
    if (info) {
      info.innerHTML = target.isEdge()
        ? describe(target)
        : `<strong>${escapeHtml(target.data("name"))}</strong> (${escapeHtml(target.data("kind"))}) · ` +
          `${target.outgoers("edge").length} flows out, ${target.incomers("edge").length} in`;
    }
  });
  cy.on("mouseout", "node, edge", (event) => {
    cy.elements().removeClass("faded");
    event.target.removeClass("hover");
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
        const edge = cy.getElementById(e.id);
        edge.data(edgeData(e));
        HEALTH.forEach((state) => edge.toggleClass(state, state === e.health));
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
  if (fit) fit.addEventListener("click", () => cy.fit(undefined, 30));

  const png = document.getElementById("map-png");
  if (png) {
    png.addEventListener("click", () => {
      const blob = cy.png({ full: true, scale: 2, bg: "#ffffff", output: "blob" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = "data-flow-map.png";
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    });
  }

  window.hubFlowMap = cy; // for tests and the curious
})();
