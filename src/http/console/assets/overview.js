// The overview: every service the caller may read, over a window (in the URL), from
// GET /logs/summary; how each moved against the window before (a second summary); sparklines
// from GET /logs/activity. Rows show as soon as the first summary answers; the rest fills in.
// Above them, what GET /alerts says is pending or firing, whatever the window.
import { api, keyStore } from "./api.js";

const WINDOW_MS = {
  "15m": 15 * 60_000,
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
  "30d": 30 * 86_400_000,
};
const NO_TEAM = "(no team)";
/** The default order, worst first: highest error rate, then slowest p95. */
const DEFAULT_SORT = { key: "error_rate", dir: "desc" };

const state = {
  window: "24h",
  sort: { ...DEFAULT_SORT },
  team: "",
  name: "",
  /** The window's summary, the previous window's, the activity: each null until it answers. */
  cur: null,
  prev: null,
  activity: null,
  load: null,
  marked: false,
  /** Services with a firing alert, from GET /alerts (empty until it answers). */
  firing: new Set(),
};

const VALUE = {
  name: (s) => s.service_name,
  team: (s) => s.team_owner ?? "",
  total: (s) => s.total,
  error_rate: (s) => s.error_rate_percent,
  availability: (s) => s.availability_percent,
  p95: (s) => s.p95_latency_ms ?? -1,
};

function compare(a, b) {
  const { key, dir } = state.sort;
  const va = VALUE[key](a), vb = VALUE[key](b);
  let d = typeof va === "string" ? va.localeCompare(vb) : va - vb;
  // Ties: the slower first, then by name (always ascending).
  if (d === 0 && key !== "p95") d = VALUE.p95(a) - VALUE.p95(b);
  if (dir === "desc") d = -d;
  return d || a.service_name.localeCompare(b.service_name);
}

function readUrl() {
  const p = new URLSearchParams(location.search);
  const w = p.get("window");
  state.window = w in WINDOW_MS ? w : "24h";
  const [key, dir] = (p.get("sort") ?? "").split(":");
  state.sort = key in VALUE && (dir === "asc" || dir === "desc") ? { key, dir } : {
    ...DEFAULT_SORT,
  };
  state.team = p.get("team") ?? "";
  state.name = p.get("q") ?? "";
}

function writeUrl(push) {
  const p = new URLSearchParams();
  p.set("window", state.window);
  const { key, dir } = state.sort;
  if (key !== DEFAULT_SORT.key || dir !== DEFAULT_SORT.dir) p.set("sort", `${key}:${dir}`);
  if (state.team) p.set("team", state.team);
  if (state.name) p.set("q", state.name);
  const url = `${location.pathname}${p.size ? `?${p}` : ""}`;
  if (url === location.pathname + location.search) return;
  history[push ? "pushState" : "replaceState"](null, "", url);
}

function showControls() {
  for (const r of $$('#window input[name="window"]')) r.checked = r.value === state.window;
  $("#name-filter").value = state.name;
  for (const th of $$("#services th[data-key]")) {
    const on = th.dataset.key === state.sort.key;
    if (on) th.setAttribute("aria-sort", state.sort.dir === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

/** The team select from the teams of the window's services; a chosen team stays offered. */
function showTeams() {
  const teams = new Set((state.cur?.services ?? []).map((s) => s.team_owner ?? NO_TEAM));
  if (state.team) teams.add(state.team);
  replace(
    $("#team"),
    h("option", { value: "" }, "All teams"),
    [...teams].sort().map((t) => h("option", { value: t, selected: t === state.team }, t)),
  );
}

function changeSpan(cur, prev, { bad } = {}) {
  if (!state.prev) return null;
  if (prev === undefined) return h("span", { class: "change muted" }, "new");
  const text = change(cur, prev);
  if (text === null) return null;
  const cls = !bad || cur === prev ? "muted" : cur > prev ? "up" : "down";
  return h("span", { class: `change ${cls}`, title: "Against the previous window" }, text);
}

function row(s) {
  const before = state.prev?.get(s.service_name);
  const series = state.activity?.get(s.service_name);
  return h(
    "tr",
    { dataset: { service: s.service_name } },
    h(
      "td",
      { class: "name" },
      h("a", { href: `services/${encodeURIComponent(s.service_name)}` }, s.service_name),
      state.firing.has(s.service_name) &&
        [" ", h("span", { class: "badge bad", title: "An alert is firing" }, "alert")],
    ),
    h("td", { class: "team" }, s.team_owner ?? h("span", { class: "muted" }, "–")),
    h(
      "td",
      { class: "num total" },
      h("span", { class: "value", title: integer(s.total) }, compact(s.total)),
      " ",
      changeSpan(s.total, before?.total),
    ),
    h(
      "td",
      { class: "num error-rate" },
      h("span", { class: "value" }, percent(s.error_rate_percent)),
      " ",
      changeSpan(s.error_rate_percent, before?.error_rate_percent, { bad: true }),
    ),
    h(
      "td",
      { class: "num availability" },
      h("span", { class: "value" }, percent(s.availability_percent)),
    ),
    h("td", { class: "num p95" }, h("span", { class: "value" }, ms(s.p95_latency_ms))),
    h(
      "td",
      { class: "spark-cell" },
      series
        ? sparkline([
          { values: series.map((p) => p.count), className: "requests" },
          { values: series.map((p) => p.errors), className: "errors" },
        ], { label: `${s.service_name}: requests and errors over the window` })
        : h("span", { class: "muted" }, state.activity ? "–" : "…"),
    ),
  );
}

function render() {
  const table = $("#services");
  showControls();
  if (!state.cur) return;
  const name = state.name.toLowerCase();
  const shown = state.cur.services
    .filter((s) => !state.team || (s.team_owner ?? NO_TEAM) === state.team)
    .filter((s) => !name || s.service_name.toLowerCase().includes(name))
    .sort(compare);
  replace($("#rows"), shown.map(row));
  table.setAttribute("aria-busy", "false");
  $("#empty").hidden = shown.length > 0;
  $("#empty").textContent = state.cur.services.length
    ? "No service matches these filters."
    : "No service has events in this window.";
  if (!state.marked) {
    state.marked = true;
    // For the budget test: when the numbers became visible.
    performance.mark("observian:data");
  }
}

async function load() {
  state.load?.abort();
  const ctl = new AbortController();
  state.load = ctl;
  const signal = ctl.signal;
  const window = state.window;
  state.cur = state.prev = state.activity = null;
  $("#services").setAttribute("aria-busy", "true");
  replace($("#range"), `Loading the last ${window}…`);
  const activity = api("logs/activity", { query: { window }, signal }).then(
    (a) => {
      if (signal.aborted) return;
      state.activity = new Map(a.services.map((s) => [s.service_name, s.points]));
      render();
    },
    (err) => !signal.aborted && notice(`Sparklines: ${errorText(err)}`, "error"),
  );
  let cur;
  try {
    const first = early?.window === window ? await early.answer : null;
    early = null;
    cur = first ?? await api("logs/summary", { query: { window }, signal });
  } catch (err) {
    if (signal.aborted) return;
    replace($("#range"));
    $("#services").setAttribute("aria-busy", "false");
    notice(errorText(err), "error");
    return;
  }
  if (signal.aborted) return;
  state.cur = cur;
  replace(
    $("#range"),
    `${cur.services.length} services, ${integer(cur.total_logs)} requests from `,
    new Date(cur.start_time).toLocaleString(),
    " to ",
    new Date(cur.end_time).toLocaleString(),
  );
  showTeams();
  render();
  // The window before, of the same length, for the change columns.
  const end = Date.parse(cur.start_time);
  const previous = api("logs/summary", {
    query: {
      start_time: new Date(end - WINDOW_MS[window]).toISOString(),
      end_time: cur.start_time,
    },
    signal,
  }).then(
    (p) => {
      if (signal.aborted) return;
      state.prev = new Map(p.services.map((s) => [s.service_name, s]));
      render();
    },
    (err) => !signal.aborted && notice(`Previous window: ${errorText(err)}`, "error"),
  );
  await Promise.all([activity, previous]);
}

/** What an alert's value is depends on its kind. */
const VALUE_BY_KIND = {
  error_rate: (v) => percent(v),
  latency_p95: (v) => ms(v),
  latency_p99: (v) => ms(v),
  no_traffic: (v) => `${integer(v)} requests`,
  volume_drop: (v) => `${percent(v * 100, 0)} of last week`,
  slo_burn_rate: (v) => `${rate(v)} burn`,
};

const alertValue = (a) => (VALUE_BY_KIND[a.kind] ?? compact)(a.value);

function alertRow(a) {
  const firing = a.state === "firing";
  return h(
    "tr",
    { dataset: { source: a.source, sourceId: a.source_id, service: a.service_name } },
    h(
      "td",
      { class: "state" },
      h("span", { class: `badge ${firing ? "bad" : "warn"}` }, a.state),
      a.silenced && [
        " ",
        h(
          "span",
          { class: "badge silenced", title: "A silence holds its notices back" },
          "silenced",
        ),
      ],
    ),
    h("td", { class: "severity" }, a.severity),
    h(
      "td",
      { class: "name wrap" },
      a.name,
      a.source === "slo" && h("span", { class: "muted" }, " (SLO)"),
    ),
    h(
      "td",
      { class: "service" },
      h("a", { href: `services/${encodeURIComponent(a.service_name)}` }, a.service_name),
    ),
    h("td", { class: "num value" }, alertValue(a)),
    h("td", { class: "since" }, timeElement(a.since)),
  );
}

async function loadAlerts() {
  const table = $("#alerts");
  let alerts;
  try {
    alerts = await api("alerts");
  } catch (err) {
    table.setAttribute("aria-busy", "false");
    $("#alerts-wrap").hidden = true;
    notice(`Alerts: ${errorText(err)}`, "error");
    return;
  }
  replace($("#alerts tbody"), alerts.map(alertRow));
  table.setAttribute("aria-busy", "false");
  $("#alerts-wrap").hidden = alerts.length === 0;
  $("#alerts-empty").hidden = alerts.length > 0;
  state.firing = new Set(alerts.filter((a) => a.state === "firing").map((a) => a.service_name));
  render();
}

/**
 * The first summary, asked for before the other modules load and while session.js asks who
 * the caller is (round trips less before the numbers show), when a credential is at hand: a tab's key, or none needed. Without
 * one (a sign-in cookie, or nobody yet) it waits for the session, so a refusal is asked once.
 */
let early = null;
function askEarly() {
  readUrl();
  if (!keyStore.get() && document.body.dataset.access !== "open") return;
  const window = state.window;
  const answer = api("logs/summary", { query: { window } }).catch(() => null);
  early = { window, answer };
}
askEarly();

// The rest once the first summary is on its way (they load meanwhile).
const [
  { $, $$, errorText, h, notice, replace },
  { change, compact, integer, ms, percent, rate, timeElement },
  { start },
  { sparkline },
] = await Promise.all([
  import("./dom.js"),
  import("./fmt.js"),
  import("./session.js"),
  import("./chart.js"),
]);

start(async () => {
  readUrl();
  showControls();
  $("#window").addEventListener("change", (e) => {
    state.window = e.target.value;
    writeUrl(true);
    load();
  });
  $("#team").addEventListener("change", (e) => {
    state.team = e.target.value;
    writeUrl(false);
    render();
  });
  $("#name-filter").addEventListener("input", (e) => {
    state.name = e.target.value.trim();
    writeUrl(false);
    render();
  });
  for (const b of $$("#services button.sort")) {
    b.addEventListener("click", () => {
      const key = b.dataset.key;
      const text = key === "name" || key === "team";
      state.sort = state.sort.key === key
        ? { key, dir: state.sort.dir === "asc" ? "desc" : "asc" }
        : { key, dir: text ? "asc" : "desc" };
      writeUrl(false);
      render();
    });
  }
  addEventListener("popstate", () => {
    const before = state.window;
    readUrl();
    if (state.window !== before) load();
    else render();
  });
  await Promise.all([load(), loadAlerts()]);
});
