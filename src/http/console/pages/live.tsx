// The Live tail page's shell: the explorer's filters, the feed's controls and counters, and the
// table the newest events are prepended to; assets/live.js reads the stream and fills them.
import { type Frame, Layout } from "../layout.tsx";
import { EventDialog, EventHead, FilterFields } from "./explore.tsx";

/** Rows kept in the page; older ones are removed as new ones arrive. */
export const LIVE_ROW_CAP = 500;

export function LivePage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="live" title="Live tail" needs="read">
      <h1>Live tail</h1>
      <form id="filters" class="toolbar filters" method="get" action="live" role="search">
        <FilterFields />
        <div class="actions">
          <button type="submit" class="primary">Apply</button>
          <a class="button" href="live">Clear</a>
        </div>
      </form>
      <div class="toolbar live-bar">
        <button type="button" id="pause">Pause</button>
        <span id="live-state" class="badge" role="status">connecting</span>
        <span id="received" class="count">0 events received</span>
        <span id="rate" class="count muted">0 events/s</span>
        <span id="buffered" class="muted"></span>
        <span id="skipped" class="muted"></span>
      </div>
      <p class="muted">
        Newest first; the latest {LIVE_ROW_CAP}{" "}
        are kept on the page. Choose a row to see every field.
      </p>
      {/* Focusable: at 375 px it scrolls sideways, and a keyboard must be able to scroll it. */}
      <div class="table-wrap" tabindex={0} role="region" aria-label="Events">
        <table id="events" class="events live" role="table" data-cap={LIVE_ROW_CAP}>
          <caption class="visually-hidden">Live events, newest first</caption>
          <EventHead />
          <tbody role="rowgroup"></tbody>
        </table>
      </div>
      <EventDialog />
    </Layout>
  );
}
