// The live tail: GET /logs/live-feed as Server-Sent Events, read with fetch() because EventSource
// cannot send the tab's Authorization header. The stream is parsed here; a dropped connection is
// resumed with Last-Event-ID after a growing pause, and the person is told when it drops, when
// it resumes and when the server reports events it skipped (a gap). Events are counted as they
// arrive but drawn a few times a second, newest first, a bounded number of rows per draw, and
// the table keeps only the latest `data-cap` rows, so a thousand events a second cost the page
// a short frame five times a second.
import { ApiError, apiUrl, authHeaders, refusal } from "./api.js";
import { $, errorText, h, notice, replace } from "./dom.js";
import { integer, ms, timeElement } from "./fmt.js";
import { start } from "./session.js";
import { fillForm, formQuery, openEvent, showError } from "./explore.js";

/** How long a connect may take before the first bytes arrive (then it is retried). */
const CONNECT_TIMEOUT_MS = 15_000;
/** Silence (no event, no ping: the server pings every LIVE_HEARTBEAT_S, 15 s by default). */
const IDLE_TIMEOUT_MS = 45_000;
/** The page is drawn at most this often (events are counted as they come). */
const DRAW_EVERY_MS = 200;
/**
 * Rows drawn at most per draw (five draws a second: 100 rows a second). Under a flood faster
 * than that, each draw shows the newest and the others are counted, not drawn: nobody reads a
 * hundred rows a second, and laying out each row costs the page about 0.2 ms on a small machine
 * (measured in a trace: 50 rows a draw gave 10-25 ms layouts and, with the server on the same
 * two cores, frames over 100 ms; 20 rows keep the longest frame near 50 ms).
 */
const MAX_DRAW = 20;
const BACKOFF_MS = [500, 1000, 2000, 5000, 10_000, 30_000];

// As fmt.js's timeElement shows a time, computed once per second of timestamps: under a flood
// most events share their second with the one before.
const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const timeCache = new Map();
function timeTexts(iso) {
  const d = new Date(iso);
  const second = Math.floor(d.getTime() / 1000);
  let texts = timeCache.get(second);
  if (!texts) {
    if (timeCache.size > 600) timeCache.clear();
    texts = [timeFmt.format(d), `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`];
    timeCache.set(second, texts);
  }
  return texts;
}

const sleep = (waitMs, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, waitMs);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

start(() => {
  const form = $("#filters");
  const tbody = $("#events tbody");
  const cap = Number($("#events").dataset.cap) || 500;
  const pauseButton = $("#pause");
  const stateEl = $("#live-state");
  const receivedEl = $("#received");
  const rateEl = $("#rate");
  const bufferedEl = $("#buffered");
  const skippedEl = $("#skipped");

  let feed = null; // AbortController of the running stream
  let lastId = null;
  let received = 0;
  let skipped = 0;
  let owed = 0; // rows of `pending`, oldest first, to draw in full rather than sample
  // After (re)connecting, the server sends the backlog (or the replay after a drop), then a
  // ping: until then, events are owed, drawn in full (up to the cap) rather than sampled.
  let inBacklog = false;
  let pending = []; // arrived, not drawn yet (newest last), at most `cap` worth keeping
  let paused = false;
  let frame = 0;
  let lastDraw = -Infinity;

  const setState = (text, kind = "") => {
    stateEl.className = `badge ${kind}`.trim();
    stateEl.textContent = text;
  };

  function draw(now) {
    frame = 0;
    lastDraw = now;
    receivedEl.textContent = `${integer(received)} events received`;
    if (paused) {
      bufferedEl.textContent = pending.length
        ? `paused; ${integer(Math.min(pending.length, cap))} newest events held`
        : "paused";
      return;
    }
    bufferedEl.textContent = "";
    if (!pending.length) return;
    // At most MAX_DRAW rows a draw, oldest first: a draw stays short. What is owed (a replay,
    // what was held while paused) is drawn in full, a batch every frame; otherwise a draw shows
    // the newest and counts the rest. Only the newest `cap` can ever be shown.
    if (pending.length > cap) pending = pending.slice(-cap);
    owed = Math.min(owed, pending.length);
    if (!owed && pending.length > MAX_DRAW) {
      skipped += pending.length - MAX_DRAW;
      pending = pending.slice(-MAX_DRAW);
    }
    const batch = pending.splice(0, MAX_DRAW);
    owed = Math.max(0, owed - batch.length);
    if (pending.length) schedule(owed > 0);
    skippedEl.textContent = skipped
      ? `${integer(skipped)} events counted but not drawn (more than ${
        (MAX_DRAW * 1000) / DRAW_EVERY_MS
      } a second)`
      : "";
    const rows = document.createDocumentFragment();
    for (let i = batch.length - 1; i >= 0; i--) rows.append(liveRow(batch[i]));
    tbody.prepend(rows);
    let extra = tbody.rows.length - cap;
    while (extra-- > 0) tbody.lastElementChild.remove();
  }

  // Rows are clones of one template filled in place (a row of h() calls costs several times
  // more), and a row's event is found through a WeakMap when it is opened.
  const rowEvents = new WeakMap();
  const template = $("#events thead tr").cloneNode(false);
  template.className = "clickable";
  template.append(
    h("td", { role: "cell" }, h("button", { type: "button", class: "link open" }, h("time"))),
    h("td", { role: "cell" }, h("a")),
    h("td", { role: "cell", class: "num" }),
    h("td", { role: "cell" }),
    h("td", { role: "cell", class: "num" }),
    h("td", { role: "cell", class: "message" }),
  );
  function liveRow(e) {
    const tr = template.cloneNode(true);
    rowEvents.set(tr, e);
    tr.dataset.id = e.id;
    const [time, service, status, type, latency, message] = tr.children;
    const button = time.firstChild;
    button.setAttribute("aria-label", `Event ${e.id}, open`);
    const [local, utc] = timeTexts(e.timestamp);
    button.firstChild.dateTime = e.timestamp;
    button.firstChild.textContent = local;
    button.firstChild.title = utc;
    service.firstChild.href = `services/${encodeURIComponent(e.service_name)}`;
    service.firstChild.textContent = e.service_name;
    status.textContent = e.status_code;
    if (e.status_code >= 400) {
      status.classList.add(e.status_code >= 500 ? "status-5xx" : "status-4xx");
    }
    type.textContent = e.event_type ?? "";
    latency.textContent = ms(e.latency_ms);
    message.textContent = e.message ?? "";
    if (e.message) message.title = e.message;
    return tr;
  }
  tbody.addEventListener("click", (ev) => {
    if (!(ev.target instanceof Element) || ev.target.closest("a")) return;
    const e = rowEvents.get(ev.target.closest("tr"));
    if (e) openEvent(e);
  });

  // At most one draw per DRAW_EVERY_MS, in an animation frame: a frame's fixed cost (style,
  // layout, paint) is paid five times a second however fast events come. Catching up on what
  // is owed, every frame.
  const schedule = (catchingUp = false) => {
    if (frame) return;
    const wait = catchingUp ? 0 : lastDraw + DRAW_EVERY_MS - performance.now();
    frame = wait > 0
      ? setTimeout(() => (frame = requestAnimationFrame(draw)), wait)
      : requestAnimationFrame(draw);
  };

  function onEvent(e) {
    received++;
    pending.push(e);
    if (inBacklog && owed < cap) owed++;
    // Only the newest `cap` can ever be shown; a hidden tab draws nothing, so trim here too.
    if (pending.length > cap * 2) pending = pending.slice(-cap);
    schedule(owed > 0);
  }

  function onGap(g, query) {
    const q = new URLSearchParams(query);
    q.set("start_time", g.from);
    q.set("end_time", g.to);
    q.delete("limit");
    notice(
      h(
        "span",
        {},
        // A gap only comes first on a resumed stream: it replaces the "reconnected" notice.
        `Reconnected, but the server skipped ${integer(g.skipped)} matching events (ids ` +
          `${g.first_id}–${g.last_id}`,
        ", from ",
        timeElement(g.from),
        " to ",
        timeElement(g.to),
        ") while the page was disconnected; the newest were sent. ",
        h("a", { href: `explore?${q}` }, "Look them up in the explorer"),
        ".",
      ),
      "warn",
    );
  }

  // Events per second, over the last second.
  let counted = 0;
  setInterval(() => {
    rateEl.textContent = `${integer(received - counted)} events/s`;
    counted = received;
  }, 1000);

  /**
   * One connection: resolves when the server ends the stream, rejects on a failure. `onOpen`
   * runs when the server has answered.
   */
  async function stream(query, signal, onOpen) {
    const watchdog = new AbortController();
    let timer = setTimeout(
      () => watchdog.abort(new DOMException("no answer", "TimeoutError")),
      CONNECT_TIMEOUT_MS,
    );
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => watchdog.abort(new DOMException("silent", "TimeoutError")),
        IDLE_TIMEOUT_MS,
      );
    };
    try {
      const headers = { accept: "text/event-stream", ...authHeaders() };
      if (lastId !== null) headers["last-event-id"] = lastId;
      const res = await fetch(apiUrl("logs/live-feed", query), {
        headers,
        credentials: "same-origin",
        cache: "no-store",
        signal: AbortSignal.any([signal, watchdog.signal]),
      });
      if (!res.ok) throw await refusal(res);
      // The headers are the first bytes (an idle feed sends nothing else until its ping).
      idle();
      onOpen();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let msg = { event: "", data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        idle();
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (msg.id !== null) lastId = msg.id;
            if (msg.data.length) dispatch(msg.event || "message", msg.data.join("\n"), query);
            msg = { event: "", data: [], id: null };
            continue;
          }
          if (line.startsWith(":")) {
            inBacklog = false; // a comment: the heartbeat, first sent where the backlog ends
            continue;
          }
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? "" : line.slice(colon + 1);
          if (v.startsWith(" ")) v = v.slice(1);
          if (field === "event") msg.event = v;
          else if (field === "data") msg.data.push(v);
          else if (field === "id" && !v.includes("\0")) msg.id = v;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  function dispatch(type, data, query) {
    if (type === "log") onEvent(JSON.parse(data));
    else if (type === "gap") onGap(JSON.parse(data), query);
  }

  /** Streams until `signal` aborts, reconnecting with Last-Event-ID after drops. */
  async function run(query, signal) {
    let attempt = 0;
    let dropped = false;
    while (!signal.aborted) {
      setState(dropped ? "reconnecting" : "connecting", "warn");
      try {
        await stream(query, signal, () => {
          attempt = 0;
          // The backlog (or the replay after a drop) comes at once: drawn in full.
          inBacklog = true;
          setState("live", "ok");
          if (dropped) {
            notice(
              `Reconnected: the feed resumed${
                lastId === null ? "" : ` after event ${lastId}`
              }; nothing was skipped unless the server says so.`,
            );
          } else notice();
          dropped = false;
        });
        if (signal.aborted) return;
      } catch (err) {
        if (signal.aborted) return;
        // A refused request (bad filter, no right) will not get better by retrying.
        if (
          err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429
        ) {
          setState("stopped", "bad");
          showError(form, err);
          return;
        }
      }
      const wait = BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)];
      dropped = true;
      setState("reconnecting", "warn");
      notice(
        `The connection to the live feed dropped; reconnecting in ${
          wait < 1000 ? "a moment" : `${wait / 1000} s`
        }${lastId === null ? "" : ` from event ${lastId}`}.`,
        "warn",
      );
      await sleep(wait, signal);
    }
  }

  function restart() {
    feed?.abort();
    feed = new AbortController();
    const query = Object.fromEntries(
      [...new Set(new URLSearchParams(location.search).keys())].map(
        (k) => [k, new URLSearchParams(location.search).getAll(k)],
      ),
    );
    fillForm(form, new URLSearchParams(location.search));
    lastId = null;
    received = counted = 0;
    pending = [];
    owed = 0;
    replace(tbody);
    notice();
    schedule();
    run(query, feed.signal).catch((err) => notice(errorText(err), "error"));
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = formQuery(form);
    history.pushState(null, "", `live${q.size ? `?${q}` : ""}`);
    restart();
  });
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    // What was held while paused is drawn in full.
    if (!paused) owed = Math.min(pending.length, cap);
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.classList.toggle("primary", paused);
    schedule(owed > 0);
  });
  addEventListener("popstate", restart);
  addEventListener("pagehide", () => feed?.abort());
  // Back from the back/forward cache: the stream was aborted when the page was left.
  addEventListener("pageshow", (e) => e.persisted && restart());
  restart();
});
