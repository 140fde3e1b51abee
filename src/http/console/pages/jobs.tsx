// The Jobs page's shell: its controls and empty tables; assets/jobs.js fills them. Controls that
// need the admin right start hidden; session.js shows them to those who have it.
import { type Frame, Layout } from "../layout.tsx";
import { Table } from "./table.tsx";

export function JobsPage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="jobs" title="Jobs" needs="read">
      <h1>Jobs</h1>
      <section class="job" id="ingestor" aria-labelledby="ingestor-title">
        <h2 id="ingestor-title">GitHub ingestor</h2>
        <div class="toolbar">
          <button
            type="button"
            id="ingestor-toggle"
            class="job-toggle"
            data-needs="admin"
            hidden
            aria-pressed="false"
            disabled
          >
            Ingestor
          </button>
          <button type="button" id="ingestor-run" data-needs="admin" hidden disabled>
            Run now
          </button>
        </div>
        <p id="ingestor-outcome" class="muted" role="status"></p>
        <dl class="attrs" id="ingestor-facts"></dl>
        <h3>Last runs</h3>
        <p class="muted">The last poll of each source GitHub is read from.</p>
        <Table
          id="ingestor-runs"
          caption="The ingestor's last poll of each source"
          columns={[
            "Source",
            "Start",
            "End",
            "Outcome",
            "HTTP",
            "Pages",
            "New",
            "Duplicates",
            "Too old",
            "Invalid",
            "Rate limit left",
            "Error",
          ]}
          numeric={[4, 5, 6, 7, 8, 9, 10]}
        />
      </section>

      <section class="job" id="pruner" aria-labelledby="pruner-title">
        <h2 id="pruner-title">Pruner</h2>
        <div class="toolbar">
          <button
            type="button"
            id="pruner-toggle"
            class="job-toggle"
            data-needs="admin"
            hidden
            aria-pressed="false"
            disabled
          >
            Pruner
          </button>
        </div>
        <p id="pruner-outcome" class="muted" role="status"></p>
        <dl class="attrs" id="pruner-facts"></dl>
        <h3>Last runs</h3>
        <Table
          id="pruner-runs"
          caption="The pruner's last run"
          columns={["Start", "End", "Outcome", "Rows deleted", "Partitions dropped", "Cutoff"]}
          numeric={[3, 4]}
        />
        <form id="prune-form" class="toolbar prune-form" data-needs="admin" hidden>
          <h3 class="grow-row">Prune now</h3>
          <label for="prune-days">
            Days of logs to keep
            <input id="prune-days" name="days" type="number" min="1" max="3650" step="1" required />
          </label>
          <button type="submit" id="prune-dry">Dry run</button>
          <button type="button" id="prune-confirm" class="danger" disabled>Confirm prune</button>
          <p id="prune-result" class="grow-row" role="status"></p>
        </form>
      </section>
    </Layout>
  );
}
