// Who is looking, and what they may do. Every page starts here: it asks /auth/me (with this
// tab's key or the sign-in cookie), shows the person in the header, hides what they may not do
// (elements with data-needs="<right>"; the server refuses it anyway), and asks for a sign-in or
// a key when it has to.
import { api, ApiError, keyStore } from "./api.js";
import { $, $$, errorText, h, notice, replace } from "./dom.js";

const page = document.body.dataset;
/** role → rights, as the server defines them (src/access/principal.ts). */
const ROLE_RIGHTS = JSON.parse(page.roles ?? "{}");
/** What anyone may do while access control is off (no key and no sign-in exist). */
const OPEN_RIGHTS = ["public", "read", "ingest", "service_owner", "metrics"];

/**
 * The caller: {login, role, teams, via: "key"|"session"|"open"}. `can(right)` says whether the
 * console should offer what needs that right.
 */
export let who = null;

export function can(right) {
  if (!who) return false;
  if (who.via === "open") return OPEN_RIGHTS.includes(right);
  return (ROLE_RIGHTS[who.role] ?? []).includes(right);
}

/** Runs `render(who)` once the caller is known; asks for credentials first when needed. */
export async function start(render) {
  addEventListener(
    "observian:unauthorized",
    () => askForCredentials("Your key or session is no longer valid."),
  );
  wireSignIn();
  try {
    who = await identify();
  } catch (err) {
    notice(`Cannot reach Observian: ${errorText(err)}`, "error");
    return;
  }
  showWho();
  // The body carries the page's own right: never hide it (the refusal notice is shown instead).
  for (const el of $$("[data-needs]:not(body)")) el.hidden = !can(el.dataset.needs);
  if (!who) return askForCredentials();
  const right = page.needs;
  if (right && !can(right)) {
    notice(
      who.role === null
        ? "You are signed in, but nobody has given you a role yet: an admin must give you one."
        : `This page needs the ${right} right, which ${who.login} (${who.role}) does not have.`,
      "error",
    );
    return;
  }
  try {
    await render(who);
  } catch (err) {
    notice(errorText(err), "error");
  }
}

async function identify() {
  try {
    const me = await api("auth/me");
    return { ...me, via: keyStore.get() ? "key" : "session" };
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    // A key that no longer works is forgotten; with access control off, nobody needs one.
    if (keyStore.get()) keyStore.clear();
    else if (page.access === "open") return { login: null, role: null, teams: [], via: "open" };
    return null;
  }
}

function showWho() {
  const box = $("#who");
  if (!box) return;
  if (!who) return replace(box);
  if (who.via === "open") {
    return replace(
      box,
      h("span", { class: "badge warn", title: "No key or sign-in exists yet" }, "open access"),
    );
  }
  replace(
    box,
    h(
      "span",
      { class: "who" },
      who.login,
      " ",
      h("span", { class: "badge" }, who.role ?? "no role"),
    ),
    h("button", { type: "button", class: "link", id: "sign-out", onclick: signOut }, "Sign out"),
  );
}

async function signOut() {
  if (who?.via === "session") {
    try {
      await api("auth/logout", { method: "POST" });
    } catch (err) {
      notice(errorText(err), "error");
      return;
    }
  }
  keyStore.clear();
  location.reload();
}

function askForCredentials(reason) {
  const dialog = $("#sign-in");
  if (!dialog || dialog.open) return;
  const why = $("#sign-in-reason");
  if (why) why.textContent = reason ?? "";
  dialog.showModal();
}

function wireSignIn() {
  const form = $("#key-form");
  if (!form) return;
  for (const a of $$("a[data-provider]")) {
    // Back to this page after signing in.
    a.href = `auth/login?provider=${a.dataset.provider}&return_to=${
      encodeURIComponent(location.pathname + location.search)
    }`;
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("#key-input");
    const key = input.value.trim();
    if (!key) return;
    keyStore.set(key);
    try {
      await api("auth/me");
      location.reload();
    } catch (err) {
      keyStore.clear();
      replace(
        $("#key-error"),
        err instanceof ApiError && err.status === 401 ? "That key is not valid." : errorText(err),
      );
      input.focus();
    }
  });
}
