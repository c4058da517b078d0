// Dashboards (templates/hub/_dashboard.html): fetch the flow's or system's metrics as JSON for the
// chosen range, draw them with uPlot (static/vendor), and fetch again every few seconds.
(() => {
  "use strict";
  const COLORS = {
    queued: "#2f6fdb", received: "#2f6fdb", succeeded: "#1f8a4c", dead_lettered: "#c8382e",
    filtered_out: "#9aa3af", not_subscribed: "#b7791f", duplicates: "#7c5cc4",
    p50: "#2f6fdb", p95: "#b7791f", p99: "#c8382e", average: "#2f6fdb", highest: "#9aa3af",
  };
  const CLASS_COLORS = ["#c8382e", "#b7791f", "#7c5cc4", "#2f6fdb", "#0f8c8c", "#d0508a", "#6b7280", "#8a6d1f", "#1f8a4c", "#333"];
  const LABELS = {
    queued: "queued", received: "events received", succeeded: "delivered", dead_lettered: "dead-lettered",
    filtered_out: "filtered out", not_subscribed: "no flow subscribed", duplicates: "repeats",
    average: "average", highest: "highest",
  };
  const REFRESH_MS = { hour: 10000, day: 60000, week: 60000, month: 60000 };

  function ago(iso) {
    if (!iso) return "never";
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 90) return `${Math.round(seconds)} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} days ago`;
  }

  function chartSeries(kind, data) {
    // [[key, label, values, color]] for each chart of the dashboard.
    // A system's chart: the events it sent, then what was delivered into it.
    const shown = kind === "system" ? ["succeeded", "dead_lettered"] : Object.keys(data.volume);
    const volume = shown.map((k) => [k, LABELS[k] || k, data.volume[k], COLORS[k]]);
    if (kind === "system") {
      for (const k of ["duplicates", "filtered_out", "not_subscribed", "received"]) {
        volume.unshift([`events_${k}`, k === "filtered_out" ? "events filtered out" : LABELS[k], data.events[k], COLORS[k]]);
      }
    }
    const errors = Object.entries(data.errors).map(([k, v], i) => [k, k.replace(/_/g, " "), v, CLASS_COLORS[i % CLASS_COLORS.length]]);
    const latency = Object.entries(data.latency_ms).map(([k, v]) => [k, k, v, COLORS[k]]);
    const queue = Object.entries(data.queue).map(([k, v]) => [k, LABELS[k], v, COLORS[k]]);
    return { volume, errors, latency, queue };
  }

  function hasValues([, , values]) {
    return values.some((v) => v !== null && v !== 0);
  }

  function milliseconds(u, splits) {
    return splits.map((v) => (v == null ? "" : v >= 1000 ? `${v / 1000} s` : `${v} ms`));
  }

  function draw(state, name, times, allSeries, log) {
    const series = allSeries.filter(hasValues); // a line at zero all along says nothing
    const plot = state.root.querySelector(`[data-chart="${name}"] .plot`);
    const width = Math.max(240, plot.clientWidth || 400);
    const key = `${state.range}|${series.map((s) => s[0]).join(",")}|${log}`;
    const old = state.charts[name];
    if (!series.length) {
      if (old) old.plot.destroy();
      delete state.charts[name];
      plot.innerHTML = '<p class="empty">Nothing in this range.</p>';
      return;
    }
    const data = [times, ...series.map((s) => s[2])];
    if (old && old.key === key) {
      old.plot.setData(data);
      return;
    }
    if (old) old.plot.destroy();
    plot.innerHTML = "";
    const opts = {
      width, height: 200,
      scales: { x: { time: true }, y: log ? { distr: 3 } : { range: (u, min, max) => [0, Math.max(1, max)] } },
      series: [{}, ...series.map(([, label, , color]) => ({ label, stroke: color, width: 1.5, spanGaps: false, points: { size: 4 } }))],
      axes: [{}, log ? { size: 60, values: milliseconds } : { size: 50 }],
      legend: { live: true },
    };
    state.charts[name] = { key, plot: new uPlot(opts, data, plot) };
  }

  function showNow(state, data) {
    const g = data.gauges;
    const items = Object.entries(g.queue_labels).map(([k, label]) => [label.replace(/^./, (c) => c.toUpperCase()), g.queue[k]]);
    items.push(["Open dead letters", g.dead_letters], ["Last event", ago(g.last_event_at)], ["Last delivered", ago(g.last_success_at)]);
    const list = state.root.querySelector('[data-part="now"]');
    list.replaceChildren(...items.map(([label, value]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = label;
      dd.textContent = value;
      div.append(dt, dd);
      return div;
    }));
    state.root.querySelector('[data-part="updated"]').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  async function refresh(state) {
    clearTimeout(state.timer);
    const url = `${state.root.dataset.url}?range=${encodeURIComponent(state.range)}`;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.redirected || response.status === 401 || response.status === 403) return; // signed out: stop
      if (response.ok) {
        const data = await response.json();
        const series = chartSeries(state.root.dataset.kind, data);
        showNow(state, data);
        draw(state, "volume", data.t, series.volume, false);
        draw(state, "errors", data.t, series.errors, false);
        draw(state, "latency", data.t, series.latency, true);
        draw(state, "queue", data.t, series.queue, false);
      }
    } catch (error) {
      state.root.querySelector('[data-part="updated"]').textContent = "Could not refresh; trying again.";
    }
    state.timer = setTimeout(() => refresh(state), REFRESH_MS[state.range]);
  }

  function start(root) {
    const state = { root, charts: {}, timer: null, range: localStorage.getItem("hub:dashboard-range") || "day" };
    const buttons = root.querySelectorAll("[data-range]");
    const choose = (range) => {
      state.range = range;
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range)));
      refresh(state);
    };
    buttons.forEach((b) => b.addEventListener("click", () => {
      localStorage.setItem("hub:dashboard-range", b.dataset.range);
      choose(b.dataset.range);
    }));
    document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(state); });
    window.addEventListener("resize", () => {
      for (const [name, chart] of Object.entries(state.charts)) {
        const plot = root.querySelector(`[data-chart="${name}"] .plot`);
        chart.plot.setSize({ width: Math.max(240, plot.clientWidth), height: 200 });
      }
    });
    choose(state.range in REFRESH_MS ? state.range : "day");
  }

  document.querySelectorAll(".dashboard[data-url]").forEach(start);
})();
