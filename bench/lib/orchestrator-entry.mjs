#!/usr/bin/env node
// The orchestrator in its own process, for scenarios that measure its memory
// or must not share an event loop with the bench client. Started by
// lib/orchestrator-proc.mjs with an IPC channel; config from TETHER_* env.
//   --fleet   launch workers as synthetic workers in one fleet process
//             (lib/fleet.mjs: the worker package's real agent, channel and
//             execution runner with the in-process SyntheticKernel; BENCHMARKS ONLY)
// IPC: sends {type:'ready', url, pid, fleetPid}; answers {type:'gc'} with {type:'gc_done'}.
// pino logs (TETHER_LOG_LEVEL) go to stdout.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const { startOrchestrator, loadConfig } = await import(pathToFileURL(path.join(repo, 'orchestrator/dist/index.js')).href);

const useFleet = process.argv.includes('--fleet');
let fleet;
const options = {};
if (useFleet) {
  fleet = fork(path.join(here, 'fleet.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc', '--max-old-space-size=8192'] });
  const launches = new Map(); // launchId -> resolve(exit)
  fleet.on('message', (m) => {
    if (m.type === 'exit') {
      const done = launches.get(m.launchId);
      launches.delete(m.launchId);
      done?.({ code: m.code, signal: null, reason: `synthetic worker exited with code ${m.code}`, stderrTail: [] });
    }
  });
  fleet.on('exit', () => {
    for (const done of launches.values()) done({ code: null, signal: 'SIGKILL', reason: 'fleet process exited', stderrTail: [] });
    launches.clear();
  });
  options.launcher = () => ({
    kind: 'bench-fleet',
    async launch(req) {
      const exited = new Promise((resolve) => launches.set(req.launchId, resolve));
      fleet.send({ type: 'launch', launchId: req.launchId, url: req.orchestratorUrl, token: req.joinToken });
      return {
        launchId: req.launchId,
        exited,
        async stop(reason) {
          if (launches.has(req.launchId)) fleet.send({ type: 'stop', launchId: req.launchId, reason });
          await exited;
        },
      };
    },
    async stopAll() {
      fleet.send({ type: 'stop_all' });
    },
  });
}

const orch = await startOrchestrator(loadConfig(process.env), options);
process.on('message', async (m) => {
  if (m.type === 'gc') {
    globalThis.gc?.();
    process.send({ type: 'gc_done' });
  } else if (m.type === 'fleet_gc') {
    fleet?.send({ type: 'gc' });
  } else if (m.type === 'close') {
    await orch.close().catch(() => {});
    fleet?.kill('SIGKILL');
    process.exit(0);
  }
});
process.on('disconnect', () => {
  fleet?.kill('SIGKILL');
  process.exit(0);
});
process.send({ type: 'ready', url: orch.url, pid: process.pid, fleetPid: fleet?.pid ?? null });
