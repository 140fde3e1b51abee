// The console's browser files: text imports (so they ship with the code, on Deno Deploy too),
// fingerprinted, with each module's `./x.js` imports rewritten to the fingerprinted names so a
// page and everything it imports can be cached for ever. No build step: the files run as written.
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import css from "./assets/console.css" with { type: "text" };
import api from "./assets/api.js" with { type: "text" };
import fmt from "./assets/fmt.js" with { type: "text" };
import dom from "./assets/dom.js" with { type: "text" };
import session from "./assets/session.js" with { type: "text" };
import chart from "./assets/chart.js" with { type: "text" };
import overview from "./assets/overview.js" with { type: "text" };
import service from "./assets/service.js" with { type: "text" };
import explore from "./assets/explore.js" with { type: "text" };
import live from "./assets/live.js" with { type: "text" };
import jobs from "./assets/jobs.js" with { type: "text" };
import admin from "./assets/admin.js" with { type: "text" };
import { type Asset, fingerprint } from "../static-assets.ts";

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

const SOURCES: Record<string, [type: string, body: string]> = {
  "uPlot.min.js": [JS, uplotJs],
  "uPlot.min.css": [CSS, uplotCss],
  "console.css": [CSS, css],
  "api.js": [JS, api],
  "fmt.js": [JS, fmt],
  "dom.js": [JS, dom],
  "session.js": [JS, session],
  "chart.js": [JS, chart],
  "overview.js": [JS, overview],
  "service.js": [JS, service],
  "explore.js": [JS, explore],
  "live.js": [JS, live],
  "jobs.js": [JS, jobs],
  "admin.js": [JS, admin],
};

export interface ConsoleAssets {
  /** By fingerprinted name, as served. */
  byName: ReadonlyMap<string, Asset>;
  /** The fingerprinted name of a source file (`overview.js` → `overview.1a2b….js`). */
  url(file: string): string;
  /**
   * The fingerprinted names of every module `file` imports, directly or not: the page lists
   * them as modulepreload links, so the browser fetches the whole graph at once instead of one
   * level of imports per round trip.
   */
  imports(file: string): string[];
}

const IMPORT = /(["'])\.\/([\w.-]+\.js)\1/g;

export function buildConsoleAssets(): ConsoleAssets {
  const done = new Map<string, Asset>();
  const deps = new Map<string, Set<string>>();
  const resolve = (file: string, path: string[] = []): Asset => {
    const known = done.get(file);
    if (known) return known;
    const source = SOURCES[file];
    if (!source) throw new Error(`console asset ${file} is not listed (imported by ${path})`);
    if (path.includes(file)) throw new Error(`console assets import in a cycle: ${path}`);
    const [type, body] = source;
    const all = new Set<string>();
    const rewritten = type === JS
      ? body.replace(IMPORT, (_, q, dep) => {
        const imported = resolve(dep, [...path, file]);
        all.add(imported.name);
        for (const d of deps.get(dep) ?? []) all.add(d);
        return `${q}./${imported.name}${q}`;
      })
      : body;
    deps.set(file, all);
    const asset = fingerprint(file, type, rewritten);
    done.set(file, asset);
    return asset;
  };
  for (const file of Object.keys(SOURCES)) resolve(file);
  const known = <T>(file: string, m: Map<string, T>): T => {
    const v = m.get(file);
    if (v === undefined) throw new Error(`console asset ${file} is not listed`);
    return v;
  };
  return {
    byName: new Map([...done.values()].map((a) => [a.name, a])),
    url: (file) => known(file, done).name,
    imports: (file) => [...known(file, deps)],
  };
}
