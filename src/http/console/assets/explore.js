// The explore page: the filters of GET /logs as a GET form whose query is the page's URL (so a
// link can be shared), results newest first, keyset pages ("Older" follows the API's
// X-Next-Cursor; "Newer" goes back along the cursors the URL remembers), and an event's every
// field in a dialog. Also the filter and row helpers the live tail shares (it imports this
// module; the page itself starts only on /explore).
import { apiPage } from "./api.js";
import { $, errorText, h, notice, replace } from "./dom.js";
import { integer, ms, timeElement } from "./fmt.js";
import { start } from "./session.js";

/** The filters of GET /logs and the live feed (src/http/schemas/filters.ts). */
export const FILTERS = [
  "service_name",
  "status_code",
  "status_class",
  "event_type",
  "start_time",
  "end_time",
  "min_latency_ms",
];
/** The cursors of the pages before the current one, "."-separated (cursors are base64url). */
const TRAIL = "trail";

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** A Date as a datetime-local value, in the browser's zone. */
function localValue(d) {
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * The form's filters as a query (URLSearchParams): empty fields left out, services split at
 * commas (one parameter each), local times as ISO 8601 UTC. A time field still showing what the
 * URL gave keeps the URL's exact value (a datetime-local has no milliseconds).
 */
export function formQuery(form, extra = []) {
  const q = new URLSearchParams();
  for (const name of [...FILTERS, ...extra]) {
    const el = form.elements.namedItem(name);
    const v = el?.value?.trim();
    if (!v) continue;
    if (name === "service_name") {
      for (const s of v.split(",").map((x) => x.trim()).filter(Boolean)) q.append(name, s);
    } else if (el.type === "datetime-local") {
      q.set(name, el.dataset.iso && el.dataset.local === v ? el.dataset.iso : isoOf(v));
    } else q.set(name, v);
  }
  return q;
}

function isoOf(local) {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString();
}

/** Sets the form's fields from a query (the page's URL). */
export function fillForm(form, params, extra = []) {
  for (const name of [...FILTERS, ...extra]) {
    const el = form.elements.namedItem(name);
    if (!el) continue;
    const values = params.getAll(name);
    el.removeAttribute("aria-invalid");
    if (name === "service_name") {
      el.value = values.flatMap((v) => v.split(",")).map((s) => s.trim()).filter(Boolean)
        .join(", ");
    } else if (el.type === "datetime-local") {
      const d = values[0] ? new Date(values[0]) : null;
      el.value = d && !Number.isNaN(d.getTime()) ? localValue(d) : "";
      if (values[0]) {
        el.dataset.iso = values[0];
        el.dataset.local = el.value;
      } else {
        delete el.dataset.iso;
        delete el.dataset.local;
      }
    } else if (el.tagName === "SELECT") {
      const v = values[0] ?? [...el.options].find((o) => o.defaultSelected)?.value ?? "";
      if (v && ![...el.options].some((o) => o.value === v)) el.append(h("option", { value: v }, v));
      el.value = v;
    } else el.value = values[0] ?? "";
  }
}

/** Marks the fields a 400 names, and says what is wrong in the notice area. */
export function showError(form, err) {
  for (const f of err?.problem?.errors ?? []) {
    const el = form.elements.namedItem(f.field);
    if (el instanceof Element) el.setAttribute("aria-invalid", "true");
  }
  notice(errorText(err), "error");
}

/** A table row for an event (newest-first tables in both pages). */
export function eventRow(e, open) {
  const status = e.status_code >= 500 ? "status-5xx" : e.status_code >= 400 ? "status-4xx" : null;
  return h(
    "tr",
    {
      class: "clickable",
      role: "row",
      dataset: { id: String(e.id) },
      onclick: (ev) => clickRow(ev, e, open),
    },
    h(
      "td",
      { role: "cell" },
      h(
        "button",
        { type: "button", class: "link open", "aria-label": `Event ${e.id}, open` },
        timeElement(e.timestamp),
      ),
    ),
    h(
      "td",
      { role: "cell" },
      h("a", { href: `services/${encodeURIComponent(e.service_name)}` }, e.service_name),
    ),
    h("td", { role: "cell", class: status ? `num ${status}` : "num" }, e.status_code),
    h("td", { role: "cell" }, e.event_type ?? ""),
    h("td", { role: "cell", class: "num" }, ms(e.latency_ms)),
    h("td", { role: "cell", class: "message", title: e.message ?? "" }, e.message ?? ""),
  );
}

function clickRow(ev, e, open) {
  // The service link goes where it says.
  if (ev.target instanceof Element && ev.target.closest("a")) return;
  open(e);
}

const show = (v) =>
  v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v);

/** Opens the event dialog with every field of the event and each of its attributes. */
export function openEvent(e) {
  const dialog = $("#event");
  const items = [
    ["id", String(e.id)],
    ["time", h("span", {}, timeElement(e.timestamp), " ", h("code", {}, e.timestamp))],
    [
      "service",
      h("a", { href: `services/${encodeURIComponent(e.service_name)}` }, e.service_name),
    ],
    ["team", show(e.team_owner)],
    ["status", String(e.status_code)],
    ["event type", show(e.event_type)],
    ["latency", `${ms(e.latency_ms)} (${e.latency_ms} ms)`],
    ["message", show(e.message)],
    ...Object.entries(e.attributes ?? {}).sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, h("code", {}, show(v))]),
  ];
  replace($("#event-title"), `Event ${e.id}`);
  replace(
    $("#event-fields"),
    items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { field: k } }, v)]),
  );
  if (!e.attributes || Object.keys(e.attributes).length === 0) {
    $("#event-fields").append(h("dt", {}, "attributes"), h("dd", {}, "none"));
  }
  if (!dialog.open) dialog.showModal();
}

/** GET /logs with the page's query: the events and the next page's cursor (null at the end). */
async function fetchPage(query, signal) {
  const { items, next } = await apiPage("logs", { query, signal });
  return { events: items, next };
}

function explorePage() {
  const form = $("#filters");
  const table = $("#events");
  const tbody = $("#events tbody");
  const info = $("#result-info");
  const older = $("#older");
  const newer = $("#newer");
  const pageNo = $("#page-no");
  let loading = null;
  let nextCursor = null;

  const params = () => new URLSearchParams(location.search);
  const trailOf = (p) => (p.get(TRAIL) ?? "").split(".").filter(Boolean);

  /** The API's query: the URL's filters, limit and cursor (nothing else, e.g. not the trail). */
  function apiQuery(p) {
    const q = {};
    for (const k of [...FILTERS, "limit", "cursor"]) {
      const vs = p.getAll(k).filter((v) => v !== "");
      if (vs.length) q[k] = vs;
    }
    q.limit ??= form.elements.namedItem("limit").value;
    return q;
  }

  async function load() {
    loading?.abort();
    const ctrl = new AbortController();
    loading = ctrl;
    const p = params();
    fillForm(form, p, ["limit"]);
    table.dataset.state = "loading";
    table.setAttribute("aria-busy", "true");
    older.disabled = newer.disabled = true;
    replace(info, "Loading…");
    notice();
    try {
      const page = await fetchPage(apiQuery(p), ctrl.signal);
      if (ctrl.signal.aborted) return;
      nextCursor = page.next;
      replace(tbody, page.events.map((e) => eventRow(e, openEvent)));
      const n = p.has("cursor") ? trailOf(p).length + 2 : 1;
      replace(pageNo, `Page ${n}`);
      replace(
        info,
        page.events.length === 0
          ? (n === 1 ? "No events match these filters." : "No older events.")
          : `${integer(page.events.length)} events, newest first${
            nextCursor ? "; older ones on the next page" : ""
          }.`,
      );
      older.disabled = !nextCursor;
      newer.disabled = !p.has("cursor");
      table.dataset.state = "loaded";
    } catch (err) {
      if (ctrl.signal.aborted) return;
      replace(tbody);
      replace(info, "");
      showError(form, err);
      table.dataset.state = "error";
    } finally {
      if (loading === ctrl) table.removeAttribute("aria-busy");
    }
  }

  const go = (p) => {
    history.pushState(null, "", `explore${p.size ? `?${p}` : ""}`);
    return load();
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    // New filters start at the newest page.
    go(formQuery(form, ["limit"]));
  });
  older.addEventListener("click", () => {
    if (!nextCursor) return;
    const p = params();
    const cur = p.get("cursor");
    const trail = cur ? [...trailOf(p), cur] : [];
    p.delete(TRAIL);
    if (trail.length) p.set(TRAIL, trail.join("."));
    p.set("cursor", nextCursor);
    go(p);
  });
  newer.addEventListener("click", () => {
    const p = params();
    const trail = trailOf(p);
    const prev = trail.pop();
    p.delete(TRAIL);
    p.delete("cursor");
    if (prev) p.set("cursor", prev);
    if (trail.length) p.set(TRAIL, trail.join("."));
    go(p);
  });
  addEventListener("popstate", () => load());
  addEventListener("pagehide", () => loading?.abort());
  return load();
}

if (document.body.dataset.page === "explore") start(() => explorePage());
