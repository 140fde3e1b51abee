// The Explore page's shell: the filters of GET /logs as a form (a real GET form, so the URL holds
// the query and can be shared), the results table, the pager and the event dialog;
// assets/explore.js fills them. The live tail reuses the filter fields.
import { type Frame, Layout } from "../layout.tsx";
import { MAX_LATENCY_MS } from "../../../ingest/validate.ts";

const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];
export const PAGE_SIZES = [20, 50, 100, 200, 500];
export const DEFAULT_PAGE_SIZE = 50;

/** The filters GET /logs and the live feed share (src/http/schemas/filters.ts), as fields. */
export function FilterFields() {
  return (
    <>
      <label class="grow">
        Services (comma-separated)
        <input
          name="service_name"
          type="text"
          placeholder="checkout-service, api"
          autocomplete="off"
          spellcheck={false}
        />
      </label>
      <label>
        Status code
        <input name="status_code" type="number" min={100} max={599} step={1} inputmode="numeric" />
      </label>
      <label>
        Status class
        <select name="status_class">
          <option value="">any</option>
          {STATUS_CLASSES.map((c) => <option key={c} value={c}>{c}</option>)}
        </select>
      </label>
      <label>
        Event type
        <input name="event_type" type="text" maxlength={200} autocomplete="off" />
      </label>
      <label>
        From (local time)
        <input name="start_time" type="datetime-local" step={1} />
      </label>
      <label>
        To (local time)
        <input name="end_time" type="datetime-local" step={1} />
      </label>
      <label>
        Latency at least (ms)
        <input name="min_latency_ms" type="number" min={0} max={MAX_LATENCY_MS} step="any" />
      </label>
    </>
  );
}

/** The columns of an event table (explore and live; roles for the live one's block layout). */
export function EventHead() {
  return (
    <thead role="rowgroup">
      <tr role="row">
        <th scope="col" role="columnheader">Time</th>
        <th scope="col" role="columnheader">Service</th>
        <th scope="col" role="columnheader" class="num">Status</th>
        <th scope="col" role="columnheader">Event type</th>
        <th scope="col" role="columnheader" class="num">Latency</th>
        <th scope="col" role="columnheader">Message</th>
      </tr>
    </thead>
  );
}

/** The dialog an event opens in: every field and attribute. */
export function EventDialog() {
  return (
    <dialog id="event" class="event" aria-labelledby="event-title">
      <h2 id="event-title">Event</h2>
      <dl class="attrs" id="event-fields"></dl>
      <form method="dialog">
        <button type="submit" class="primary" autofocus>Close</button>
      </form>
    </dialog>
  );
}

export function ExplorePage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="explore" title="Explore" needs="read">
      <h1>Explore</h1>
      <form id="filters" class="toolbar filters" method="get" action="explore" role="search">
        <FilterFields />
        <label>
          Per page
          <select name="limit">
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n} selected={n === DEFAULT_PAGE_SIZE}>{n}</option>
            ))}
          </select>
        </label>
        <div class="actions">
          <button type="submit" class="primary">Search</button>
          <a class="button" href="explore">Clear</a>
        </div>
      </form>
      <p id="result-info" class="muted" aria-live="polite"></p>
      {/* Focusable: at 375 px it scrolls sideways, and a keyboard must be able to scroll it. */}
      <div class="table-wrap" tabindex={0} role="region" aria-label="Events">
        <table id="events" class="events" data-state="idle">
          <caption class="visually-hidden">Matching events, newest first</caption>
          <EventHead />
          <tbody></tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        <button type="button" id="newer" disabled>← Newer</button>
        <span id="page-no" class="muted"></span>
        <button type="button" id="older" disabled>Older →</button>
      </nav>
      <EventDialog />
    </Layout>
  );
}
