// The live tail: GET /logs/live-feed as Server-Sent Events, read with fetch() because EventSource
// cannot send the tab's Authorization header. The stream is parsed here; a dropped connection is
// resumed with Last-Event-ID after a growing pause, and the person is told when it drops, when
// it resumes and when the server reports events it skipped (a gap). Events are counted as they
// arrive but drawn once per animation frame, newest first, and the table keeps only the latest
// `data-cap` rows, so a thousand events a second cost a few rows per frame.
import { ApiError, apiUrl, authHeaders } from "./api.js";
import { $, errorText, h, notice, replace } from "./dom.js";
import { integer, timeElement } from "./fmt.js";
import { start } from "./session.js";
import { eventRow, fillForm, formQuery, openEvent, showError } from "./explore.js";

/** How long a connect may take before the first bytes arrive (then it is retried). */
const CONNECT_TIMEOUT_MS = 15_000;
/** Silence (no event, no ping: the server pings every LIVE_HEARTBEAT_S, 15 s by default). */
const IDLE_TIMEOUT_MS = 45_000;
const BACKOFF_MS = [500, 1000, 2000, 5000, 10_000, 30_000];

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
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

  let feed = null; // AbortController of the running stream
  let lastId = null;
  let received = 0;
  let pending = []; // arrived, not drawn yet (newest last), at most `cap` worth keeping
  let paused = false;
  let frame = 0;

  const setState = (text, kind = "") => {
    stateEl.className = `badge ${kind}`.trim();
    stateEl.textContent = text;
  };

  function draw() {
    frame = 0;
    receivedEl.textContent = `${integer(received)} events received`;
    if (paused) {
      bufferedEl.textContent = pending.length
        ? `paused; ${integer(pending.length)} newest events held`
        : "paused";
      return;
    }
    bufferedEl.textContent = "";
    if (!pending.length) return;
    const batch = pending.length > cap ? pending.slice(-cap) : pending;
    pending = [];
    const rows = document.createDocumentFragment();
    for (let i = batch.length - 1; i >= 0; i--) rows.append(eventRow(batch[i], openEvent));
    tbody.prepend(rows);
    let extra = tbody.rows.length - cap;
    while (extra-- > 0) tbody.lastElementChild.remove();
  }

  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(draw);
  };

  function onEvent(e) {
    received++;
    pending.push(e);
    // Only the newest `cap` can ever be shown; a hidden tab draws nothing, so trim here too.
    if (pending.length > cap * 2) pending = pending.slice(-cap);
    schedule();
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
        `The server skipped ${integer(g.skipped)} matching events (ids ${g.first_id}–${g.last_id}`,
        ", from ",
        timeElement(g.from),
        " to ",
        timeElement(g.to),
        ") while this page was away. ",
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
   * runs when the first bytes arrive.
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
      if (!res.ok) {
        const type = res.headers.get("content-type") ?? "";
        const data = type.includes("json") ? await res.json() : await res.text();
        if (res.status === 401) dispatchEvent(new CustomEvent("observian:unauthorized"));
        throw new ApiError(res.status, data, res.headers.get("retry-after"));
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let opened = false;
      let msg = { event: "", data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        idle();
        if (!opened) {
          opened = true;
          onOpen();
        }
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
          if (line.startsWith(":")) continue; // a comment: the heartbeat
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
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.classList.toggle("primary", paused);
    schedule();
  });
  addEventListener("popstate", restart);
  addEventListener("pagehide", () => feed?.abort());
  // Back from the back/forward cache: the stream was aborted when the page was left.
  addEventListener("pageshow", (e) => e.persisted && restart());
  restart();
});
