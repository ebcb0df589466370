// Scenario: orchestrator scale with synthetic workers (BENCHMARKS ONLY: the
// worker's real agent, channel, protocol and execution runner, with the
// in-process SyntheticKernel instead of Jupyter; see worker/src/synthetic-kernel.ts).
//
// The orchestrator runs alone in its process (lib/orchestrator-entry.mjs --fleet);
// every launch goes over IPC to one fleet process hosting the synthetic workers.
//   1. sessions: create N sessions (POST /v1/sessions), memory per session =
//      (orchestrator VmRSS at N - at 0) / N, both after a forced GC.
//   2. relay: M of them run `%stream K S` at once over their client websockets:
//      messages/s and MB/s arriving at the clients, p50/p99 relay latency
//      (worker emit -> client receive, CLOCK_MONOTONIC stamps in each text).
//   Baseline, same run: the same frames through a bare websocket relay process
//   (baselines/ws-relay.mjs: forwards frames, no parsing) to the same client code.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startOrchestratorProc, procMemory } from '../lib/orchestrator-proc.mjs';
import { tetherUnavailable } from '../lib/tether.mjs';
import { summarize, round } from '../lib/stats.mjs';
import { sleep } from '../lib/procs.mjs';

export const name = 'orchestrator-scale';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 2 ** 20;
const GOAL_RSS_BYTES = 2 ** 30; // 10,000 sessions in under 1 GiB
const GOAL_MSGS_PER_S = 50_000;
const GROSS = 3;

/** Counts stream frames and their latency; resolves `done` once every socket saw its `done`. */
function meter(expectedSockets) {
  let messages = 0;
  let bytes = 0;
  let doneCount = 0;
  const latNs = [];
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  const STAMP = Buffer.from('"text":"@');
  return {
    onFrame(data) {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
      bytes += buf.length;
      const at = buf.indexOf(STAMP);
      if (at >= 0) {
        messages++;
        const start = at + STAMP.length;
        const end = buf.indexOf(59, start); // ';'
        if ((messages & 7) === 0) latNs.push(Number(process.hrtime.bigint() - BigInt(buf.toString('latin1', start, end))));
        return;
      }
      if (buf.includes('"type":"done"') && ++doneCount === expectedSockets) resolveDone();
    },
    done,
    result: () => ({ messages, bytes, lat: summarize(latNs.map((n) => n / 1e6)) }),
  };
}

async function relayBaseline({ sockets, count, bytes, log }) {
  const relay = fork(path.join(here, '../baselines/ws-relay.mjs'), ['relay'], { stdio: 'inherit' });
  const producer = fork(path.join(here, '../baselines/ws-relay.mjs'), ['produce'], { stdio: 'inherit' });
  try {
    const { port } = await new Promise((r) => relay.on('message', (m) => m.type === 'ready' && r(m)));
    const m = meter(sockets);
    const clients = [];
    for (let i = 0; i < sockets; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/c/${i}`, { perMessageDeflate: false });
      ws.on('message', (d) => m.onFrame(d));
      await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
      clients.push(ws);
    }
    producer.send({ type: 'connect', sockets, port });
    await new Promise((r) => producer.on('message', (x) => x.type === 'connected' && r()));
    const t0 = performance.now();
    producer.send({ type: 'go', count, bytes });
    await m.done;
    const s = (performance.now() - t0) / 1000;
    const r = m.result();
    for (const c of clients) c.terminate();
    log(`baseline ws relay: ${r.messages} msgs in ${s.toFixed(2)} s = ${Math.round(r.messages / s)} msg/s, p99 ${r.lat.p99.toFixed(1)} ms`);
    return { msgsPerS: r.messages / s, mbPerS: r.bytes / MiB / s, p50: r.lat.p50, p99: r.lat.p99, messages: r.messages };
  } finally {
    relay.kill('SIGKILL');
    producer.kill('SIGKILL');
  }
}

export async function run({ quick = false, log = () => {} } = {}) {
  const why = tetherUnavailable();
  if (why) throw new Error(why);
  const cfg = quick
    ? { sessions: 500, streaming: 200, count: 50, bytes: 100, createConcurrency: 64 }
    : { sessions: Number(process.env.TETHER_BENCH_SCALE_SESSIONS || 10_000), streaming: 1000, count: 200, bytes: 100, createConcurrency: 128 };
  const notes = [];
  const metrics = {};
  const set = (k, value, unit, description) => { metrics[k] = { value: round(value, 3), unit, ...(description ? { description } : {}) }; };

  const base = await relayBaseline({ sockets: cfg.streaming, count: cfg.count, bytes: cfg.bytes, log });

  const orch = await startOrchestratorProc({
    fleet: true,
    env: {
      TETHER_LOG_LEVEL: 'warn',
      TETHER_MAX_SESSIONS_PER_TENANT: String(cfg.sessions + 10),
      TETHER_MAX_CONCURRENT_STARTS: '256',
      TETHER_START_TIMEOUT_MS: '300000',
    },
  });
  try {
    await sleep(500);
    await orch.gc();
    const rss0 = procMemory(orch.pid).rss;
    log(`orchestrator pid ${orch.pid} RSS ${(rss0 / MiB).toFixed(1)} MiB with no session; fleet pid ${orch.fleetPid}`);

    // ---- 1. N sessions ----
    const ids = [];
    let next = 0;
    let failed = 0;
    let firstError;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: cfg.createConcurrency }, async () => {
      while (next < cfg.sessions) {
        next++;
        try {
          const s = await orch.request('POST', '/v1/sessions', {});
          ids.push(s.id);
          if (ids.length % 1000 === 0) log(`${ids.length} sessions (${((performance.now() - t0) / 1000).toFixed(1)} s, RSS ${(procMemory(orch.pid).rss / MiB).toFixed(0)} MiB)`);
        } catch (e) {
          failed++;
          firstError ??= e.message;
        }
      }
    }));
    const createS = (performance.now() - t0) / 1000;
    if (failed) notes.push(`${failed} session creations failed; first: ${firstError}`);
    await sleep(1000);
    await orch.gc();
    await sleep(200);
    const memN = procMemory(orch.pid);
    const fleetMem = procMemory(orch.fleetPid);
    const perSession = (memN.rss - rss0) / ids.length;
    log(`${ids.length} sessions in ${createS.toFixed(1)} s; orchestrator RSS ${(memN.rss / MiB).toFixed(0)} MiB (${(perSession / 1024).toFixed(1)} KiB/session), fleet ${(fleetMem.rss / MiB).toFixed(0)} MiB`);
    set('sessions', ids.length, 'sessions', 'concurrent sessions held');
    set('session_create_per_s', ids.length / createS, 'sessions/s', `POST /v1/sessions with ${cfg.createConcurrency} in flight`);
    set('orchestrator_rss_idle_mib', rss0 / MiB, 'MiB');
    set('orchestrator_rss_at_n_mib', memN.rss / MiB, 'MiB');
    set('orchestrator_rss_per_session_kib', perSession / 1024, 'KiB', '(RSS at N - RSS at 0) / N, after GC');
    set('orchestrator_rss_10k_projected_mib', (rss0 + perSession * 10_000) / MiB, 'MiB', 'RSS at 0 + 10,000 x per session');
    set('fleet_rss_mib', fleetMem.rss / MiB, 'MiB', 'the synthetic workers (not a goal)');

    // ---- 2. M concurrent streaming executions ----
    const m = meter(cfg.streaming);
    const sockets = [];
    for (const id of ids.slice(0, cfg.streaming)) sockets.push(await orch.openStream(id, (d) => m.onFrame(d)));
    await sleep(200);
    const t1 = performance.now();
    sockets.forEach((ws, i) => ws.send(JSON.stringify({ type: 'execute', requestId: `s${i}`, code: `%stream ${cfg.count} ${cfg.bytes}` })));
    await m.done;
    const relayS = (performance.now() - t1) / 1000;
    const r = m.result();
    const peak = procMemory(orch.pid);
    for (const ws of sockets) ws.terminate();
    const expected = cfg.streaming * cfg.count;
    if (r.messages !== expected) notes.push(`relay: ${r.messages} stream messages arrived, ${expected} expected`);
    log(`relay: ${r.messages} msgs in ${relayS.toFixed(2)} s = ${Math.round(r.messages / relayS)} msg/s, p50 ${r.lat.p50.toFixed(1)} ms p99 ${r.lat.p99.toFixed(1)} ms`);
    set('relay_msgs_per_s', r.messages / relayS, 'msg/s', `${cfg.streaming} concurrent executions x ${cfg.count} stream messages of ${cfg.bytes} B`);
    set('relay_mb_per_s', r.bytes / MiB / relayS, 'MiB/s', 'client websocket frame bytes');
    set('relay_latency_p50_ms', r.lat.p50, 'ms', 'synthetic kernel emit -> client receive');
    set('relay_latency_p99_ms', r.lat.p99, 'ms');
    set('orchestrator_hwm_mib', peak.hwm / MiB, 'MiB', 'orchestrator VmHWM over the whole scenario');
    set('baseline_relay_msgs_per_s', base.msgsPerS, 'msg/s', 'bare ws relay process, same client, same frames');
    set('baseline_relay_latency_p99_ms', base.p99, 'ms');

    const rssProjected = rss0 + perSession * 10_000;
    const ratios = [
      {
        metric: 'orchestrator_rss_10k_projected_mib', value: metrics.orchestrator_rss_10k_projected_mib.value,
        baseline: 'goal_1_GiB', baselineValue: 1024, ratio: round(rssProjected / GOAL_RSS_BYTES, 3),
        goal: 1, grossLimit: GROSS, met: rssProjected <= GOAL_RSS_BYTES, gross: rssProjected > GROSS * GOAL_RSS_BYTES,
      },
      {
        // lower is better: goal rate / measured rate
        metric: 'relay_msgs_per_s', value: metrics.relay_msgs_per_s.value,
        baseline: 'goal_50k_msg_s (inverse)', baselineValue: GOAL_MSGS_PER_S, ratio: round(GOAL_MSGS_PER_S / (r.messages / relayS), 3),
        goal: 1, grossLimit: null, met: r.messages / relayS >= GOAL_MSGS_PER_S, gross: false,
      },
      {
        metric: 'relay_msgs_per_s', value: metrics.relay_msgs_per_s.value,
        baseline: 'baseline_relay_msgs_per_s (inverse)', baselineValue: metrics.baseline_relay_msgs_per_s.value,
        ratio: round(base.msgsPerS / (r.messages / relayS), 3),
        goal: null, grossLimit: GROSS * 4, met: null, gross: base.msgsPerS / (r.messages / relayS) > GROSS * 4,
      },
      {
        metric: 'relay_latency_p99_ms', value: metrics.relay_latency_p99_ms.value,
        baseline: 'baseline_relay_latency_p99_ms', baselineValue: metrics.baseline_relay_latency_p99_ms.value,
        ratio: round(r.lat.p99 / base.p99, 3), goal: null, grossLimit: null, met: null, gross: false,
      },
    ];
    notes.push(`${cfg.sessions} sessions requested, ${cfg.createConcurrency} creations in flight; relay: ${cfg.streaming} x ${cfg.count} x ${cfg.bytes} B`);
    notes.push('rates are "inverse" ratios (goal or baseline / measured) so lower is better like every other row; the 3 processes (client, orchestrator, fleet) share 2 cores');
    if (quick) notes.push('quick mode: the 10,000-session RSS is projected from 500 sessions');
    return { metrics, baselines: { baseline_relay_msgs_per_s: base.msgsPerS }, ratios, notes, config: cfg };
  } finally {
    await orch.close().catch(() => {});
  }
}
