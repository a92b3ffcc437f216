// The API docs at /docs: Swagger UI from the vendored bundle, reading this cloud's own OpenAPI document.
// A file of its own (not an inline script) so the pages' Content-Security-Policy holds here too.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  // eslint-disable-next-line no-undef
  // validatorUrl: null, or Swagger UI asks validator.swagger.io for a badge image (and the policy blocks it).
  SwaggerUIBundle({ url: root.dataset.spec, domNode: root, deepLinking: true, validatorUrl: null });
});
