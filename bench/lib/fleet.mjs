#!/usr/bin/env node
// BENCHMARKS ONLY. Hosts many synthetic workers in one process: each is the
// worker package's real WorkerAgent (real OrchestratorChannel, protocol and
// ExecutionRunner) with the in-process SyntheticKernel instead of Jupyter.
// Forked by lib/orchestrator-entry.mjs --fleet; IPC: {type:'launch'|'stop'|'stop_all'|'gc'}.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { WorkerAgent } = await import(pathToFileURL(path.join(repo, 'worker/dist/index.js')).href);

const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-fleet-'));
const logger = pino({ level: process.env.TETHER_BENCH_FLEET_LOG_LEVEL || 'silent' }, pino.destination({ fd: 2, sync: false }));
const agents = new Map();

process.on('message', (m) => {
  switch (m.type) {
    case 'launch': {
      const config = { orchestratorUrl: m.url, joinToken: m.token, launchId: m.launchId, workspace, python: 'synthetic', interruptGraceMs: 2000, logLevel: 'silent' };
      const agent = new WorkerAgent({ config, python: 'synthetic', logger, syntheticKernelForBenchmarks: {} });
      agents.set(m.launchId, agent);
      agent.run().then(
        (code) => { agents.delete(m.launchId); process.send({ type: 'exit', launchId: m.launchId, code }); },
        () => { agents.delete(m.launchId); process.send({ type: 'exit', launchId: m.launchId, code: 1 }); },
      );
      return;
    }
    case 'stop':
      void agents.get(m.launchId)?.stop(m.reason ?? 'stopped', 0);
      return;
    case 'stop_all':
      for (const a of agents.values()) void a.stop('stop all', 0);
      return;
    case 'gc':
      globalThis.gc?.();
      return;
    default:
  }
});
process.on('disconnect', () => {
  fs.rmSync(workspace, { recursive: true, force: true });
  process.exit(0);
});
