// The Overview page's shell: its controls and empty tables; assets/overview.js fills them.
import { type Frame, Layout } from "../layout.tsx";

export const WINDOWS = ["15m", "1h", "24h", "7d", "30d"] as const;

/** The window picker: radios as a segmented control (the service page has the same). */
export function WindowPicker(props: { name?: string }) {
  return (
    <fieldset class="segmented" id="window">
      <legend>Window</legend>
      {WINDOWS.map((w) => (
        <label>
          <input type="radio" name={props.name ?? "window"} value={w} checked={w === "24h"} />
          {w}
        </label>
      ))}
    </fieldset>
  );
}

const COLUMNS: { key: string; label: string; num?: boolean }[] = [
  { key: "name", label: "Service" },
  { key: "team", label: "Team" },
  { key: "total", label: "Requests", num: true },
  { key: "error_rate", label: "Error rate", num: true },
  { key: "availability", label: "Availability", num: true },
  { key: "p95", label: "p95 latency", num: true },
];

const ALERT_COLUMNS: [label: string, num?: boolean][] = [
  ["State"],
  ["Severity"],
  ["Rule or SLO"],
  ["Service"],
  ["Value", true],
  ["Since"],
];

export function OverviewPage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="overview" title="Overview" needs="read">
      <h1>Overview</h1>
      {/* session.js shows it to those who may read; overview.js fills it from GET /alerts. */}
      <section id="alerts-section" aria-labelledby="alerts-title" data-needs="read" hidden>
        <h2 id="alerts-title">Firing alerts</h2>
        <div
          class="table-wrap"
          id="alerts-wrap"
          tabindex={0}
          role="region"
          aria-labelledby="alerts-title"
        >
          <table id="alerts" aria-busy="true">
            <caption class="visually-hidden">Alerts pending or firing, firing first</caption>
            <thead>
              <tr>
                {ALERT_COLUMNS.map(([label, num]) => (
                  <th scope="col" class={num ? "num" : undefined}>{label}</th>
                ))}
              </tr>
            </thead>
            <tbody></tbody>
          </table>
        </div>
        <p id="alerts-empty" class="muted" hidden>No alerts firing.</p>
      </section>
      <h2>Services</h2>
      <div class="toolbar">
        <WindowPicker />
        <label>
          Team
          <select id="team">
            <option value="">All teams</option>
          </select>
        </label>
        <label>
          Service
          <input id="name-filter" type="search" placeholder="Filter by name" autocomplete="off" />
        </label>
      </div>
      <p id="range" class="muted" aria-live="polite"></p>
      <div class="table-wrap">
        <table id="services" aria-busy="true">
          <caption class="visually-hidden">Services, worst first</caption>
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th scope="col" class={c.num ? "num" : undefined} data-key={c.key}>
                  <button type="button" class="sort" data-key={c.key}>{c.label}</button>
                </th>
              ))}
              <th scope="col">Requests and errors</th>
            </tr>
          </thead>
          <tbody id="rows"></tbody>
        </table>
      </div>
      <p id="empty" class="muted" hidden>No service has events in this window.</p>
    </Layout>
  );
}
