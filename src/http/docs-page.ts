// The /docs page: Swagger UI (npm swagger-ui-dist, pinned in deno.json) rendering /openapi.json,
// served entirely from our origin so it works with no internet.
//
// The assets are text imports: they are part of the module graph, so they ship with the code
// (Deno Deploy, `deno compile`) and nothing reads node_modules or the disk at run time.
import swaggerUiCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import swaggerUiJs from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import initJs from "./docs/init.js" with { type: "text" };
import { type Asset as DocsAsset, etagOf, fingerprint as asset } from "./static-assets.ts";

export type { DocsAsset };

export interface DocsPage {
  html: string;
  etag: string;
  csp: string;
  /** By name, as linked from the page. */
  assets: ReadonlyMap<string, DocsAsset>;
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
    etag: etagOf(html),
    csp,
    assets: new Map([css, js, init].map((a) => [a.name, a])),
  };
}
