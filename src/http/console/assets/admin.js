// The administration page (admins only): API keys (create, show the token once, revoke),
// users' roles and teams, and the audit log with keyset paging.
import { api, ApiError, apiPage } from "./api.js";
import { $, emptyRow, errorText, h, notice, replace } from "./dom.js";
import { integer, timeElement } from "./fmt.js";
import { start } from "./session.js";

const ROLES = ["reader", "writer", "admin"];
const AUDIT_PAGE = 50;
const dash = "–";
const when = (iso) => iso ? timeElement(iso) : dash;

/** "a, b ,, c" → ["a", "b", "c"] */
const splitTeams = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

// ---- API keys ----

async function loadKeys() {
  const keys = await api("keys");
  const tbody = $("#keys-table tbody");
  if (!keys.length) return emptyRow(tbody, 9, "No stored keys (API_KEYS are not listed).");
  replace(tbody, keys.map(keyRow));
}

function keyRow(k) {
  const actions = h("td", { class: "actions" });
  const row = h(
    "tr",
    { dataset: { keyId: String(k.id) } },
    h("td", {}, k.name),
    h("td", {}, h("code", {}, k.prefix)),
    h("td", {}, h("span", { class: "badge" }, k.role)),
    h("td", { class: "wrap" }, k.teams.length ? k.teams.join(", ") : dash),
    h("td", { class: "num" }, k.rate_limit_per_s === null ? dash : integer(k.rate_limit_per_s)),
    h("td", {}, when(k.created_at)),
    h("td", {}, k.last_used_at ? timeElement(k.last_used_at) : "never"),
    h("td", {}, k.expires_at ? timeElement(k.expires_at) : "never"),
    actions,
  );
  const ask = () => {
    const yes = h("button", { type: "button", class: "danger confirm-revoke" }, "Confirm revoke");
    const no = h("button", { type: "button", class: "link" }, "Cancel");
    yes.addEventListener("click", () => revoke(k, yes, no));
    no.addEventListener("click", () => {
      idle();
      $("button", actions)?.focus();
    });
    replace(actions, h("span", { class: "muted" }, `Revoke “${k.name}”? `), yes, " ", no);
    yes.focus();
  };
  const idle = () =>
    replace(
      actions,
      h("button", {
        type: "button",
        class: "danger revoke",
        "aria-label": `Revoke ${k.name}`,
        onclick: ask,
      }, "Revoke"),
    );
  idle();
  return row;
}

async function revoke(k, yes, no) {
  yes.disabled = no.disabled = true;
  try {
    await api(`keys/${k.id}`, { method: "DELETE" });
    notice(`Revoked “${k.name}”: it no longer works.`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      notice(`Not revoked: ${errorText(err)}`, "error");
    } else if (err instanceof ApiError && err.status === 404) {
      notice(`“${k.name}” was already revoked.`);
    } else {
      notice(`Not revoked: ${errorText(err)}`, "error");
    }
  }
  await Promise.all([loadKeys(), loadAudit()]).catch((err) => notice(errorText(err), "error"));
}

function wireKeys() {
  const form = $("#key-create");
  const submit = $("#key-create-submit");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("#key-name").value.trim();
    const body = { name, role: $("#key-role").value };
    const teams = splitTeams($("#key-teams").value);
    if (teams.length) body.teams = teams;
    const rate = $("#key-rate").value;
    if (rate !== "") body.rate_limit_per_s = Number(rate);
    submit.disabled = true;
    try {
      const key = await api("keys", { method: "POST", body });
      showToken(key);
      form.reset();
      notice("");
    } catch (err) {
      notice(`Not created: ${errorText(err)}`, "error");
    } finally {
      submit.disabled = false;
    }
    await Promise.all([loadKeys(), loadAudit()]).catch((err) => notice(errorText(err), "error"));
  });

  $("#copy-token").addEventListener("click", async () => {
    const input = $("#new-token");
    const note = $("#new-token-note");
    try {
      await navigator.clipboard.writeText(input.value);
      note.textContent = "Copied. This is the only time the token is shown.";
    } catch {
      // No clipboard (an insecure origin, or permission refused): select it for the person.
      input.focus();
      input.select();
      note.textContent = "Selected: copy it with Ctrl+C (⌘C). It is not shown again.";
    }
  });
  $("#dismiss-token").addEventListener("click", hideToken);
}

/** The token, once: it lives only in this field until dismissed or the page is left. */
function showToken(key) {
  const box = $("#new-key");
  $("#new-token-title").textContent = `Token of “${key.name}” (${key.role})`;
  $("#new-token").value = key.token;
  $("#new-token-note").textContent = "This is the only time the token is shown: copy it now.";
  box.hidden = false;
  $("#new-token").focus();
  $("#new-token").select();
}

function hideToken() {
  $("#new-token").value = "";
  $("#new-key").hidden = true;
  $("#key-name").focus();
}

// ---- Users ----

async function loadUsers() {
  const users = await api("users");
  const tbody = $("#users-table tbody");
  if (!users.length) return emptyRow(tbody, 7, "Nobody has signed in or been given a role yet.");
  replace(tbody, users.map(userRow));
}

function userRow(u) {
  const id = `user-${u.login.replace(/[^\w-]/g, "_")}`;
  const role = h(
    "select",
    { id: `${id}-role`, "aria-label": `Role of ${u.login}` },
    h("option", { value: "" }, "no role"),
    ROLES.map((r) => h("option", { value: r, selected: u.role === r }, r)),
  );
  const teams = h("input", {
    id: `${id}-teams`,
    "aria-label": `Teams of ${u.login} (comma-separated)`,
    value: u.teams.join(", "),
    autocomplete: "off",
  });
  const save = h("button", { type: "button", "aria-label": `Save ${u.login}` }, "Save");
  const status = h("span", { class: "muted", role: "status" });
  const changed = () => {
    status.textContent = "";
    save.classList.toggle(
      "primary",
      (role.value || null) !== u.role || splitTeams(teams.value).join(",") !== u.teams.join(","),
    );
  };
  role.addEventListener("change", changed);
  teams.addEventListener("input", changed);
  save.addEventListener("click", async () => {
    save.disabled = true;
    try {
      const next = await api(`users/${encodeURIComponent(u.login)}`, {
        method: "PUT",
        body: { role: role.value || null, teams: splitTeams(teams.value) },
      });
      Object.assign(u, next);
      changed();
      status.textContent = "Saved.";
      await loadAudit();
    } catch (err) {
      notice(`${u.login} not changed: ${errorText(err)}`, "error");
    } finally {
      save.disabled = false;
    }
  });
  return h(
    "tr",
    { dataset: { login: u.login } },
    h("td", {}, u.login),
    h("td", {}, u.email ?? dash),
    h("td", {}, u.provider ?? "not signed in yet"),
    h("td", {}, role),
    h("td", {}, teams),
    h("td", {}, when(u.last_seen_at)),
    h("td", {}, save, " ", status),
  );
}

// ---- Audit log ----

/** The cursors of the pages before this one (undefined: the newest page). */
const auditPages = [];
let auditCursor;
let auditNext = null;
let auditAbort = null;

function auditQuery() {
  const iso = (v) => v ? new Date(v).toISOString() : undefined;
  return {
    action: $("#audit-action").value.trim(),
    actor: $("#audit-actor").value.trim(),
    start_time: iso($("#audit-from").value),
    end_time: iso($("#audit-to").value),
    limit: AUDIT_PAGE,
    cursor: auditCursor,
  };
}

/** GET /audit: a page of entries and the next page's cursor. */
async function fetchAudit(query, signal) {
  const { items, next } = await apiPage("audit", { query, signal });
  return { entries: items, next };
}

async function loadAudit() {
  auditAbort?.abort();
  const ctl = auditAbort = new AbortController();
  const tbody = $("#audit-table tbody");
  let page;
  try {
    page = await fetchAudit(auditQuery(), ctl.signal);
  } catch (err) {
    if (ctl.signal.aborted) return;
    throw err;
  }
  auditNext = page.next;
  $("#audit-older").disabled = !auditNext;
  $("#audit-newer").disabled = auditPages.length === 0;
  if (!page.entries.length) return emptyRow(tbody, 5, "No entries match.");
  replace(tbody, page.entries.map(auditRow));
}

function details(e) {
  const parts = Object.entries(e.detail ?? {})
    .filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`);
  if (e.client_addr) parts.push(`from ${e.client_addr}`);
  return parts.join("; ");
}

function auditRow(e) {
  return h(
    "tr",
    { dataset: { action: e.action } },
    h("td", {}, timeElement(e.at)),
    h("td", {}, e.actor),
    h("td", {}, h("code", {}, e.action)),
    h("td", {}, e.target ?? dash),
    h(
      "td",
      { class: "wrap details", title: e.request_id ? `request ${e.request_id}` : null },
      details(e),
    ),
  );
}

function wireAudit() {
  const form = $("#audit-filters");
  const reload = () => loadAudit().catch((err) => notice(errorText(err), "error"));
  const first = () => {
    auditPages.length = 0;
    auditCursor = undefined;
    return reload();
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    first();
  });
  // After the reset has cleared the fields.
  form.addEventListener("reset", () => setTimeout(first));
  $("#audit-older").addEventListener("click", () => {
    if (!auditNext) return;
    auditPages.push(auditCursor);
    auditCursor = auditNext;
    reload();
  });
  $("#audit-newer").addEventListener("click", () => {
    if (!auditPages.length) return;
    auditCursor = auditPages.pop();
    reload();
  });
}

start(async () => {
  wireKeys();
  wireAudit();
  const results = await Promise.allSettled([loadKeys(), loadUsers(), loadAudit()]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) notice(errorText(failed.reason), "error");
});
