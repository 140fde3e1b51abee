// The jobs page: the GitHub ingestor and the pruner — switch, schedule, last runs, last error,
// rate limit — and, for admins, the switches, "Run now" and a prune that needs a dry run first.
import { api, ApiError } from "./api.js";
import { $, emptyRow, errorText, h, notice, replace } from "./dom.js";
import { compact, integer, ms, timeElement } from "./fmt.js";
import { can, start } from "./session.js";

const dash = "–";
const when = (iso) => iso ? timeElement(iso) : dash;

/** A definition list from [term, value] pairs (value: text or node). */
function facts(dl, pairs) {
  replace(dl, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? dash)]));
}

function switchBadge(enabled) {
  return h("span", { class: `badge ${enabled ? "ok" : "warn"}` }, enabled ? "on" : "off");
}

const OUTCOME_CLASS = {
  ok: "ok",
  not_modified: "ok",
  success: "ok",
  rate_limited: "warn",
  skipped_interval: "",
  skipped_rate_limit: "warn",
  error: "bad",
  timeout: "bad",
  failure: "bad",
};

function outcomeBadge(outcome) {
  return h("span", { class: `badge ${OUTCOME_CLASS[outcome] ?? ""}` }, outcome.replace("_", " "));
}

/** The toggle: its label and aria-pressed say the current state. */
function showToggle(button, name, enabled) {
  button.dataset.enabled = String(enabled);
  button.setAttribute("aria-pressed", String(enabled));
  button.textContent = `${name}: ${enabled ? "on" : "off"}`;
  button.title = `Switch the ${name.toLowerCase()} ${enabled ? "off" : "on"}`;
  button.disabled = false;
}

async function loadIngestor() {
  const status = await api("control/ingestor-status");
  // Switched off, the ingestor is not running, and asking would only be answered 503.
  const health = status.enabled
    ? await api("control/ingestor-health").catch((err) => {
      // 503 answers the same body while the ingestor is not running.
      if (
        err instanceof ApiError && err.status === 503 && typeof err.problem?.running === "boolean"
      ) {
        return err.problem;
      }
      throw err;
    })
    : { running: false, reason: "switched off" };
  const rate = status.rate_limit_remaining === null ? "not known yet" : [
    `${integer(status.rate_limit_remaining)} requests left`,
    status.rate_limit_reset ? [", resets ", timeElement(status.rate_limit_reset)] : "",
  ];
  facts($("#ingestor-facts"), [
    ["Switch", switchBadge(status.enabled)],
    [
      "Health",
      health.running ? h("span", { class: "badge ok" }, "running") : h(
        "span",
        { class: `badge ${status.enabled ? "bad" : ""}` },
        health.reason ?? "not running",
      ),
    ],
    ["Schedule", h("code", {}, status.schedule), " (UTC)"],
    ["Source", status.source],
    ["Next run", when(status.next_run_at)],
    ["Last run", when(status.last_run_at)],
    ["Last finished", when(status.last_finished_at)],
    ["Last success", when(status.last_success_at)],
    ["Consecutive failures", integer(status.consecutive_failures)],
    ["Events ingested", compact(status.events_ingested_total)],
    [
      "Last error",
      status.last_error ? h("span", { class: "error-text" }, status.last_error) : "none",
    ],
    ["GitHub rate limit", rate],
    ...(status.rate_limited_until
      ? [["Rate limited until", timeElement(status.rate_limited_until)]]
      : []),
    ["Switched by", status.updated_by ?? dash],
  ]);
  const tbody = $("#ingestor-runs tbody");
  const polls = status.sources.filter((s) => s.last_poll);
  if (!polls.length) emptyRow(tbody, 12, "No poll yet.");
  else {
    replace(
      tbody,
      polls.map(({ source, last_poll: p }) => {
        const end = p.latency_ms === null
          ? null
          : new Date(Date.parse(p.at) + p.latency_ms).toISOString();
        return h(
          "tr",
          {},
          h("td", {}, source),
          h("td", {}, when(p.at)),
          h("td", { title: p.latency_ms === null ? null : ms(p.latency_ms) }, when(end)),
          h("td", {}, outcomeBadge(p.outcome)),
          h("td", { class: "num" }, p.status ?? dash),
          h("td", { class: "num" }, integer(p.pages)),
          h("td", { class: "num" }, integer(p.new)),
          h("td", { class: "num" }, integer(p.duplicates)),
          h("td", { class: "num" }, integer(p.too_old)),
          h("td", { class: "num" }, integer(p.invalid)),
          h("td", { class: "num" }, integer(p.rate_limit_remaining)),
          h("td", { class: "wrap" }, p.error ?? ""),
        );
      }),
    );
  }
  showToggle($("#ingestor-toggle"), "Ingestor", status.enabled);
  $("#ingestor-run").disabled = false;
  return status;
}

async function loadPruner() {
  const s = await api("control/pruner-status");
  facts($("#pruner-facts"), [
    ["Switch", switchBadge(s.enabled)],
    ["Schedule", h("code", {}, s.schedule), " (UTC)"],
    ["Keeps logs", `${integer(s.retention_days)} days`],
    ["Keeps rollups", `${integer(s.rollup_retention_days)} days`],
    ["Next run", when(s.next_run_at)],
    ["Last success", when(s.last_success_at)],
    ["Consecutive failures", integer(s.consecutive_failures)],
    ["Last error", s.last_error ? h("span", { class: "error-text" }, s.last_error) : "none"],
    ["Switched by", s.updated_by ?? dash],
  ]);
  const tbody = $("#pruner-runs tbody");
  if (!s.last_run_at) emptyRow(tbody, 6, "Not run yet.");
  else {
    // The last run failed when a failure is counted since the last success.
    const failed = s.consecutive_failures > 0;
    const r = s.last_result;
    replace(
      tbody,
      h(
        "tr",
        {},
        h("td", {}, when(s.last_run_at)),
        h("td", {}, when(s.last_finished_at)),
        h("td", {}, outcomeBadge(failed ? "failure" : s.last_finished_at ? "success" : "running")),
        h("td", { class: "num" }, r ? integer(r.deleted) : dash),
        h("td", { class: "num" }, r ? integer(r.dropped_partitions) : dash),
        h("td", {}, r ? when(r.cutoff) : dash),
      ),
    );
  }
  showToggle($("#pruner-toggle"), "Pruner", s.enabled);
  const days = $("#prune-days");
  if (!days.value) days.value = String(s.retention_days);
  return s;
}

/** Loads a job's status; a failure is shown, not thrown, so the other job still shows. */
async function refresh(which = ["ingestor", "pruner"]) {
  const loads = { ingestor: loadIngestor, pruner: loadPruner };
  const results = await Promise.allSettled(which.map((w) => loads[w]()));
  const failed = results.find((r) => r.status === "rejected");
  if (failed) notice(errorText(failed.reason), "error");
}

/** Runs an action with its button disabled, then refreshes the job it touched. */
async function act(button, job, fn) {
  button.disabled = true;
  try {
    notice("");
    await fn();
  } catch (err) {
    notice(errorText(err), "error");
  } finally {
    button.disabled = false;
    await refresh([job]);
  }
}

function runText(r) {
  if (r.status === "skipped") {
    return r.reason === "disabled"
      ? "Not run: the ingestor is switched off."
      : "Not run: a run is under way elsewhere.";
  }
  if (r.status === "idle") return "Nothing was due (GitHub's rate limit is exhausted).";
  if (r.status === "failure") return `The run failed: ${r.error ?? "unknown error"}`;
  return `Ran in ${ms(r.duration_ms)}: ${integer(r.new)} new, ${
    integer(r.duplicates)
  } duplicates, ${r.polls.length} polls.`;
}

function pruneText(r) {
  if (r.status === "skipped") {
    return r.reason === "disabled"
      ? "Not pruned: the pruner is switched off."
      : "Not pruned: a prune is under way elsewhere.";
  }
  if (r.status === "failure") return `The prune failed: ${r.error ?? "unknown error"}`;
  const what = `${integer(r.deleted)} rows (${integer(r.dropped_partitions)} whole partitions) ` +
    `older than ${new Date(r.cutoff).toLocaleString()}, and ${
      integer(r.audit_deleted)
    } audit entries`;
  return r.dry_run ? `A prune now would remove ${what}.` : `Removed ${what}.`;
}

function wireAdmin() {
  for (const job of ["ingestor", "pruner"]) {
    const button = $(`#${job}-toggle`);
    button.addEventListener("click", () =>
      act(button, job, async () => {
        const enable = button.dataset.enabled !== "true";
        await api(`control/${job}-toggle`, { method: "POST", query: { enable } });
      }));
  }
  const run = $("#ingestor-run");
  run.addEventListener("click", () =>
    act(run, "ingestor", async () => {
      replace($("#ingestor-outcome"), "Running…");
      // A run polls every source; GitHub may be slow.
      const r = await api("control/ingestor-run", { method: "POST", timeoutMs: 60_000 });
      replace($("#ingestor-outcome"), runText(r));
    }));

  const form = $("#prune-form");
  const days = $("#prune-days");
  const dry = $("#prune-dry");
  const confirm = $("#prune-confirm");
  const result = $("#prune-result");
  /** The days the last dry run was for: confirming prunes exactly what it showed. */
  let dryDays = null;
  const sync = () => {
    confirm.disabled = dryDays === null || String(dryDays) !== days.value;
  };
  days.addEventListener("input", () => {
    if (dryDays !== null && String(dryDays) !== days.value) {
      replace(result, "Changed: run a dry run for these days first.");
    }
    sync();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const n = Number(days.value);
    dryDays = null;
    sync();
    dry.disabled = true;
    replace(result, "Counting…");
    try {
      const r = await api("control/prune", { method: "POST", query: { days: n, dry_run: true } });
      replace(result, pruneText(r));
      if (r.status === "success" && String(n) === days.value) dryDays = n;
    } catch (err) {
      replace(result, "");
      notice(errorText(err), "error");
    } finally {
      dry.disabled = false;
      sync();
    }
  });
  confirm.addEventListener("click", () => {
    const n = dryDays;
    if (n === null || String(n) !== days.value) return;
    confirm.disabled = true;
    dryDays = null;
    return act(confirm, "pruner", async () => {
      replace(result, "Pruning…");
      const r = await api("control/prune", {
        method: "POST",
        query: { days: n, dry_run: false },
        timeoutMs: 120_000,
      });
      replace(result, pruneText(r));
    }).finally(sync);
  });
  sync();
}

start(async () => {
  if (can("admin")) wireAdmin();
  // A toggle stays disabled until its job's state is known.
  await refresh();
});
