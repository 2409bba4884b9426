// Bundles page.mjs (and the Better-Auth client it imports) into one browser script.
// Usage: node bundle.mjs OUT_FILE
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const out = process.argv[2];
if (!out) {
  console.error("usage: node bundle.mjs OUT_FILE");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, "page.mjs")],
  outfile: out,
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "es2022",
  sourcemap: "inline",
  logLevel: "warning",
});
console.log(`bundled ${out}`);
