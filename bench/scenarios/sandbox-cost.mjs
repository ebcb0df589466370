// Scenario: what the local launcher's bubblewrap sandbox costs (TETHER_SANDBOX=on, the default,
// vs off), same run, same machine, two orchestrators up side by side.
//   cold       POST /v1/sessions (no pool) -> POST execute `1 + 1` -> result; rounds alternate
//              on/off so load drifts hit both.
//   execute    trivial `x + 1` over REST (keep-alive) on one session of each, in interleaved
//              batches (rotating order); p50 per subject and the median per-round ratio.
// On: bwrap (new user/mount/PID/IPC/UTS/cgroup/net namespaces), the unix-socket relay in
// front of the worker gateway, prlimit, the host-side memory watch. Off: a plain child process.
import { startOrchestratorProc } from '../lib/orchestrator-proc.mjs';
import { tetherUnavailable } from '../lib/tether.mjs';
import { median, round, summarize } from '../lib/stats.mjs';

export const name = 'sandbox-cost';

/** POST /v1/sessions then execute `1 + 1`; { totalMs, createMs, id }. */
async function coldStart(o) {
  const t0 = performance.now();
  const s = await o.request('POST', '/v1/sessions', {});
  const tCreated = performance.now();
  const r = await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: '1 + 1' });
  const t1 = performance.now();
  if (r.status !== 'ok') throw new Error(`first execute: ${JSON.stringify(r)}`);
  return { totalMs: t1 - t0, createMs: tCreated - t0, id: s.id };
}

/** `n` trivial executes on one session; their latencies in ms. */
async function executeBatch(o, sessionId, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await o.request('POST', `/v1/sessions/${sessionId}/execute`, { code: 'x + 1' });
    out.push(performance.now() - t0);
    if (r.status !== 'ok') throw new Error(`execute: ${JSON.stringify(r)}`);
  }
  return out;
}

export async function run({ quick = false, log = () => {} } = {}) {
  const why = tetherUnavailable();
  if (why) throw new Error(why);
  const cfg = quick ? { cold: 2, rounds: 3, batch: 20 } : { cold: 6, rounds: 8, batch: 50 };
  const subjects = { on: { TETHER_SANDBOX: 'on' }, off: { TETHER_SANDBOX: 'off' } };
  const orchestrators = {};
  const metrics = {};
  const notes = [];
  const set = (k, value, unit, description) => { metrics[k] = { value: round(value, 2), unit, ...(description ? { description } : {}) }; };
  const roundRatios = [];
  try {
    for (const [label, env] of Object.entries(subjects)) orchestrators[label] = await startOrchestratorProc({ env });

    // ---- cold starts, alternating ----
    const cold = { on: [], off: [] };
    for (let i = 0; i < cfg.cold; i++) {
      for (const label of i % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
        const c = await coldStart(orchestrators[label]);
        cold[label].push(c);
        await orchestrators[label].request('DELETE', `/v1/sessions/${c.id}`).catch(() => {});
      }
      log(`cold round ${i + 1}: on ${cold.on.at(-1).totalMs.toFixed(0)} ms, off ${cold.off.at(-1).totalMs.toFixed(0)} ms`);
    }

    // ---- trivial execute, interleaved batches ----
    const sessions = {};
    for (const label of Object.keys(subjects)) {
      sessions[label] = (await orchestrators[label].request('POST', '/v1/sessions', {})).id;
      await orchestrators[label].request('POST', `/v1/sessions/${sessions[label]}/execute`, { code: 'x = 1' });
      await executeBatch(orchestrators[label], sessions[label], 5); // warm-up
    }
    const samples = { on: [], off: [] };
    for (let r = 0; r < cfg.rounds; r++) {
      const p50 = {};
      for (const label of r % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
        const batch = await executeBatch(orchestrators[label], sessions[label], cfg.batch);
        samples[label].push(...batch);
        p50[label] = median(batch);
      }
      roundRatios.push(p50.on / p50.off);
      log(`execute round ${r + 1}: p50 on ${p50.on.toFixed(2)} ms, off ${p50.off.toFixed(2)} ms`);
    }

    for (const label of Object.keys(subjects)) {
      set(`cold_start_to_result_${label}_ms`, median(cold[label].map((c) => c.totalMs)), 'ms', `TETHER_SANDBOX=${label}: POST /v1/sessions -> first \`1 + 1\` result (median)`);
      set(`cold_create_${label}_ms`, median(cold[label].map((c) => c.createMs)), 'ms', `TETHER_SANDBOX=${label}: POST /v1/sessions answered (median)`);
      const s = summarize(samples[label]);
      set(`execute_rest_${label}_p50_ms`, s.p50, 'ms', `TETHER_SANDBOX=${label}: trivial execute over REST, p50`);
      set(`execute_rest_${label}_p99_ms`, s.p99, 'ms');
    }
  } finally {
    for (const o of Object.values(orchestrators)) await o.close().catch(() => {});
  }

  const coldRatio = metrics.cold_start_to_result_on_ms.value / metrics.cold_start_to_result_off_ms.value;
  const execRatio = median(roundRatios);
  const ratios = [
    { metric: 'cold_start_to_result_on_ms', value: metrics.cold_start_to_result_on_ms.value, baseline: 'cold_start_to_result_off_ms', baselineValue: metrics.cold_start_to_result_off_ms.value,
      ratio: round(coldRatio, 3), goal: 1.25, grossLimit: 3, met: coldRatio <= 1.25, gross: coldRatio > 3 },
    { metric: 'execute_rest_on_p50_ms', value: metrics.execute_rest_on_p50_ms.value, baseline: 'execute_rest_off_p50_ms', baselineValue: metrics.execute_rest_off_p50_ms.value,
      ratio: round(execRatio, 3), goal: 1.1, grossLimit: 3, met: execRatio <= 1.1, gross: execRatio > 3 },
  ];
  notes.push(`${cfg.cold} alternating cold starts per subject; ${cfg.rounds} interleaved rounds of ${cfg.batch} executes; the execute ratio is the median of per-round p50 ratios`);
  return { metrics, baselines: { cold_start_to_result_off_ms: metrics.cold_start_to_result_off_ms.value, execute_rest_off_p50_ms: metrics.execute_rest_off_p50_ms.value }, ratios, notes, config: cfg };
}
