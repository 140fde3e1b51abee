// Starts Swagger UI on /docs. A file of its own, served from our origin, so that the page's CSP
// allows no inline script at all.
// A function scope: a classic script's top-level const would be a global binding.
(() => {
  "use strict";

  // Defined by swagger-ui-bundle.js, which the page loads just before this file.
  const { SwaggerUIBundle } = globalThis;
  const { presets, plugins } = SwaggerUIBundle;
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
})();
