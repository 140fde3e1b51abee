// Starts Swagger UI on /docs. A file of its own, served from our origin, so that the page's CSP
// allows no inline script at all.
"use strict";

// deno-lint-ignore no-undef -- the global that swagger-ui-bundle.js defines, loaded just before.
const { presets, plugins } = SwaggerUIBundle;
// deno-lint-ignore no-undef
globalThis.ui = SwaggerUIBundle({
  // Relative to the page, so a path prefix added by a proxy keeps working.
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  presets: [presets.apis],
  plugins: [plugins.DownloadUrl],
  layout: "BaseLayout",
  deepLinking: true,
  displayRequestDuration: true,
  // Nothing leaves our origin: no online validator badge, no spec URL taken from the query string.
  validatorUrl: null,
  queryConfigEnabled: false,
  // An API key typed into "Authorize" lives in this tab's memory only.
  persistAuthorization: false,
});
