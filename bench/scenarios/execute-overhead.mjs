// Scenario: execute overhead of a trivial `x + 1` (after `x = 1`).
//
// Subjects, all measured in the same run, interleaved in rounds (each round
// runs one batch of every subject, in a rotating order) because the machine is
// shared and noisy:
//   zmq_direct          baseline: ipykernel over ZMQ with jupyter_client (Python)
//   jupyter_ws_stock    baseline: stock Jupyter Server kernel websocket (ws, raw JSON)
//   jupyter_ws_patched  the same through bench/fixes/tether_jupyter_launch.py (TCP_NODELAY)
//   tether_ws           client websocket -> orchestrator -> worker -> kernel
//   tether_rest         POST /v1/sessions/:id/execute
// One sample = send -> (execute_reply AND status idle) for the baselines,
// send -> `done` for tether_ws, request -> full response for tether_rest.
// Ratios are the median over rounds of (subject p50 / zmq_direct p50 in that round).
// The gross-regression gate uses the BEST round (min ratio): load from other
// jobs inflates some rounds, a real regression (e.g. a 40 ms Nagle stall)
// inflates every round, so noise never fails CI.
//
// Env: TETHER_BENCH_SKIP_TETHER=1 measures the baselines only.
import { startZmqDirect } from '../baselines/zmq-direct.mjs';
import { startJupyter } from '../baselines/jupyter-ws.mjs';
import { startTether, tetherUnavailable } from '../lib/tether.mjs';
import { summarize, median, round } from '../lib/stats.mjs';

export const name = 'execute-overhead';

/** Goals on p50 ratios vs zmq_direct; CI fails only past goal * GROSS_FACTOR. */
export const GROSS_FACTOR = 3;
const GOALS = {
  tether_ws: 1.3,
  tether_rest: 1.6,
  jupyter_ws_patched: 1.3, // the hop the worker relies on: guards the TCP_NODELAY fix
};

const DESCRIPTIONS = {
  zmq_direct: 'ipykernel over ZMQ (jupyter_client), direct',
  jupyter_ws_stock: 'stock Jupyter Server kernel websocket',
  jupyter_ws_patched: 'Jupyter Server kernel websocket + TCP_NODELAY launcher',
  tether_ws: 'Tether client websocket -> orchestrator -> worker -> kernel',
  tether_rest: 'Tether REST POST /v1/sessions/:id/execute',
};

export async function run({ quick = false, log = () => {} } = {}) {
  const cfg = quick ? { rounds: 4, batch: 15, warmup: 10 } : { rounds: 10, batch: 40, warmup: 20 };
  const notes = [`${cfg.rounds} interleaved rounds x ${cfg.batch} samples per subject, ${cfg.warmup} warm-up executes per subject discarded`];
  const subjects = []; // { key, runBatch, stop }
  const stops = [];
  try {
    // ---- start everything (sequentially: 2 cores) ----
    const zmq = await startZmqDirect({ warmup: cfg.warmup });
    stops.push(() => zmq.stop());
    subjects.push({ key: 'zmq_direct', runBatch: (n) => zmq.runBatch(n) });
    log('zmq_direct ready');

    for (const patched of [false, true]) {
      const server = await startJupyter({ patched, log });
      stops.push(() => server.stop());
      const k = await server.openKernel();
      await k.runBatch(cfg.warmup);
      subjects.push({ key: patched ? 'jupyter_ws_patched' : 'jupyter_ws_stock', runBatch: (n) => k.runBatch(n) });
    }

    // ---- Tether paths (hooks: tether_ws, tether_rest) ----
    const why = process.env.TETHER_BENCH_SKIP_TETHER === '1' ? 'TETHER_BENCH_SKIP_TETHER=1' : tetherUnavailable();
    if (why) {
      notes.push(`Tether paths skipped: ${why}`);
      log(`skipping Tether paths: ${why}`);
    } else {
      const tether = await startTether({ log });
      stops.push(() => tether.stop());
      await tether.ws.runBatch(cfg.warmup);
      await tether.rest.runBatch(cfg.warmup);
      subjects.push({ key: 'tether_ws', runBatch: (n) => tether.ws.runBatch(n) });
      subjects.push({ key: 'tether_rest', runBatch: (n) => tether.rest.runBatch(n) });
    }

    // ---- interleaved rounds ----
    const all = Object.fromEntries(subjects.map((s) => [s.key, []]));
    const perRound = Object.fromEntries(subjects.map((s) => [s.key, []])); // p50 per round
    for (let r = 0; r < cfg.rounds; r++) {
      const order = subjects.map((_, i) => subjects[(i + r) % subjects.length]);
      for (const s of order) {
        const samples = await s.runBatch(cfg.batch);
        all[s.key].push(...samples);
        perRound[s.key].push(median(samples));
      }
      log(`round ${r + 1}/${cfg.rounds}: ${subjects.map((s) => `${s.key} ${perRound[s.key][r].toFixed(2)}`).join(', ')} (p50 ms)`);
    }

    // ---- results ----
    const metrics = {};
    for (const s of subjects) {
      const st = summarize(all[s.key]);
      metrics[`${s.key}_p50_ms`] = { value: round(st.p50, 3), unit: 'ms', description: `${DESCRIPTIONS[s.key]}: p50` };
      metrics[`${s.key}_p99_ms`] = { value: round(st.p99, 3), unit: 'ms', description: `${DESCRIPTIONS[s.key]}: p99` };
      metrics[`${s.key}_mean_ms`] = { value: round(st.mean, 3), unit: 'ms', description: `${DESCRIPTIONS[s.key]}: mean` };
      metrics[`${s.key}_n`] = { value: st.n, unit: 'samples' };
    }
    const baselines = {
      zmq_direct_p50_ms: metrics.zmq_direct_p50_ms.value,
      zmq_direct_p99_ms: metrics.zmq_direct_p99_ms.value,
      jupyter_ws_stock_p50_ms: metrics.jupyter_ws_stock_p50_ms.value,
      jupyter_ws_stock_p99_ms: metrics.jupyter_ws_stock_p99_ms.value,
    };

    const ratios = [];
    const base = perRound.zmq_direct;
    for (const s of subjects) {
      if (s.key === 'zmq_direct') continue;
      const roundRatios = perRound[s.key].map((v, i) => v / base[i]);
      const ratio = median(roundRatios);
      const goal = GOALS[s.key] ?? null;
      ratios.push({
        metric: `${s.key}_p50_ms`,
        value: metrics[`${s.key}_p50_ms`].value,
        baseline: 'zmq_direct_p50_ms',
        baselineValue: metrics.zmq_direct_p50_ms.value,
        ratio: round(ratio, 3),
        roundRatios: roundRatios.map((x) => round(x, 3)),
        goal,
        grossLimit: goal === null ? null : round(goal * GROSS_FACTOR, 3),
        gateRatio: round(Math.min(...roundRatios), 3),
        met: goal === null ? null : ratio <= goal,
        gross: goal === null ? false : Math.min(...roundRatios) > goal * GROSS_FACTOR,
      });
      // p99 vs p99: informational (tails are what the noisy machine moves most).
      ratios.push({
        metric: `${s.key}_p99_ms`,
        value: metrics[`${s.key}_p99_ms`].value,
        baseline: 'zmq_direct_p99_ms',
        baselineValue: metrics.zmq_direct_p99_ms.value,
        ratio: round(metrics[`${s.key}_p99_ms`].value / metrics.zmq_direct_p99_ms.value, 3),
        goal: null, grossLimit: null, met: null, gross: false,
      });
    }
    if (perRound.jupyter_ws_patched && perRound.jupyter_ws_stock) {
      const r = median(perRound.jupyter_ws_patched.map((v, i) => v / perRound.jupyter_ws_stock[i]));
      ratios.push({
        metric: 'jupyter_ws_patched_p50_ms', value: metrics.jupyter_ws_patched_p50_ms.value,
        baseline: 'jupyter_ws_stock_p50_ms', baselineValue: metrics.jupyter_ws_stock_p50_ms.value,
        ratio: round(r, 3), goal: null, grossLimit: null, met: null, gross: false,
      });
    }
    return { metrics, baselines, ratios, notes, config: cfg };
  } finally {
    for (const stop of stops.reverse()) {
      try { await stop(); } catch (e) { log(`cleanup: ${e.message}`); }
    }
  }
}
