// One service: totals, charts of requests and 5xx and of latency (zoom by dragging), its
// deployments and releases, the status-code and event-type breakdowns, the latest events, and
// its team owner (a form for those allowed). Window and zoom live in the URL. Its SLOs, with
// the SLI, error budget and burn rates GET /slos/{id} computes, whatever the window.
import { api } from "./api.js";
import { $, errorText, h, notice, replace } from "./dom.js";
import { compact, integer, ms, percent, rate, timeElement } from "./fmt.js";
import { can, start } from "./session.js";
import { timeChart } from "./chart.js";

const WINDOWS = ["15m", "1h", "24h", "7d", "30d"];
/** A zoom narrower than this is widened to it (the summary's finest step is a minute). */
const MIN_ZOOM_MS = 60_000;

const name = $("#service").dataset.name;
const state = { window: "24h", zoom: null, load: null };
const charts = { requests: null, latency: null };

function readUrl() {
  const p = new URLSearchParams(location.search);
  const w = p.get("window");
  state.window = WINDOWS.includes(w) ? w : "24h";
  const from = Date.parse(p.get("start_time") ?? ""), to = Date.parse(p.get("end_time") ?? "");
  state.zoom = Number.isFinite(from) && Number.isFinite(to) && from < to ? { from, to } : null;
}

function writeUrl() {
  const p = new URLSearchParams();
  p.set("window", state.window);
  if (state.zoom) {
    p.set("start_time", new Date(state.zoom.from).toISOString());
    p.set("end_time", new Date(state.zoom.to).toISOString());
  }
  history.pushState(null, "", `${location.pathname}${p.size ? `?${p}` : ""}`);
}

function showControls() {
  for (const r of document.querySelectorAll('#window input[name="window"]')) {
    r.checked = r.value === state.window;
  }
  $("#reset-zoom").hidden = !state.zoom;
}

function zoomTo(from, to) {
  if (to - from < MIN_ZOOM_MS) {
    const mid = (from + to) / 2;
    from = mid - MIN_ZOOM_MS / 2;
    to = mid + MIN_ZOOM_MS / 2;
  }
  state.zoom = { from: Math.round(from), to: Math.round(Math.min(to, Date.now())) };
  writeUrl();
  load();
}

function chartData(series, pick) {
  return [
    series.map((p) => Date.parse(p.start) / 1000),
    ...pick.map((k) => series.map((p) => p[k])),
  ];
}

function drawCharts(s) {
  const markers = s.markers;
  const counts = chartData(s.series, ["count", "errors"]);
  const latency = chartData(s.series, ["p50_latency_ms", "p95_latency_ms", "p99_latency_ms"]);
  if (!globalThis.uPlot) {
    notice("The chart library did not load.", "error");
    return;
  }
  if (charts.requests) {
    charts.requests.setData(counts, markers);
    charts.latency.setData(latency, markers);
    return;
  }
  charts.requests = timeChart($("#chart-requests"), {
    title: "Requests and 5xx",
    series: [{ label: "Requests", value: compact }, { label: "5xx", value: compact }],
    data: counts,
    markers,
    onZoom: zoomTo,
  });
  charts.latency = timeChart($("#chart-latency"), {
    title: "Latency",
    series: [{ label: "p50", value: ms }, { label: "p95", value: ms }, { label: "p99", value: ms }],
    data: latency,
    markers,
    onZoom: zoomTo,
  });
}

function showCards(s) {
  const me = s.services.find((x) => x.service_name === name);
  const set = (id, text) => replace($(`#card-${id}`), text);
  set("requests", compact(s.total_logs));
  $("#card-requests").title = integer(s.total_logs);
  set("error-rate", percent(s.error_rate_percent));
  set("availability", me ? percent(me.availability_percent) : "–");
  set("p50", ms(s.latency.p50));
  set("p95", ms(s.latency.p95));
  set("p99", ms(s.latency.p99));
}

function showMarkers(markers) {
  replace(
    $("#markers tbody"),
    markers.map((m) =>
      h(
        "tr",
        {},
        h("td", {}, timeElement(m.time)),
        h("td", {}, h("span", { class: "badge" }, m.kind)),
        h("td", { class: "wrap" }, m.title),
        h("td", {}, m.url ? h("a", { href: m.url, rel: "noreferrer" }, "open") : "–"),
      )
    ),
  );
  $("#markers-empty").hidden = markers.length > 0;
}

function breakdown(sel, entries, total, cls) {
  replace(
    $(`${sel} tbody`),
    entries.map(([k, n]) =>
      h(
        "tr",
        {},
        h("td", { class: cls?.(k) }, k),
        h("td", { class: "num", title: integer(n) }, compact(n)),
        h("td", { class: "num" }, percent(total ? (n / total) * 100 : 0, 1)),
      )
    ),
  );
}

async function load() {
  state.load?.abort();
  const ctl = new AbortController();
  state.load = ctl;
  showControls();
  const query = state.zoom
    ? {
      service_name: name,
      start_time: new Date(state.zoom.from).toISOString(),
      end_time: new Date(state.zoom.to).toISOString(),
    }
    : { service_name: name, window: state.window };
  replace($("#range"), "Loading…");
  let s;
  try {
    s = await api("logs/summary", { query, signal: ctl.signal });
  } catch (err) {
    if (ctl.signal.aborted) return;
    replace($("#range"));
    notice(errorText(err), "error");
    return;
  }
  if (ctl.signal.aborted) return;
  replace(
    $("#range"),
    state.zoom ? "Zoomed: " : `The last ${state.window}: `,
    timeElement(s.start_time),
    " to ",
    timeElement(s.end_time),
    ` (step ${s.step})`,
  );
  showCards(s);
  drawCharts(s);
  showMarkers(s.markers);
  breakdown(
    "#status-codes",
    Object.entries(s.status_code_breakdown),
    s.total_logs,
    (k) => (k >= "500" ? "status-5xx" : k >= "400" ? "status-4xx" : undefined),
  );
  breakdown("#event-types", Object.entries(s.event_type_breakdown), s.total_logs);
}

/** GET /slos/{id}'s burn-rate windows, shortest first. */
const BURN_WINDOWS = ["5m", "30m", "1h", "6h", "24h", "3d"];

function sloAlerts(alerting) {
  if (!alerting?.length) return h("span", { class: "badge ok" }, "none pending or firing");
  return alerting.map((a) =>
    h(
      "div",
      { class: "slo-alert", dataset: { alert: a.alert, state: a.state } },
      h(
        "span",
        { class: `badge ${a.state === "firing" ? "bad" : "warn"}` },
        `${a.alert} ${a.state}`,
      ),
      " since ",
      timeElement(a.since),
    )
  );
}

function sloCard(slo) {
  const id = `slo-${slo.id}`;
  const budget = slo.error_budget_remaining;
  const indicator = slo.indicator === "latency"
    ? `latency (events under ${ms(slo.latency_threshold_ms)})`
    : "availability (events not 5xx)";
  return h(
    "article",
    { class: "slo", dataset: { sloId: slo.id }, "aria-labelledby": `${id}-name` },
    h("h3", { id: `${id}-name` }, slo.name),
    h(
      "p",
      { class: "muted" },
      `Objective ${percent(slo.objective, 3)} over ${slo.period_days} days; indicator `,
      h("span", { class: "indicator" }, indicator),
    ),
    h(
      "div",
      { class: "cards" },
      h(
        "div",
        { class: "card" },
        h("div", { class: "label" }, "SLI"),
        h("div", { class: "value sli" }, percent(slo.sli, 3)),
      ),
      h(
        "div",
        { class: "card" },
        h("div", { class: "label", id: `${id}-budget` }, "Error budget remaining"),
        h("div", { class: "value budget" }, budget === null ? "–" : percent(budget * 100, 1)),
        // An overspent budget (below 0) shows as an empty meter; the number says by how much.
        budget !== null && h("meter", {
          min: 0,
          max: 1,
          low: 0.25,
          high: 0.5,
          optimum: 1,
          value: Math.max(0, Math.min(1, budget)),
          "aria-labelledby": `${id}-budget`,
        }),
      ),
      h(
        "div",
        { class: "card" },
        h("div", { class: "label" }, "Page and ticket alerts"),
        h("div", { class: "alerting" }, sloAlerts(slo.alerting)),
      ),
    ),
    h(
      "div",
      // Focusable: it scrolls on a narrow screen.
      { class: "table-wrap", tabindex: 0, role: "region", "aria-label": `${slo.name}: burn rates` },
      h(
        "table",
        { class: "burn-rates" },
        h("caption", { class: "visually-hidden" }, `${slo.name}: burn rate by window`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Window"),
            BURN_WINDOWS.map((w) => h("th", { scope: "col", class: "num" }, w)),
          ),
        ),
        h(
          "tbody",
          {},
          h(
            "tr",
            {},
            h(
              "th",
              { scope: "row", title: "1 spends the budget exactly over the period" },
              "Burn rate",
            ),
            BURN_WINDOWS.map((w) =>
              h("td", { class: "num", dataset: { window: w } }, rate(slo.burn_rates?.[w]))
            ),
          ),
        ),
      ),
    ),
  );
}

async function loadSlos() {
  const box = $("#slos");
  try {
    // The list has no figures: each of this service's SLOs is asked for on its own.
    const mine = (await api("slos")).filter((s) => s.service === name);
    const slos = await Promise.all(mine.map((s) => api(`slos/${s.id}`)));
    replace(box, slos.map(sloCard));
    $("#slos-empty").hidden = slos.length > 0;
  } finally {
    box.setAttribute("aria-busy", "false");
  }
}

async function loadLatest() {
  const events = await api("logs", { query: { service_name: name, limit: 20 } });
  replace(
    $("#latest tbody"),
    events.map((e) =>
      h(
        "tr",
        {},
        h("td", {}, timeElement(e.timestamp)),
        h(
          "td",
          {
            class: e.status_code >= 500 ? "status-5xx" : e.status_code >= 400 ? "status-4xx" : null,
          },
          e.status_code,
        ),
        h("td", {}, e.event_type ?? h("span", { class: "muted" }, "–")),
        h("td", { class: "num" }, ms(e.latency_ms)),
        h("td", { class: "wrap" }, e.message ?? ""),
      )
    ),
  );
}

async function loadOwner() {
  // From the list (scoped like everything else), so an unknown name is no failed request.
  const services = await api("services");
  const me = services.find((x) => x.name === name);
  replace($("#team-owner"), me?.team_owner ?? "none");
  $("#owner-input").value = me?.team_owner ?? "";
}

function wireOwnerForm() {
  if (!can("service_owner")) return;
  $("#owner-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = $("#owner-input").value.trim();
    try {
      const saved = await api(`services/${encodeURIComponent(name)}`, {
        method: "PUT",
        body: { team_owner: value || null },
      });
      replace($("#team-owner"), saved.team_owner ?? "none");
      notice(`Team owner of ${name} saved.`);
    } catch (err) {
      notice(errorText(err), "error");
    }
  });
}

start(async () => {
  readUrl();
  wireOwnerForm();
  $("#window").addEventListener("change", (e) => {
    state.window = e.target.value;
    state.zoom = null;
    writeUrl();
    load();
  });
  $("#reset-zoom").addEventListener("click", () => {
    state.zoom = null;
    writeUrl();
    load();
  });
  addEventListener("popstate", () => {
    readUrl();
    load();
  });
  const failed = (what) => (err) => notice(`${what}: ${errorText(err)}`, "error");
  await Promise.all([
    load(),
    loadLatest().catch(failed("Latest events")),
    loadOwner().catch(failed("Team owner")),
    loadSlos().catch(failed("SLOs")),
  ]);
});
