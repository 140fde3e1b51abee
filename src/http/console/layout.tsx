// The frame of every console page: head (fingerprinted CSS and the page's module), the top
// navigation, the notice area, and the sign-in dialog. Pages are shells: the browser module
// fetches the data with the tab's key or the sign-in cookie, so the HTML holds nothing secret.
import type { Child } from "hono/jsx";
import type { ConsoleAssets } from "./bundle.ts";

export type PageId = "overview" | "service" | "explore" | "live" | "jobs" | "admin";

export interface Frame {
  assets: ConsoleAssets;
  /** "./" at the root, "../" one level down: every link and fetch is relative to it. */
  base: string;
  /** Whether access control is on (a key or sign-in exists); off, data needs no key. */
  accessOn: boolean;
  /** Configured sign-in providers. */
  signIn: ("github" | "oidc")[];
  /** role → rights, for the browser to tell what to offer. */
  roleRights: Record<string, readonly string[]>;
}

const NAV: { id: PageId; href: string; label: string; needs?: string }[] = [
  { id: "overview", href: "./", label: "Overview" },
  { id: "explore", href: "explore", label: "Explore" },
  { id: "live", href: "live", label: "Live tail" },
  { id: "jobs", href: "jobs", label: "Jobs" },
  { id: "admin", href: "admin", label: "Administration", needs: "admin" },
];

const PROVIDER_NAMES = { github: "GitHub", oidc: "single sign-on" } as const;

export function Layout(
  props: {
    frame: Frame;
    page: PageId;
    title: string;
    /** The right the page's data needs, checked in the browser to explain a refusal. */
    needs?: string;
    charts?: boolean;
    children?: Child;
  },
) {
  const { frame, page } = props;
  const asset = (file: string) => `console/assets/${frame.assets.url(file)}`;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <meta name="referrer" content="no-referrer" />
        <base href={frame.base} />
        <title>{props.title} · Observian</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={asset("console.css")} />
        {props.charts && <link rel="stylesheet" href={asset("uPlot.min.css")} />}
        {props.charts && <script src={asset("uPlot.min.js")} defer></script>}
        <script type="module" src={asset(`${page}.js`)}></script>
        {frame.assets.imports(`${page}.js`).map((name) => (
          <link rel="modulepreload" href={`console/assets/${name}`} />
        ))}
      </head>
      <body
        data-page={page}
        data-access={frame.accessOn ? "on" : "open"}
        data-roles={JSON.stringify(frame.roleRights)}
        data-needs={props.needs}
      >
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="./">Observian</a>
          <nav aria-label="Main">
            <ul>
              {NAV.map((n) => (
                <li data-needs={n.needs} hidden={n.needs ? true : undefined}>
                  <a href={n.href} aria-current={n.id === page ? "page" : undefined}>{n.label}</a>
                </li>
              ))}
            </ul>
          </nav>
          <div id="who" aria-live="polite"></div>
        </header>
        <div id="notice" role="status" aria-live="polite"></div>
        <main id="main" tabindex={-1}>{props.children}</main>
        <dialog id="sign-in" aria-labelledby="sign-in-title">
          <h2 id="sign-in-title">Sign in to Observian</h2>
          <p id="sign-in-reason" class="muted"></p>
          {frame.signIn.map((p) => (
            <p>
              <a class="button primary" data-provider={p} href={`auth/login?provider=${p}`}>
                Sign in with {PROVIDER_NAMES[p]}
              </a>
            </p>
          ))}
          <form id="key-form">
            <label for="key-input">
              {frame.signIn.length ? "Or use an API key" : "API key"}
              <input
                id="key-input"
                type="password"
                autocomplete="off"
                spellcheck={false}
                required
              />
            </label>
            <p id="key-error" class="muted" role="alert"></p>
            <button type="submit" class="primary">Use this key</button>
            <p class="muted">The key is kept for this browser tab only, until it is closed.</p>
          </form>
        </dialog>
      </body>
    </html>
  );
}

/** The page as a document. */
export async function render(node: { toString(): string | Promise<string> }): Promise<string> {
  return `<!doctype html>\n${await node.toString()}`;
}
