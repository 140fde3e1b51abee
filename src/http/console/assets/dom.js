// A small way to build elements: h("td", {class: "num"}, "12") and friends. Text is always set
// as text, never parsed as HTML.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table body's one row saying why it is empty. */
export function emptyRow(tbody, cols, text) {
  replace(tbody, h("tr", {}, h("td", { colspan: cols, class: "muted" }, text)));
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Shows a message in the page's notice area (role=status); kind "error" makes it an alert. */
export function notice(message, kind = "info") {
  const box = document.getElementById("notice");
  if (!box) return;
  if (!message) return replace(box);
  replace(
    box,
    h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null }, message),
  );
}

/** The text of an error for a person: the problem's detail, or the error's message. */
export function errorText(err) {
  if (err?.problem?.detail) return err.problem.detail;
  if (err?.name === "TimeoutError") return "The server did not answer in time; try again.";
  return err?.message ?? String(err);
}
