// The /docs page: Swagger UI (npm swagger-ui-dist, pinned in deno.json) rendering /openapi.json,
// served entirely from our origin so it works with no internet.
//
// The assets are text imports: they are part of the module graph, so they ship with the code
// (Deno Deploy, `deno compile`) and nothing reads node_modules or the disk at run time.
import { createHash } from "node:crypto";
import swaggerUiCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import swaggerUiJs from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import initJs from "./docs/init.js" with { type: "text" };

export interface DocsAsset {
  /** The name the page links to, with a hash of the content in it (cacheable for ever). */
  name: string;
  type: string;
  body: string;
  etag: string;
}

export interface DocsPage {
  html: string;
  etag: string;
  csp: string;
  /** By name, as linked from the page. */
  assets: ReadonlyMap<string, DocsAsset>;
}

const hash = (text: string) => createHash("sha256").update(text).digest("base64url");

function asset(file: string, type: string, body: string): DocsAsset {
  const h = hash(body);
  const dot = file.lastIndexOf(".");
  return {
    name: `${file.slice(0, dot)}.${h.slice(0, 12)}${file.slice(dot)}`,
    type,
    body,
    etag: `"${h.slice(0, 22)}"`,
  };
}

export function buildDocsPage(): DocsPage {
  const css = asset(
    "swagger-ui.css",
    "text/css; charset=utf-8",
    // The source map is not shipped: without this a browser's developer tools ask for a 404.
    swaggerUiCss.replace(/\/\*# sourceMappingURL=[^*]*\*\/\s*$/, ""),
  );
  const js = asset("swagger-ui-bundle.js", "text/javascript; charset=utf-8", swaggerUiJs);
  const init = asset("init.js", "text/javascript; charset=utf-8", initJs);
  // Relative links: /docs resolves them under /docs/assets/, behind a path prefix too.
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Observian API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/assets/${css.name}">
</head>
<body>
<div id="swagger-ui"></div>
<noscript><p>This page renders <a href="openapi.json">openapi.json</a> with JavaScript.</p></noscript>
<script src="docs/assets/${js.name}"></script>
<script src="docs/assets/${init.name}"></script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    // Scripts and styles from our origin only: nothing inline, no eval.
    "script-src 'self'",
    "style-src 'self'",
    // swagger-ui.css draws its icons as data: SVGs.
    "img-src 'self' data:",
    // "Try it out" and the document itself: fetches to this origin only.
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return {
    html,
    etag: `"${hash(html).slice(0, 22)}"`,
    csp,
    assets: new Map([css, js, init].map((a) => [a.name, a])),
  };
}
