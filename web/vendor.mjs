// Copy the front-end files the pages and tests use, with their licences, into the cloud package.
// Run by `make web-vendor` after `npm ci`; the copies are committed.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "cloud", "src", "helmet_cloud", "http", "web", "static", "vendor");
const files = [
  // [package, file in the package, name in vendor/]
  ["axe-core", "axe.min.js", "axe.min.js"],
  ["axe-core", "LICENSE", "axe-core.LICENSE"],
  // The API docs at /docs (Swagger UI), served from here instead of a CDN.
  ["swagger-ui-dist", "swagger-ui-bundle.js", "swagger-ui-bundle.js"],
  ["swagger-ui-dist", "swagger-ui.css", "swagger-ui.css"],
  ["swagger-ui-dist", "favicon-32x32.png", "swagger-ui-favicon.png"],
  ["swagger-ui-dist", "LICENSE", "swagger-ui.LICENSE"],
  ["swagger-ui-dist", "NOTICE", "swagger-ui.NOTICE"],
  // The staff map's streets (static/map.js), when the town has a tile server.
  ["leaflet", "dist/leaflet.js", "leaflet.js"],
  ["leaflet", "dist/leaflet.css", "leaflet.css"],
  ["leaflet", "LICENSE", "leaflet.LICENSE"],
];

mkdirSync(out, { recursive: true });
const versions = {};
for (const [pkg, file, name] of files) {
  copyFileSync(join(here, "node_modules", pkg, file), join(out, name));
  versions[pkg] = JSON.parse(readFileSync(join(here, "node_modules", pkg, "package.json"), "utf8")).version;
}
writeFileSync(join(out, "VERSIONS.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`copied ${files.length} files into ${out}`, versions);
