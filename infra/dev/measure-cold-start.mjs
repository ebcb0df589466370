#!/usr/bin/env node
// Cold start to first result, `docker` launcher vs `local`, interleaved on the
// same machine: POST /v1/sessions (waits for the kernel) + one execute of
// `print(1)`, then DELETE. Needs a built checkout, an engine and the worker
// image (infra/dev/container-engine.sh, infra/dev/build-images.sh worker).
//   node infra/dev/measure-cold-start.mjs [rounds=5]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, startOrchestrator } from "../../orchestrator/dist/index.js";

const rounds = Number(process.argv[2] ?? 5);
const KEY = "measure-key-0123456789";

async function start(launcher) {
  const dataDir = await mkdtemp(join(tmpdir(), `tether-measure-${launcher}-`));
  const env = { TETHER_PORT: "0", TETHER_API_KEYS: `m:${KEY}`, TETHER_DATA_DIR: dataDir, TETHER_LAUNCHER: launcher, TETHER_LOG_LEVEL: "warn" };
  const server = await startOrchestrator(loadConfig(env));
  return { launcher, server, dataDir };
}

async function call(base, method, path, body) {
  const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function coldStart({ server }) {
  const startedAt = performance.now();
  const session = await call(server.url, "POST", "/v1/sessions", {});
  const readyMs = performance.now() - startedAt;
  const result = await call(server.url, "POST", `/v1/sessions/${session.id}/execute`, { code: "print(1)" });
  const totalMs = performance.now() - startedAt;
  if (result.stdout !== "1\n") throw new Error(`unexpected result ${JSON.stringify(result)}`);
  await call(server.url, "DELETE", `/v1/sessions/${session.id}`);
  return { readyMs, totalMs };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const targets = [await start("local"), await start("docker")];
const samples = { local: [], docker: [] };
try {
  await coldStart(targets[0]); // warm the page cache for both: the first start reads the image from disk
  await coldStart(targets[1]);
  for (let i = 0; i < rounds; i++) {
    for (const target of i % 2 ? [...targets].reverse() : targets) samples[target.launcher].push(await coldStart(target));
  }
} finally {
  for (const target of targets) {
    await target.server.close();
    await rm(target.dataDir, { recursive: true, force: true });
  }
}
for (const [launcher, list] of Object.entries(samples)) {
  const totals = list.map((s) => s.totalMs);
  console.log(
    `${launcher.padEnd(6)} cold start to first result: median ${median(totals).toFixed(0)} ms (min ${Math.min(...totals).toFixed(0)}, max ${Math.max(...totals).toFixed(0)}; ` +
      `session ready median ${median(list.map((s) => s.readyMs)).toFixed(0)} ms; ${list.length} rounds)`,
  );
}
console.log(`load average: ${(await import("node:os")).loadavg().map((x) => x.toFixed(2)).join(" ")}`);
