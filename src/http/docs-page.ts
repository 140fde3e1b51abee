// The /docs page: one static HTML document with its CSS and JS inline, so it works on a network
// with no internet. The script fetches openapi.json and builds the page with DOM calls only
// (createElement, createTextNode, textContent, setAttribute): API strings are never parsed as
// HTML, and the CSP forbids innerHTML-style sinks outright (require-trusted-types-for).
//
// The script keeps to a small DOM subset (see DOM_SUBSET) so tests can run it in Deno against a
// fake document. It is plain ES2020 without template literals, as it lives in String.raw.
import { createHash } from "node:crypto";

const CSS = String.raw`
:root { color-scheme: light dark; --bg: #fff; --fg: #1d2125; --muted: #5c6670; --line: #d9dee3;
  --card: #f7f8fa; --code: #eef1f4; --accent: #2459c7; --get: #1f7a4d; --post: #2459c7;
  --put: #8a5a00; --delete: #b3261e; --patch: #6b3fa0; --err: #b3261e; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #15181b; --fg: #e3e6e8; --muted: #9aa4ad; --line: #2f353b; --card: #1c2024;
    --code: #242a30; --accent: #7aa7ff; --get: #5fc08f; --post: #7aa7ff; --put: #e0b050;
    --delete: #ff8a80; --patch: #c59cff; --err: #ff8a80; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
code, pre, .mono, input, textarea, select { font-family: ui-monospace, SFMono-Regular, Menlo,
  Consolas, monospace; font-size: 13px; }
header.top { padding: 12px 20px; border-bottom: 1px solid var(--line); }
header.top h1 { margin: 0; font-size: 20px; }
#status { margin: 4px 0 0; color: var(--muted); }
#status.error { color: var(--err); }
.layout { display: grid; grid-template-columns: 280px 1fr; min-height: calc(100vh - 70px); }
nav { border-right: 1px solid var(--line); padding: 12px; position: sticky; top: 0;
  max-height: 100vh; overflow: auto; }
nav input { width: 100%; padding: 6px; margin-bottom: 8px; }
nav h2 { font-size: 12px; text-transform: uppercase; color: var(--muted); margin: 12px 0 4px; }
nav a { display: block; padding: 2px 4px; color: var(--fg); text-decoration: none;
  border-radius: 4px; overflow-wrap: anywhere; }
nav a:hover { background: var(--code); }
main { padding: 16px 24px; min-width: 0; }
.intro { margin-bottom: 20px; }
.desc { white-space: pre-wrap; }
.muted { color: var(--muted); }
.op { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 20px; padding: 12px 16px;
  background: var(--card); }
.op h2 { font-size: 17px; margin: 0 0 4px; display: flex; gap: 8px; align-items: baseline;
  flex-wrap: wrap; }
.op h3 { font-size: 14px; margin: 14px 0 6px; }
.method { font: bold 12px ui-monospace, monospace; text-transform: uppercase; padding: 2px 6px;
  border-radius: 4px; color: var(--bg); background: var(--muted); }
.m-get { background: var(--get); } .m-post { background: var(--post); }
.m-put { background: var(--put); } .m-delete { background: var(--delete); }
.m-patch { background: var(--patch); }
.path { font: 600 15px ui-monospace, monospace; overflow-wrap: anywhere; }
.deprecated { text-decoration: line-through; }
table { border-collapse: collapse; width: 100%; margin: 4px 0; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid
  var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
code, .tag { background: var(--code); padding: 1px 4px; border-radius: 3px; }
.req { color: var(--err); font-size: 12px; }
.type { color: var(--accent); }
pre { background: var(--code); padding: 8px; border-radius: 6px; overflow: auto; max-height:
  420px; margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
ul.schema { list-style: none; margin: 2px 0; padding-left: 16px; border-left: 1px dotted
  var(--line); }
ul.schema li { margin: 2px 0; }
.constraint { color: var(--muted); font-size: 13px; }
details > summary { cursor: pointer; }
.response { margin: 6px 0; }
.code-2 { color: var(--get); } .code-4, .code-5 { color: var(--err); }
.try { margin-top: 12px; border-top: 1px dashed var(--line); padding-top: 8px; }
.try label { display: block; margin: 6px 0 2px; font-size: 13px; }
.try input, .try select { padding: 4px 6px; min-width: 280px; max-width: 100%; }
.try textarea { width: 100%; min-height: 140px; padding: 6px; }
.try button { margin: 8px 8px 0 0; padding: 5px 14px; cursor: pointer; }
.auth { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; margin: 0 0 20px; }
.auth input { padding: 4px 6px; min-width: 280px; }
@media (max-width: 800px) { .layout { grid-template-columns: 1fr; }
  nav { position: static; max-height: none; border-right: 0; border-bottom: 1px solid
  var(--line); } }
`;

/** The DOM calls the script makes; tests/docs_test.ts provides exactly these. */
export const DOM_SUBSET = [
  "document.getElementById",
  "document.createElement",
  "document.createTextNode",
  "Node.appendChild",
  "Node.replaceChildren",
  "Node.textContent",
  "Element.setAttribute",
  "Element.addEventListener",
  "Element.className",
  "Element.hidden",
  "HTMLInputElement.value",
  "HTMLButtonElement.disabled",
  "HTMLDetailsElement.open",
] as const;

const JS = String.raw`
"use strict";
(function () {
  var METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
  var BODY_LIMIT = 1024 * 1024;
  var doc = document;
  var root = doc.getElementById("app");
  var nav = doc.getElementById("nav");
  var statusEl = doc.getElementById("status");
  var titleEl = doc.getElementById("title");
  var spec = null;
  // Credentials typed into the page, by security scheme name; kept in memory only.
  var credentials = {};

  function h(tag, attrs) {
    var el = doc.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") el.className = v;
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else if (k === "value") el.value = v;
        else el.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.appendChild(typeof c === "object" ? c : doc.createTextNode(String(c)));
  }
  function setText(el, text) { el.textContent = text; }
  function pretty(v) {
    if (typeof v === "string") return v;
    try { return JSON.stringify(v, null, 2); } catch (e) { return String(v); }
  }
  function slug(s) { return String(s).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, ""); }

  // JSON pointers inside this document only ("#/components/schemas/X"); others stay unresolved.
  function resolvePointer(ref) {
    if (typeof ref !== "string" || ref.charAt(0) !== "#") return undefined;
    var node = spec;
    var parts = ref.slice(1).split("/").slice(1);
    for (var i = 0; i < parts.length; i++) {
      var key = decodeURIComponent(parts[i]).replace(/~1/g, "/").replace(/~0/g, "~");
      if (node === null || typeof node !== "object" || !Object.prototype.hasOwnProperty.call(node, key)) return undefined;
      node = node[key];
    }
    return node;
  }
  function refName(ref) { var p = String(ref).split("/"); return p[p.length - 1]; }
  // Parameters, bodies and responses may themselves be $refs (one level is the norm).
  function deref(obj) {
    var guard = 0;
    while (obj && typeof obj === "object" && typeof obj.$ref === "string" && guard++ < 10) {
      var next = resolvePointer(obj.$ref);
      if (next === undefined) return obj;
      obj = next;
    }
    return obj;
  }

  function typeLabel(s) {
    if (!s || typeof s !== "object") return "any";
    if (s.$ref) return refName(s.$ref);
    var t;
    if (Array.isArray(s.type)) t = s.type.join(" | ");
    else if (s.type === "array") t = "array of " + typeLabel(s.items);
    else if (s.type) t = s.type;
    else if (s.anyOf || s.oneOf) t = (s.anyOf || s.oneOf).map(typeLabel).join(" | ");
    else if (s.allOf) t = s.allOf.map(typeLabel).join(" & ");
    else if (s.const !== undefined) t = "const";
    else if (s.enum) t = "enum";
    else t = "any";
    if (s.format) t += " (" + s.format + ")";
    if (s.nullable) t += " | null";
    return t;
  }

  function constraints(s) {
    var out = [];
    if (!s || typeof s !== "object") return out;
    if (s.enum) out.push("one of: " + s.enum.map(function (v) { return JSON.stringify(v); }).join(", "));
    if (s.const !== undefined) out.push("always " + JSON.stringify(s.const));
    if (s.default !== undefined) out.push("default " + JSON.stringify(s.default));
    if (s.minimum !== undefined) out.push(">= " + s.minimum);
    if (s.exclusiveMinimum !== undefined && s.exclusiveMinimum !== true) out.push("> " + s.exclusiveMinimum);
    if (s.maximum !== undefined) out.push("<= " + s.maximum);
    if (s.exclusiveMaximum !== undefined && s.exclusiveMaximum !== true) out.push("< " + s.exclusiveMaximum);
    if (s.minLength !== undefined) out.push("min length " + s.minLength);
    if (s.maxLength !== undefined) out.push("max length " + s.maxLength);
    if (s.pattern !== undefined) out.push("pattern " + s.pattern);
    if (s.minItems !== undefined) out.push("min items " + s.minItems);
    if (s.maxItems !== undefined) out.push("max items " + s.maxItems);
    if (s.readOnly) out.push("read-only");
    if (s.writeOnly) out.push("write-only");
    if (s.deprecated) out.push("deprecated");
    return out;
  }

  function exampleText(s) {
    if (!s || typeof s !== "object") return null;
    if (s.example !== undefined) return pretty(s.example);
    if (Array.isArray(s.examples) && s.examples.length) return pretty(s.examples[0]);
    return null;
  }

  // One schema as a nested list; $refs are followed, and a ref already open above is named,
  // not expanded again (recursive schemas).
  function schemaTree(schema, seen, depth) {
    seen = seen || [];
    depth = depth || 0;
    var s = schema;
    if (s && s.$ref) {
      if (seen.indexOf(s.$ref) >= 0 || depth > 12) return h("span", { class: "muted" }, refName(s.$ref) + " (see above)");
      seen = seen.concat([s.$ref]);
      var target = resolvePointer(s.$ref);
      if (target === undefined) return h("span", { class: "muted" }, "unresolved reference " + s.$ref);
      s = target;
    }
    if (!s || typeof s !== "object") return h("span", { class: "type" }, "any");
    var items = [];
    if (s.description && depth === 0) items.push(h("li", { class: "desc" }, s.description));
    if (s.properties && typeof s.properties === "object") {
      var req = Array.isArray(s.required) ? s.required : [];
      Object.keys(s.properties).forEach(function (name) {
        items.push(fieldLine(name, s.properties[name], req.indexOf(name) >= 0, seen, depth));
      });
    }
    if (s.additionalProperties && typeof s.additionalProperties === "object") {
      items.push(fieldLine("{any key}", s.additionalProperties, false, seen, depth));
    }
    if (s.type === "array" || (Array.isArray(s.type) && s.type.indexOf("array") >= 0)) {
      if (s.items) items.push(fieldLine("[item]", s.items, false, seen, depth));
    }
    ["anyOf", "oneOf", "allOf"].forEach(function (k) {
      if (!Array.isArray(s[k])) return;
      var label = k === "allOf" ? "all of" : "one of";
      s[k].forEach(function (opt, i) {
        items.push(fieldLine("(" + label + " #" + (i + 1) + ")", opt, false, seen, depth));
      });
    });
    if (!items.length) {
      var c = constraints(s);
      return h("span", null, h("span", { class: "type" }, typeLabel(s)),
        c.length ? h("span", { class: "constraint" }, " \u2014 " + c.join("; ")) : null);
    }
    return h("ul", { class: "schema" }, items);
  }

  function hasChildren(s) {
    s = s && s.$ref ? resolvePointer(s.$ref) : s;
    if (!s || typeof s !== "object") return false;
    return !!(s.properties || (s.additionalProperties && typeof s.additionalProperties === "object") ||
      s.anyOf || s.oneOf || s.allOf || (s.type === "array" && s.items && hasChildren(s.items)));
  }

  function fieldLine(name, s, required, seen, depth) {
    var resolved = s && s.$ref ? (resolvePointer(s.$ref) || {}) : (s || {});
    var c = constraints(resolved);
    var ex = exampleText(s) !== null ? exampleText(s) : exampleText(resolved);
    var li = h("li", null,
      h("code", null, name), " ",
      h("span", { class: "type" }, typeLabel(s)),
      required ? h("span", { class: "req" }, " required") : null,
      c.length ? h("span", { class: "constraint" }, " \u2014 " + c.join("; ")) : null,
      (s && s.description) || resolved.description
        ? h("div", { class: "desc" }, (s && s.description) || resolved.description) : null,
      ex !== null ? h("div", { class: "constraint" }, "example: ", h("code", null, ex)) : null);
    if (hasChildren(s)) {
      var inner = s.type === "array" && !s.$ref ? s.items : s;
      li.appendChild(schemaTree(inner, seen, depth + 1));
    }
    return li;
  }

  // A plausible value for a schema, for example bodies and the "fill examples" button.
  function exampleOf(s, depth, seen) {
    depth = depth || 0;
    seen = seen || [];
    if (!s || typeof s !== "object" || depth > 8) return null;
    if (s.$ref) {
      if (seen.indexOf(s.$ref) >= 0) return null;
      var t = resolvePointer(s.$ref);
      return exampleOf(t, depth + 1, seen.concat([s.$ref]));
    }
    if (s.example !== undefined) return s.example;
    if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];
    if (s.default !== undefined) return s.default;
    if (s.const !== undefined) return s.const;
    if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
    var opts = s.oneOf || s.anyOf;
    if (Array.isArray(opts) && opts.length) {
      for (var i = 0; i < opts.length; i++) {
        if (opts[i] && opts[i].type !== "null") return exampleOf(opts[i], depth + 1, seen);
      }
    }
    if (Array.isArray(s.allOf)) {
      var merged = {};
      s.allOf.forEach(function (part) {
        var v = exampleOf(part, depth + 1, seen);
        if (v && typeof v === "object" && !Array.isArray(v)) Object.keys(v).forEach(function (k) { merged[k] = v[k]; });
      });
      return merged;
    }
    var type = Array.isArray(s.type) ? s.type.filter(function (x) { return x !== "null"; })[0] : s.type;
    if (type === "object" || s.properties) {
      var obj = {};
      Object.keys(s.properties || {}).forEach(function (k) { obj[k] = exampleOf(s.properties[k], depth + 1, seen); });
      return obj;
    }
    if (type === "array") return [exampleOf(s.items, depth + 1, seen)];
    if (type === "string") return s.format === "date-time" ? new Date().toISOString() : "string";
    if (type === "integer" || type === "number") return s.minimum !== undefined ? s.minimum : 0;
    if (type === "boolean") return true;
    return null;
  }

  function mediaExample(media) {
    if (!media) return undefined;
    if (media.example !== undefined) return media.example;
    if (media.examples && typeof media.examples === "object") {
      var first = Object.keys(media.examples)[0];
      if (first !== undefined) {
        var ex = deref(media.examples[first]);
        if (ex && ex.value !== undefined) return ex.value;
      }
    }
    return exampleOf(media.schema);
  }

  function securityOf(op) {
    var reqs = Array.isArray(op.security) ? op.security : (Array.isArray(spec.security) ? spec.security : []);
    return reqs.filter(function (r) { return r && typeof r === "object"; });
  }
  function schemeOf(name) {
    var schemes = (spec.components && spec.components.securitySchemes) || {};
    return deref(schemes[name]) || null;
  }
  function describeScheme(name) {
    var s = schemeOf(name);
    if (!s) return name;
    if (s.type === "apiKey") return name + " (API key in " + s.in + " \u201c" + s.name + "\u201d)";
    if (s.type === "http") return name + " (HTTP " + s.scheme + (s.bearerFormat ? ", " + s.bearerFormat : "") + ")";
    return name + " (" + s.type + ")";
  }

  function collectOperations() {
    var ops = [];
    var paths = spec.paths || {};
    Object.keys(paths).forEach(function (path) {
      var item = deref(paths[path]) || {};
      var common = Array.isArray(item.parameters) ? item.parameters.map(deref) : [];
      METHODS.forEach(function (method) {
        var op = item[method];
        if (!op || typeof op !== "object") return;
        var own = Array.isArray(op.parameters) ? op.parameters.map(deref) : [];
        var params = common.filter(function (p) {
          return !own.some(function (o) { return o.name === p.name && o.in === p.in; });
        }).concat(own).filter(function (p) { return p && typeof p === "object"; });
        ops.push({
          path: path, method: method, op: op, params: params,
          id: "op-" + method + "-" + slug(path),
          tag: (Array.isArray(op.tags) && op.tags[0]) || "other",
        });
      });
    });
    return ops;
  }

  function paramRows(params) {
    return h("table", null,
      h("thead", null, h("tr", null, ["Name", "In", "Required", "Type", "Description", "Example"].map(function (t) { return h("th", null, t); }))),
      h("tbody", null, params.map(function (p) {
        var s = p.schema || (p.content && p.content[Object.keys(p.content)[0]] && p.content[Object.keys(p.content)[0]].schema) || {};
        var resolved = s.$ref ? (resolvePointer(s.$ref) || {}) : s;
        var c = constraints(resolved);
        var ex = p.example !== undefined ? pretty(p.example) : (exampleText(s) !== null ? exampleText(s) : exampleText(resolved));
        return h("tr", null,
          h("td", null, h("code", { class: p.deprecated ? "deprecated" : null }, p.name)),
          h("td", null, p.in),
          h("td", null, p.required ? h("span", { class: "req" }, "required") : "optional"),
          h("td", null, h("span", { class: "type" }, typeLabel(s)),
            c.length ? h("div", { class: "constraint" }, c.join("; ")) : null),
          h("td", { class: "desc" }, p.description || resolved.description || ""),
          h("td", null, ex !== null ? h("code", null, ex) : ""));
      })));
  }

  function mediaBlock(ct, media) {
    media = media || {};
    var ex = mediaExample(media);
    return h("div", { class: "response" },
      h("div", null, h("code", null, ct), media.schema ? h("span", { class: "type" }, " " + typeLabel(media.schema)) : null),
      media.schema ? schemaTree(media.schema) : null,
      ex !== undefined && ex !== null ? h("details", null, h("summary", null, "Example"), h("pre", null, pretty(ex))) : null);
  }

  function operationCard(o) {
    var op = o.op;
    var security = securityOf(op);
    var card = h("section", { class: "op", id: o.id },
      h("h2", null,
        h("span", { class: "method m-" + o.method }, o.method),
        h("span", { class: "path" + (op.deprecated ? " deprecated" : "") }, o.path),
        op.summary ? h("span", null, op.summary) : null),
      op.operationId ? h("div", { class: "muted" }, "operationId: ", h("code", null, op.operationId)) : null,
      op.description ? h("p", { class: "desc" }, op.description) : null,
      h("div", null, h("strong", null, "Security: "),
        security.length
          ? security.map(function (req, i) {
            var names = Object.keys(req);
            return h("span", null, i ? " or " : "", names.length ? names.map(describeScheme).join(" and ") : "none");
          })
          : "none"));
    if (o.params.length) add(card, [h("h3", null, "Parameters"), paramRows(o.params)]);
    var body = deref(op.requestBody);
    if (body && body.content) {
      add(card, h("h3", null, "Request body", body.required ? h("span", { class: "req" }, " required") : null));
      if (body.description) add(card, h("p", { class: "desc" }, body.description));
      Object.keys(body.content).forEach(function (ct) { add(card, mediaBlock(ct, body.content[ct])); });
    }
    var responses = op.responses || {};
    var codes = Object.keys(responses);
    if (codes.length) {
      add(card, h("h3", null, "Responses"));
      codes.forEach(function (code) {
        var r = deref(responses[code]) || {};
        var content = r.content || {};
        var headers = r.headers || {};
        add(card, h("details", { class: "response", open: code.charAt(0) === "2" },
          h("summary", null, h("strong", { class: "code-" + code.charAt(0) }, code), " ", r.description || ""),
          Object.keys(headers).length ? h("div", null, "Headers: ", Object.keys(headers).map(function (n, i) {
            var hd = deref(headers[n]) || {};
            return h("span", null, i ? ", " : "", h("code", null, n), hd.description ? " (" + hd.description + ")" : "");
          })) : null,
          Object.keys(content).map(function (ct) { return mediaBlock(ct, content[ct]); })));
      });
    }
    add(card, tryIt(o, body));
    return card;
  }

  function isArraySchema(s) {
    s = s && s.$ref ? resolvePointer(s.$ref) : s;
    if (!s) return false;
    if (s.type === "array") return true;
    return Array.isArray(s.anyOf) && s.anyOf.every(function (x) { return isArraySchema(x) || (x && x.type === "string"); }) &&
      s.anyOf.some(isArraySchema);
  }

  function tryIt(o, body) {
    var op = o.op;
    var fields = [];
    var form = h("form", { class: "try" });
    o.params.forEach(function (p) {
      var s = p.schema || {};
      var resolved = s.$ref ? (resolvePointer(s.$ref) || {}) : s;
      var input;
      if (Array.isArray(resolved.enum) || resolved.type === "boolean") {
        var values = Array.isArray(resolved.enum) ? resolved.enum : [true, false];
        input = h("select", { "aria-label": p.name }, h("option", { value: "" }, "(unset)"),
          values.map(function (v) { return h("option", { value: String(v) }, String(v)); }));
      } else {
        var ex = p.example !== undefined ? p.example : exampleOf(s);
        input = h("input", { type: "text", placeholder: ex !== null && ex !== undefined ? String(ex) : "", "aria-label": p.name });
      }
      fields.push({ p: p, input: input, schema: s });
      add(form, [h("label", null, h("code", null, p.name), " ", h("span", { class: "muted" }, "(" + p.in + ")"),
        p.required ? h("span", { class: "req" }, " required") : null,
        isArraySchema(s) ? h("span", { class: "muted" }, " \u2014 comma-separated for several") : null), input]);
    });
    var ctSelect = null;
    var bodyArea = null;
    var types = body && body.content ? Object.keys(body.content) : [];
    if (types.length) {
      ctSelect = h("select", { "aria-label": "content type" }, types.map(function (t) { return h("option", { value: t }, t); }));
      bodyArea = h("textarea", { spellcheck: "false", "aria-label": "request body" });
      var fillBody = function () {
        var ex = mediaExample(body.content[ctSelect.value]);
        bodyArea.value = ex === undefined || ex === null ? "" : pretty(ex);
      };
      ctSelect.addEventListener("change", fillBody);
      fillBody();
      add(form, [h("label", null, "Content-Type"), ctSelect, h("label", null, "Body"), bodyArea]);
    }
    var security = securityOf(op).filter(function (r) { return Object.keys(r).length; });
    if (security.length) {
      add(form, h("p", { class: "muted" }, "Sends the credentials entered under \u201cAuthentication\u201d at the top of the page."));
    }
    var sendBtn = h("button", { type: "submit" }, "Send");
    var stopBtn = h("button", { type: "button" }, "Stop");
    stopBtn.disabled = true;
    var fillBtn = h("button", { type: "button" }, "Fill examples");
    var out = h("div", { class: "result" });
    add(form, [h("div", null, sendBtn, stopBtn, fillBtn), out]);

    fillBtn.addEventListener("click", function () {
      fields.forEach(function (f) {
        var ex = f.p.example !== undefined ? f.p.example : exampleOf(f.schema);
        if (ex !== null && ex !== undefined) f.input.value = Array.isArray(ex) ? ex.join(",") : String(ex);
      });
    });
    var controller = null;
    stopBtn.addEventListener("click", function () { if (controller) controller.abort(); });
    form.addEventListener("submit", function (ev) {
      if (ev && ev.preventDefault) ev.preventDefault();
      send(o, fields, ctSelect, bodyArea, out, function (c) {
        controller = c;
        sendBtn.disabled = !!c;
        stopBtn.disabled = !c;
      });
    });
    return h("details", { class: "try-wrap" }, h("summary", null, "Try it"), form);
  }

  function apiBase() {
    // Relative to the page, so a reverse proxy's path prefix is kept (/prefix/docs -> /prefix/).
    var p = location.pathname.replace(/\/docs\/?$/, "");
    return p.replace(/\/$/, "");
  }

  function shellQuote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }

  function send(o, fields, ctSelect, bodyArea, out, setController) {
    var path = o.path;
    var query = new URLSearchParams();
    var headers = {};
    var missing = [];
    fields.forEach(function (f) {
      var v = f.input.value;
      if (v === "" || v === undefined || v === null) { if (f.p.required) missing.push(f.p.name); return; }
      if (f.p.in === "path") path = path.split("{" + f.p.name + "}").join(encodeURIComponent(v));
      else if (f.p.in === "query") {
        if (isArraySchema(f.schema) && f.p.explode !== false) {
          v.split(",").map(function (x) { return x.trim(); }).filter(Boolean).forEach(function (x) { query.append(f.p.name, x); });
        } else query.append(f.p.name, v);
      } else if (f.p.in === "header") headers[f.p.name] = v;
    });
    if (missing.length) {
      out.replaceChildren(h("p", { class: "req" }, "Missing required: " + missing.join(", ")));
      return;
    }
    securityOf(o.op).some(function (req) {
      var names = Object.keys(req);
      if (!names.length) return true;
      var ok = names.every(function (n) { return credentials[n]; });
      if (!ok) return false;
      names.forEach(function (n) {
        var s = schemeOf(n) || {};
        if (s.type === "apiKey" && s.in === "header") headers[s.name] = credentials[n];
        else if (s.type === "apiKey" && s.in === "query") query.append(s.name, credentials[n]);
        else if (s.type === "http" && String(s.scheme).toLowerCase() === "bearer") headers.Authorization = "Bearer " + credentials[n];
        else if (s.type === "http" && String(s.scheme).toLowerCase() === "basic") headers.Authorization = "Basic " + btoa(credentials[n]);
      });
      return true;
    });
    var init = { method: o.method.toUpperCase(), headers: headers };
    if (ctSelect && bodyArea && o.method !== "get" && o.method !== "head") {
      headers["Content-Type"] = ctSelect.value;
      init.body = bodyArea.value;
    }
    var qs = query.toString();
    var url = apiBase() + path + (qs ? "?" + qs : "");
    var curl = ["curl -i -X " + init.method];
    Object.keys(headers).forEach(function (k) { curl.push("-H " + shellQuote(k + ": " + headers[k])); });
    if (init.body !== undefined) curl.push("--data-binary " + shellQuote(init.body));
    curl.push(shellQuote(new URL(url, location.href).toString()));

    var statusLine = h("div", null, "Sending\u2026");
    var headersPre = h("pre", null, "");
    var bodyPre = h("pre", null, "");
    out.replaceChildren(statusLine,
      h("details", null, h("summary", null, "curl"), h("pre", null, curl.join(" \\\n  "))),
      h("details", null, h("summary", null, "Response headers"), headersPre),
      h("div", null, "Body"), bodyPre);
    var controller = new AbortController();
    init.signal = controller.signal;
    setController(controller);
    var started = performance.now();
    var ct = "";
    fetch(url, init).then(function (res) {
      ct = res.headers.get("content-type") || "";
      setText(statusLine, res.status + (res.statusText ? " " + res.statusText : "") + " \u00b7 " + Math.round(performance.now() - started) + " ms to headers");
      statusLine.className = "code-" + String(res.status).charAt(0);
      var lines = [];
      res.headers.forEach(function (v, k) { lines.push(k + ": " + v); });
      setText(headersPre, lines.join("\n"));
      if (!res.body || !res.body.getReader) return res.text().then(function (t) { return t; });
      // Read incrementally: the live feed's event stream never ends on its own.
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var text = "";
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) return text + decoder.decode();
          text += decoder.decode(r.value, { stream: true });
          setText(bodyPre, text);
          if (text.length > BODY_LIMIT) { controller.abort(); return text + "\n\u2026 (cut at 1 MiB)"; }
          return pump();
        });
      }
      return pump();
    }).then(function (text) {
      if (/json/i.test(ct)) {
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* keep as received */ }
      }
      setText(bodyPre, text);
      statusLine.appendChild(doc.createTextNode(", complete after " + Math.round(performance.now() - started) + " ms"));
    }).catch(function (err) {
      var aborted = err && err.name === "AbortError";
      statusLine.appendChild(doc.createTextNode(aborted ? " (stopped)" : " \u2014 request failed: " + (err && err.message ? err.message : String(err))));
      if (!aborted) statusLine.className = "req";
    }).then(function () { setController(null); });
  }

  function authBox() {
    var schemes = (spec.components && spec.components.securitySchemes) || {};
    var names = Object.keys(schemes);
    if (!names.length) return null;
    return h("section", { class: "auth" }, h("h2", null, "Authentication"),
      h("p", { class: "muted" }, "Used by \u201cTry it\u201d for operations that require it. Kept in this page only."),
      names.map(function (n) {
        var s = deref(schemes[n]) || {};
        var input = h("input", { type: "password", autocomplete: "off", "aria-label": n });
        input.addEventListener("input", function () { credentials[n] = input.value; });
        return h("div", null, h("label", null, describeScheme(n)), s.description ? h("div", { class: "desc muted" }, s.description) : null, input);
      }));
  }

  function render(doc31) {
    spec = doc31 && typeof doc31 === "object" ? doc31 : {};
    var info = spec.info || {};
    setText(titleEl, (info.title || "API") + " " + (info.version || ""));
    var ops = collectOperations();
    var groups = {};
    ops.forEach(function (o) { (groups[o.tag] = groups[o.tag] || []).push(o); });
    var filter = h("input", { type: "search", placeholder: "Filter operations", "aria-label": "Filter operations" });
    var navItems = [];
    var sections = [];
    var navChildren = [filter];
    var mainChildren = [h("div", { class: "intro" },
      info.description ? h("p", { class: "desc" }, info.description) : null,
      h("p", { class: "muted" }, "OpenAPI " + (spec.openapi || "?") + " \u00b7 " + ops.length + " operations \u00b7 raw document: ",
        h("a", { href: "openapi.json" }, "openapi.json"))), authBox()];
    Object.keys(groups).sort().forEach(function (tag) {
      navChildren.push(h("h2", null, tag));
      groups[tag].forEach(function (o) {
        var a = h("a", { href: "#" + o.id }, h("span", { class: "method m-" + o.method }, o.method), " ", o.path);
        var card = operationCard(o);
        var hay = (o.method + " " + o.path + " " + (o.op.summary || "") + " " + tag).toLowerCase();
        navItems.push({ a: a, card: card, hay: hay });
        navChildren.push(a);
        sections.push(card);
      });
    });
    filter.addEventListener("input", function () {
      var q = String(filter.value || "").toLowerCase();
      navItems.forEach(function (n) {
        var hide = q !== "" && n.hay.indexOf(q) < 0;
        n.a.hidden = hide;
        n.card.hidden = hide;
      });
    });
    nav.replaceChildren.apply(nav, navChildren);
    root.replaceChildren.apply(root, mainChildren.filter(Boolean).concat(sections));
    setText(statusEl, ops.length + " operations from openapi.json");
    root.setAttribute("data-state", "ready");
  }

  fetch("openapi.json", { headers: { accept: "application/json" } })
    .then(function (res) {
      if (!res.ok) throw new Error("GET openapi.json answered " + res.status);
      return res.json();
    })
    .then(render)
    .catch(function (err) {
      setText(statusEl, "Could not load the API description: " + (err && err.message ? err.message : String(err)));
      statusEl.className = "error";
      root.setAttribute("data-state", "error");
    });
})();
`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

export interface DocsPage {
  html: string;
  /** The inline script and style, exactly as the hashes in the CSP cover them. */
  script: string;
  style: string;
  csp: string;
  etag: string;
}

export function buildDocsPage(): DocsPage {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Observian API reference</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>
<header class="top"><h1 id="title">Observian API</h1><p id="status" role="status">Loading openapi.json\u2026</p></header>
<div class="layout"><nav id="nav" aria-label="Operations"></nav><main id="app" data-state="loading"></main></div>
<noscript><p>This page renders <a href="openapi.json">openapi.json</a> with JavaScript.</p></noscript>
<script>${JS}</script>
</body>
</html>
`;
  // Hashes rather than a nonce: the page is static, so it can be cached and revalidated.
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(JS)}`,
    `style-src ${sha256(CSS)}`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
  ].join("; ");
  const etag = `"${createHash("sha256").update(html).digest("base64url").slice(0, 22)}"`;
  return { html, script: JS, style: CSS, csp, etag };
}
