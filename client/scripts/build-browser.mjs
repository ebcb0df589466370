#!/usr/bin/env node
// Browser artefacts of @tether/client, built with esbuild from the compiled package (run after `tsc -b client`):
//   client/dist/browser/tether-client.js  the SDK as one minified ES module (what a bundler would ship; its size is printed)
//   client/dist/playground/               the playground page the orchestrator serves at /playground
// Both resolve `#websocket` with the "browser" condition, so `ws` never reaches them; the build fails if it does.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const clientDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(clientDir, "dist");
const quiet = process.argv.includes("--quiet");

const common = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  minify: true,
  sourcemap: true,
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
};

function assertNoNodeOnlyCode(metafile, what) {
  const offending = Object.keys(metafile.inputs).filter((input) => /node_modules\/ws\/|websocket-node/.test(input));
  if (offending.length > 0) throw new Error(`${what} pulled in Node-only code: ${offending.join(", ")}`);
}

const sdk = await build({ ...common, entryPoints: [join(clientDir, "dist/index.js")], outfile: join(outDir, "browser/tether-client.js") });
assertNoNodeOnlyCode(sdk.metafile, "The SDK's browser bundle");

const playgroundOut = join(outDir, "playground");
mkdirSync(playgroundOut, { recursive: true });
const page = await build({ ...common, entryPoints: [join(clientDir, "playground/main.ts")], outfile: join(playgroundOut, "playground.js") });
assertNoNodeOnlyCode(page.metafile, "The playground bundle");
for (const file of ["index.html", "playground.css"]) copyFileSync(join(clientDir, "playground", file), join(playgroundOut, file));

const sizes = {};
for (const [name, path] of [["sdk", "browser/tether-client.js"], ["playground", "playground/playground.js"]]) {
  const content = readFileSync(join(outDir, path));
  sizes[name] = { minifiedBytes: content.byteLength, gzipBytes: gzipSync(content, { level: 9 }).byteLength };
}
writeFileSync(join(outDir, "browser/sizes.json"), `${JSON.stringify(sizes, null, 2)}\n`);
if (!quiet) {
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`browser bundles: SDK ${kib(sizes.sdk.minifiedBytes)} minified, ${kib(sizes.sdk.gzipBytes)} gzipped; playground ${kib(sizes.playground.minifiedBytes)} / ${kib(sizes.playground.gzipBytes)}`);
}
