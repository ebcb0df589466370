// Scenario: session start, real workers (Jupyter Server + ipykernel).
//   baseline   `python -m jupyter_server` + POST /api/kernels + kernel websocket
//              + first `1 + 1` result, directly (no Tether), same run, same poll
//              interval (20 ms) as the worker.
//   cold       POST /v1/sessions (no pool) -> 201 -> POST execute `1 + 1` -> result,
//              with a breakdown from the orchestrator's info log (launching worker,
//              worker joined, kernel ready + the worker's timings) so the slowest
//              step shows.
//   warm       TETHER_POOL_SIZE=2: wait until the pool is full, then claim (POST
//              /v1/sessions) -> first result. p50 over claims.
//   burst      C concurrent cold starts, time until all are ready, vs C serial ones.
// The orchestrator runs in its own process (lib/orchestrator-proc.mjs).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnTracked, freePort, waitFor, sleep } from '../lib/procs.mjs';
import { openKernelWs } from '../baselines/jupyter-ws.mjs';
import { startOrchestratorProc } from '../lib/orchestrator-proc.mjs';
import { tetherUnavailable } from '../lib/tether.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'session-start';

const PYTHON = process.env.TETHER_PYTHON || '/usr/bin/python3';
const GOAL_WARM_MS = 50;
const GOAL_COLD_MS = 1500;

/** Direct Jupyter start to first result; { totalMs, serverMs, kernelMs, resultMs }. */
async function directStart() {
  const t0 = performance.now();
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-start-'));
  const child = spawnTracked(PYTHON, ['-m', 'jupyter_server', '--ServerApp.ip=127.0.0.1', `--ServerApp.port=${port}`, '--ServerApp.port_retries=0',
    `--ServerApp.token=${token}`, '--ServerApp.open_browser=False', '--ServerApp.allow_root=True', `--ServerApp.root_dir=${root}`,
    '--ServerApp.iopub_msg_rate_limit=0', '--ServerApp.iopub_data_rate_limit=0'], { cwd: root, env: { ...process.env, JUPYTER_RUNTIME_DIR: path.join(root, '.runtime') } });
  child.proc.stdout.resume();
  const base = `http://127.0.0.1:${port}`;
  const headers = { Authorization: `token ${token}`, 'Content-Type': 'application/json' };
  try {
    await waitFor(async () => (await fetch(`${base}/api/status`, { headers })).ok, { timeoutMs: 60000, intervalMs: 20, what: 'jupyter server' });
    const tServer = performance.now();
    const k = await (await fetch(`${base}/api/kernels`, { method: 'POST', headers, body: JSON.stringify({ name: 'python3' }) })).json();
    const ws = await openKernelWs({ port, token, kernelId: k.id }); // waits for kernel_info, runs `x = 1`
    const tKernel = performance.now();
    const r = await ws.execute('1 + 1');
    const tResult = performance.now();
    if (r.status !== 'ok') throw new Error(`baseline execute: ${JSON.stringify(r)}`);
    ws.close();
    await fetch(`${base}/api/kernels/${k.id}`, { method: 'DELETE', headers }).catch(() => {});
    return { totalMs: tResult - t0, serverMs: tServer - t0, kernelMs: tKernel - tServer, resultMs: tResult - tKernel };
  } finally {
    await child.stop(3000);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Orchestrator process whose info log is indexed by launchId. */
async function orchestrator(env = {}) {
  const byLaunch = new Map();
  const bySession = new Map();
  const onLog = (l) => {
    if (l.launchId) {
      const e = byLaunch.get(l.launchId) ?? {};
      if (l.msg === 'launching worker') e.launchAt = l.time;
      else if (l.msg === 'worker joined; waiting for the kernel') e.joinedAt = l.time;
      else if (l.msg === 'kernel ready') { e.readyAt = l.time; e.timings = l.timings; }
      byLaunch.set(l.launchId, e);
      if (l.sessionId) bySession.set(l.sessionId, l.launchId);
    }
  };
  const o = await startOrchestratorProc({ env: { TETHER_LOG_LEVEL: 'info', ...env }, onLog });
  return { ...o, launchOf: (sessionId) => byLaunch.get(bySession.get(sessionId)) };
}

/** POST /v1/sessions then execute `1 + 1`; { totalMs, createMs, session }. */
async function startToFirstResult(o) {
  const t0 = performance.now();
  const wall0 = Date.now();
  const s = await o.request('POST', '/v1/sessions', {});
  const tCreated = performance.now();
  const r = await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: '1 + 1' });
  const t1 = performance.now();
  if (r.status !== 'ok') throw new Error(`first execute: ${JSON.stringify(r)}`);
  return { totalMs: t1 - t0, createMs: tCreated - t0, wall0, wall1: wall0 + (t1 - t0), session: s };
}

function breakdown(o, start) {
  const e = o.launchOf(start.session.id);
  if (!e?.timings || !e.launchAt) return null;
  const t = e.timings;
  const workerStartAt = e.readyAt - t.kernelReadyMs; // worker clock origin in orchestrator wall time (+- 1 ms)
  return {
    before_launch_ms: e.launchAt - start.wall0,
    spawn_ms: workerStartAt - e.launchAt,
    worker_boot_ms: t.processStartMs,
    dial_back_ms: e.joinedAt - (workerStartAt + t.processStartMs),
    jupyter_server_up_ms: t.jupyterReadyMs - t.processStartMs,
    kernel_ready_ms: t.kernelReadyMs - t.jupyterReadyMs,
    ready_to_first_result_ms: start.wall1 - e.readyAt,
  };
}

export async function run({ quick = false, log = () => {} } = {}) {
  const why = tetherUnavailable();
  if (why) throw new Error(why);
  const cfg = quick ? { cold: 1, warm: 2, burst: 0 } : { cold: 5, warm: 10, burst: 20 };
  const metrics = {};
  const notes = [];
  const set = (k, value, unit, description) => { metrics[k] = { value: round(value, 1), unit, ...(description ? { description } : {}) }; };

  // ---- baseline and cold starts, interleaved ----
  const base = [];
  const cold = [];
  const parts = [];
  {
    const o = await orchestrator();
    try {
      for (let i = 0; i < cfg.cold; i++) {
        base.push(await directStart());
        const c = await startToFirstResult(o);
        cold.push(c);
        await sleep(100); // the log lines arrive over a pipe
        const b = breakdown(o, c);
        if (b) parts.push(b);
        log(`round ${i + 1}: direct ${base.at(-1).totalMs.toFixed(0)} ms, tether cold ${c.totalMs.toFixed(0)} ms ${b ? JSON.stringify(Object.fromEntries(Object.entries(b).map(([k, v]) => [k, Math.round(v)]))) : ''}`);
        await o.request('DELETE', `/v1/sessions/${c.session.id}`).catch(() => {});
      }
    } finally {
      await o.close();
    }
  }
  const baseMs = median(base.map((b) => b.totalMs));
  const coldMs = median(cold.map((c) => c.totalMs));
  set('direct_start_to_result_ms', baseMs, 'ms', 'python -m jupyter_server + kernel + first result, no Tether (baseline)');
  set('direct_server_up_ms', median(base.map((b) => b.serverMs)), 'ms');
  set('direct_kernel_ready_ms', median(base.map((b) => b.kernelMs)), 'ms');
  set('cold_start_to_result_ms', coldMs, 'ms', 'POST /v1/sessions (no pool) -> first `1 + 1` result');
  set('cold_create_ms', median(cold.map((c) => c.createMs)), 'ms', 'POST /v1/sessions answered (kernel ready)');
  if (parts.length) {
    for (const k of Object.keys(parts[0])) set(`cold_${k}`, median(parts.map((p) => p[k])), 'ms', 'breakdown (median)');
    const slowest = Object.keys(parts[0]).reduce((a, k) => (metrics[`cold_${k}`].value > metrics[`cold_${a}`].value ? k : a));
    notes.push(`cold start breakdown (median ms): ${Object.keys(parts[0]).map((k) => `${k} ${metrics[`cold_${k}`].value}`).join(', ')}; slowest step: ${slowest}`);
  }

  // ---- warm pool ----
  let warmMs = null;
  {
    const o = await orchestrator({ TETHER_POOL_SIZE: '2' });
    try {
      const pool = await o.request('GET', '/v1/pool').catch(() => null);
      if (!pool || pool.target !== 2) {
        notes.push('warm pool: pending (GET /v1/pool missing or TETHER_POOL_SIZE ignored)');
      } else {
        const claims = [];
        for (let i = 0; i < cfg.warm; i++) {
          await waitFor(async () => (await o.request('GET', '/v1/pool')).ready === 2, { timeoutMs: 60000, intervalMs: 50, what: 'a full warm pool' });
          const c = await startToFirstResult(o);
          claims.push(c.totalMs);
          await o.request('DELETE', `/v1/sessions/${c.session.id}`).catch(() => {});
        }
        warmMs = median(claims);
        log(`warm claims to first result (ms): ${claims.map((x) => x.toFixed(1)).join(', ')}`);
        set('warm_claim_to_result_ms', warmMs, 'ms', 'TETHER_POOL_SIZE=2, pool full: POST /v1/sessions -> first result (p50)');
        set('warm_claim_max_ms', Math.max(...claims), 'ms');
      }
    } finally {
      await o.close();
    }
  }

  // ---- burst: C concurrent vs C serial (full run only: ~1 min of Jupyter starts) ----
  if (cfg.burst > 0) {
    const o = await orchestrator({ TETHER_MAX_CONCURRENT_STARTS: String(cfg.burst), TETHER_LOG_LEVEL: 'warn' });
    try {
      const tS = performance.now();
      const serialIds = [];
      for (let i = 0; i < cfg.burst; i++) serialIds.push((await o.request('POST', '/v1/sessions', {})).id);
      const serialMs = performance.now() - tS;
      for (const id of serialIds) await o.request('DELETE', `/v1/sessions/${id}`).catch(() => {});
      await sleep(500);
      const tC = performance.now();
      const conc = await Promise.all(Array.from({ length: cfg.burst }, () => o.request('POST', '/v1/sessions', {})));
      const concMs = performance.now() - tC;
      await Promise.all(conc.map((s) => o.request('DELETE', `/v1/sessions/${s.id}`).catch(() => {})));
      log(`${cfg.burst} serial cold starts ${serialMs.toFixed(0)} ms, ${cfg.burst} concurrent ${concMs.toFixed(0)} ms`);
      set(`burst_${cfg.burst}_concurrent_all_ready_ms`, concMs, 'ms', `${cfg.burst} POST /v1/sessions at once, until the last is ready`);
      set(`burst_${cfg.burst}_serial_ms`, serialMs, 'ms', `${cfg.burst} POST /v1/sessions one after another`);
    } finally {
      await o.close();
    }
  }

  const k = `burst_${cfg.burst}_concurrent_all_ready_ms`;
  const ratios = [
    { metric: 'cold_start_to_result_ms', value: metrics.cold_start_to_result_ms.value, baseline: 'direct_start_to_result_ms', baselineValue: metrics.direct_start_to_result_ms.value,
      ratio: round(coldMs / baseMs, 3), goal: null, grossLimit: 5, met: null, gross: coldMs / baseMs > 5 },
    { metric: 'cold_start_to_result_ms', value: metrics.cold_start_to_result_ms.value, baseline: 'goal_1500_ms', baselineValue: GOAL_COLD_MS,
      ratio: round(coldMs / GOAL_COLD_MS, 3), goal: 1, grossLimit: null, met: coldMs <= GOAL_COLD_MS, gross: false },
  ];
  if (metrics[k]) {
    ratios.push({ metric: k, value: metrics[k].value, baseline: `burst_${cfg.burst}_serial_ms`, baselineValue: metrics[`burst_${cfg.burst}_serial_ms`].value,
      ratio: round(metrics[k].value / metrics[`burst_${cfg.burst}_serial_ms`].value, 3), goal: null, grossLimit: null, met: null, gross: false });
  }
  if (warmMs !== null) {
    ratios.push({ metric: 'warm_claim_to_result_ms', value: metrics.warm_claim_to_result_ms.value, baseline: 'goal_50_ms', baselineValue: GOAL_WARM_MS,
      ratio: round(warmMs / GOAL_WARM_MS, 3), goal: 1, grossLimit: 20, met: warmMs <= GOAL_WARM_MS, gross: warmMs > 20 * GOAL_WARM_MS });
    ratios.push({ metric: 'warm_claim_to_result_ms', value: metrics.warm_claim_to_result_ms.value, baseline: 'cold_start_to_result_ms', baselineValue: metrics.cold_start_to_result_ms.value,
      ratio: round(warmMs / coldMs, 4), goal: null, grossLimit: null, met: null, gross: false });
  }
  notes.push(`${cfg.cold} interleaved direct/cold rounds, ${cfg.warm} warm claims, burst of ${cfg.burst}; gross gates: cold > 5x direct, warm claim > 1 s (a broken pool falls back to a cold start)`);
  return { metrics, baselines: { direct_start_to_result_ms: baseMs }, ratios, notes, config: cfg };
}
