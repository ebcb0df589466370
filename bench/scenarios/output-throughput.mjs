// Scenario: output throughput. The kernel prints TOTAL MiB of stdout in 1 MiB
// chunks (flushed one by one); measured through the Tether client websocket
// (every byte must arrive) against ipykernel over ZMQ directly (baseline, same
// run, same code). Peak RSS of orchestrator, worker and Jupyter Server during
// the websocket run shows whether backpressure bounds memory. REST is run too:
// it caps stdout at TETHER_MAX_OUTPUT_BYTES (reported `truncated`).
import { startOrchestratorProc, rssSampler } from '../lib/orchestrator-proc.mjs';
import { sessionPids } from '../lib/tether-procs.mjs';
import { startZmqOutput } from '../lib/zmq-output.mjs';
import { tetherUnavailable } from '../lib/tether.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'output-throughput';
const MiB = 2 ** 20;
const GOAL_RATIO = 2; // Tether time / direct ZMQ time
const GROSS = 3;

const code = (mib) => `import sys\n_c = 'x' * (${MiB} - 1) + '\\n'\nfor _ in range(${mib}):\n    sys.stdout.write(_c)\n    sys.stdout.flush()\n`;

export async function run({ quick = false, log = () => {} } = {}) {
  const why = tetherUnavailable();
  if (why) throw new Error(why);
  const cfg = quick ? { mib: 10, rounds: 1 } : { mib: Number(process.env.TETHER_BENCH_OUTPUT_MIB ?? 100), rounds: 3 };
  const metrics = {};
  const notes = [];
  const set = (k, value, unit, description) => { metrics[k] = { value: round(value, 2), unit, ...(description ? { description } : {}) }; };

  const zmq = await startZmqOutput();
  const o = await startOrchestratorProc();
  try {
    const s = await o.request('POST', '/v1/sessions', {});
    const pids = sessionPids(o.pid);
    log(`session ${s.id}: ${JSON.stringify(pids)}`);
    let current;
    const ws = await o.openStream(s.id, (data) => current?.(data));
    const wsRun = (c) => new Promise((resolve, reject) => {
      const requestId = `o${Math.random().toString(36).slice(2)}`;
      let bytes = 0;
      let frames = 0;
      current = (data) => {
        const m = JSON.parse(data.toString());
        if (m.requestId !== requestId) return;
        if (m.type === 'stream') { bytes += Buffer.byteLength(m.text); frames++; } else if (m.type === 'done') {
          if (m.status !== 'ok') reject(new Error(`done: ${JSON.stringify(m)}`));
          else resolve({ bytes, frames });
        }
      };
      ws.send(JSON.stringify({ type: 'execute', requestId, code: c }));
    });
    await wsRun('1');
    await zmq.run('1');

    const wsMs = [];
    const zmqMs = [];
    let peak = {};
    let lost = 0;
    for (let r = 0; r < cfg.rounds; r++) {
      const z = await zmq.run(code(cfg.mib));
      zmqMs.push(z.ms);
      if (z.stream_bytes !== cfg.mib * MiB) notes.push(`baseline got ${z.stream_bytes} bytes`);
      const sampler = rssSampler(() => pids, 20);
      const t0 = performance.now();
      const got = await wsRun(code(cfg.mib));
      wsMs.push(performance.now() - t0);
      const p = sampler.stop();
      for (const [k, v] of Object.entries(p)) peak[k] = Math.max(peak[k] ?? 0, v);
      if (got.bytes !== cfg.mib * MiB) lost += cfg.mib * MiB - got.bytes;
      log(`round ${r + 1}: ws ${(cfg.mib * MiB / MiB / (wsMs.at(-1) / 1000)).toFixed(1)} MiB/s (${got.frames} frames, ${got.bytes} B), zmq ${(cfg.mib / (z.ms / 1000)).toFixed(1)} MiB/s; peak RSS MiB ${JSON.stringify(Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Math.round(v / MiB)])))}`);
    }
    // REST: same code, capped output.
    const t0 = performance.now();
    const rest = await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: code(cfg.mib) });
    const restMs = performance.now() - t0;
    ws.terminate();

    const wsRate = cfg.mib / (median(wsMs) / 1000);
    const zmqRate = cfg.mib / (median(zmqMs) / 1000);
    set('ws_mib_per_s', wsRate, 'MiB/s', `${cfg.mib} MiB of stdout through the client websocket`);
    set('zmq_direct_mib_per_s', zmqRate, 'MiB/s', 'same code, ipykernel over ZMQ (baseline)');
    set('ws_ms', median(wsMs), 'ms');
    set('zmq_direct_ms', median(zmqMs), 'ms');
    set('ws_bytes_lost', lost, 'B', 'expected minus received stdout bytes over all rounds (must be 0)');
    set('rest_ms', restMs, 'ms', `POST execute of the same code (stdout cut at TETHER_MAX_OUTPUT_BYTES)`);
    set('rest_stdout_bytes', Buffer.byteLength(rest.stdout ?? ''), 'B');
    for (const [k, v] of Object.entries(peak)) set(`peak_rss_${k}_mib`, v / MiB, 'MiB', `VmRSS peak of the ${k} during the websocket runs`);
    notes.push(`REST: truncated=${rest.truncated}, ${Buffer.byteLength(rest.stdout ?? '')} stdout bytes returned of ${cfg.mib * MiB}`);
    notes.push(`${cfg.rounds} rounds of ${cfg.mib} MiB in 1 MiB flushed chunks; rates from the median round; peaks sampled every 20 ms`);
    const ratio = median(wsMs) / median(zmqMs);
    const ratios = [
      { metric: 'ws_ms', value: metrics.ws_ms.value, baseline: 'zmq_direct_ms', baselineValue: metrics.zmq_direct_ms.value, ratio: round(ratio, 3),
        goal: GOAL_RATIO, grossLimit: GOAL_RATIO * GROSS, met: ratio <= GOAL_RATIO, gross: ratio > GOAL_RATIO * GROSS },
      { metric: 'ws_bytes_lost', value: lost, baseline: 'expected', baselineValue: 0, ratio: lost === 0 ? 0 : 1, goal: 0, grossLimit: 0, met: lost === 0, gross: lost !== 0 },
    ];
    if (peak.orchestrator) {
      const r = peak.orchestrator / (cfg.mib * MiB);
      ratios.push({ metric: 'peak_rss_orchestrator_mib', value: metrics.peak_rss_orchestrator_mib.value, baseline: 'output_mib', baselineValue: cfg.mib, ratio: round(r, 3),
        goal: null, grossLimit: null, met: null, gross: false });
    }
    return { metrics, baselines: { zmq_direct_mib_per_s: zmqRate }, ratios, notes, config: cfg };
  } finally {
    await o.close().catch(() => {});
    await zmq.stop().catch(() => {});
  }
}
