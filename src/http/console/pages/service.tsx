// The Service page's shell: its controls and empty tables; assets/service.js fills them.
import { type Frame, Layout } from "../layout.tsx";
import { WindowPicker } from "./overview.tsx";
import { Table } from "./table.tsx";

const CARDS = [
  ["requests", "Requests"],
  ["error-rate", "Error rate"],
  ["availability", "Availability"],
  ["p50", "p50 latency"],
  ["p95", "p95 latency"],
  ["p99", "p99 latency"],
] as const;

export function ServicePage(props: { frame: Frame; name: string }) {
  const q = encodeURIComponent(props.name);
  return (
    <Layout frame={props.frame} page="service" title={props.name} needs="read" charts>
      <div id="service" data-name={props.name}>
        <h1>{props.name}</h1>
        <p class="muted">
          Team: <span id="team-owner">–</span>
        </p>
        <div class="toolbar">
          <WindowPicker />
          <button type="button" id="reset-zoom" hidden>Reset zoom</button>
          <span class="grow"></span>
          <a href={`explore?service_name=${q}`}>Explore this service's events</a>
        </div>
        <p id="range" class="muted" aria-live="polite"></p>
        <section class="cards" aria-label="Totals">
          {CARDS.map(([id, label]) => (
            <div class="card">
              <div class="label">{label}</div>
              <div class="value" id={`card-${id}`}>–</div>
            </div>
          ))}
        </section>
        <p class="muted">Drag across a chart to zoom in.</p>
        <div class="charts">
          <div class="chart" id="chart-requests" role="img" aria-label="Requests and 5xx over time">
          </div>
          <div class="chart" id="chart-latency" role="img" aria-label="Latency p50, p95, p99">
          </div>
        </div>
        <section aria-labelledby="slos-title">
          <h2 id="slos-title">SLOs</h2>
          <div id="slos" aria-busy="true"></div>
          <p id="slos-empty" class="muted" hidden>This service has no SLO.</p>
        </section>
        <h2>Deployments and releases</h2>
        <Table id="markers" caption="Markers" columns={["Time", "Kind", "Title", "Link"]} />
        <p id="markers-empty" class="muted" hidden>None in this window.</p>
        <div class="breakdowns">
          <section>
            <h2>Status codes</h2>
            <Table
              id="status-codes"
              caption="Status codes"
              columns={["Status", "Events", "Share"]}
              numeric={[1, 2]}
            />
          </section>
          <section>
            <h2>Event types</h2>
            <Table
              id="event-types"
              caption="Event types"
              columns={["Type", "Events", "Share"]}
              numeric={[1, 2]}
            />
          </section>
        </div>
        <h2>Latest events</h2>
        <Table
          id="latest"
          caption="The latest 20 events"
          columns={["Time", "Status", "Type", "Latency", "Message"]}
          numeric={[3]}
        />
        <p>
          <a href={`explore?service_name=${q}`}>All of this service's events in the explorer</a>
        </p>
        <section data-needs="service_owner" hidden>
          <h2>Team owner</h2>
          <form id="owner-form" class="toolbar">
            <label>
              Team owner
              <input id="owner-input" maxlength={200} autocomplete="off" />
            </label>
            <button type="submit" class="primary">Save owner</button>
          </form>
        </section>
      </div>
    </Layout>
  );
}
