// Scenario: large artefacts through a real session.
//   display   a 5 MiB PNG (random bytes, base64 in display_data) from the kernel
//             to the client websocket; baseline: the same code over ZMQ directly.
//   download  a 100 MiB workspace file through GET /v1/sessions/:id/files/<path>
//             (binary frames with credit flow control worker -> orchestrator);
//             baseline: reading a file of the same size from disk in this process.
// Time and peak RSS of orchestrator, worker, Jupyter Server and kernel for each.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { startOrchestratorProc, rssSampler } from '../lib/orchestrator-proc.mjs';
import { sessionPids } from '../lib/tether-procs.mjs';
import { startZmqOutput } from '../lib/zmq-output.mjs';
import { tetherUnavailable } from '../lib/tether.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'large-artefacts';
const MiB = 2 ** 20;
const GROSS = 3;
const GOALS = { display: 2, download: 4 }; // Tether time / baseline time (ours: the issue sets none)

const displayCode = (mib) => `import base64, os\nfrom IPython.display import display\ndisplay({'image/png': base64.b64encode(os.urandom(${mib} * ${MiB})).decode()}, raw=True)\n`;

export async function run({ quick = false, log = () => {} } = {}) {
  const why = tetherUnavailable();
  if (why) throw new Error(why);
  const cfg = quick ? { pngMib: 5, fileMib: 10, rounds: 1 } : { pngMib: 5, fileMib: 100, rounds: 3 };
  const metrics = {};
  const notes = [];
  const set = (k, value, unit, description) => { metrics[k] = { value: round(value, 2), unit, ...(description ? { description } : {}) }; };
  const expectB64 = Math.ceil((cfg.pngMib * MiB) / 3) * 4;

  const zmq = await startZmqOutput();
  const o = await startOrchestratorProc();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-art-'));
  try {
    const s = await o.request('POST', '/v1/sessions', {});
    const pids = sessionPids(o.pid);
    let current;
    const ws = await o.openStream(s.id, (data) => current?.(data));
    const wsRun = (c) => new Promise((resolve, reject) => {
      const requestId = `a${Math.random().toString(36).slice(2)}`;
      let displayBytes = 0;
      current = (data) => {
        const m = JSON.parse(data.toString());
        if (m.requestId !== requestId) return;
        if (m.type === 'display') displayBytes += (m.data['image/png'] ?? '').length;
        else if (m.type === 'done' && m.status === 'ok') resolve({ displayBytes });
        else if (m.type === 'done') reject(new Error(JSON.stringify(m)));
      };
      ws.send(JSON.stringify({ type: 'execute', requestId, code: c }));
    });
    await wsRun('import base64, os\nfrom IPython.display import display');
    await zmq.run('import base64, os\nfrom IPython.display import display');

    // ---- display ----
    const dWs = [];
    const dZmq = [];
    let peakD = {};
    for (let r = 0; r < cfg.rounds; r++) {
      const z = await zmq.run(displayCode(cfg.pngMib));
      dZmq.push(z.ms);
      const sampler = rssSampler(() => pids, 10);
      const t0 = performance.now();
      const got = await wsRun(displayCode(cfg.pngMib));
      dWs.push(performance.now() - t0);
      peakD = sampler.stop();
      if (got.displayBytes !== expectB64) notes.push(`display round ${r + 1}: ${got.displayBytes} base64 bytes arrived, ${expectB64} expected`);
      log(`display ${cfg.pngMib} MiB: ws ${dWs.at(-1).toFixed(0)} ms, zmq ${z.ms.toFixed(0)} ms`);
    }
    set('display_ws_ms', median(dWs), 'ms', `${cfg.pngMib} MiB PNG display, send -> done on the client websocket`);
    set('display_zmq_direct_ms', median(dZmq), 'ms', 'same code over ZMQ directly (baseline)');
    for (const [k, v] of Object.entries(peakD)) set(`display_peak_rss_${k}_mib`, v / MiB, 'MiB');

    // ---- download ----
    await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: `import os\nwith open('big.bin', 'wb') as f:\n    for _ in range(${cfg.fileMib}):\n        f.write(os.urandom(${MiB}))\n` });
    const local = path.join(tmp, 'big.bin');
    {
      const fd = fs.openSync(local, 'w');
      const chunk = Buffer.alloc(MiB, 7);
      for (let i = 0; i < cfg.fileMib; i++) fs.writeSync(fd, chunk);
      fs.closeSync(fd);
    }
    const fRest = [];
    const fDisk = [];
    let peakF = {};
    for (let r = 0; r < cfg.rounds; r++) {
      let t0 = performance.now();
      let n = 0;
      for await (const c of fs.createReadStream(local, { highWaterMark: MiB })) n += c.length;
      fDisk.push(performance.now() - t0);
      const sampler = rssSampler(() => pids, 10);
      t0 = performance.now();
      const bytes = await new Promise((resolve, reject) => {
        http.get(`${o.url}/v1/sessions/${s.id}/files/big.bin`, { headers: o.auth }, (res) => {
          if (res.statusCode !== 200) { reject(new Error(`download: ${res.statusCode}`)); res.resume(); return; }
          let b = 0;
          res.on('data', (c) => { b += c.length; });
          res.on('end', () => resolve(b));
          res.on('error', reject);
        }).on('error', reject);
      });
      fRest.push(performance.now() - t0);
      peakF = sampler.stop();
      if (bytes !== cfg.fileMib * MiB || n !== bytes) notes.push(`download round ${r + 1}: ${bytes} bytes, ${cfg.fileMib * MiB} expected`);
      log(`download ${cfg.fileMib} MiB: ${fRest.at(-1).toFixed(0)} ms (${(cfg.fileMib / (fRest.at(-1) / 1000)).toFixed(0)} MiB/s), disk ${fDisk.at(-1).toFixed(0)} ms; peak RSS MiB ${JSON.stringify(Object.fromEntries(Object.entries(peakF).map(([k, v]) => [k, Math.round(v / MiB)])))}`);
    }
    ws.terminate();
    set('download_ms', median(fRest), 'ms', `${cfg.fileMib} MiB GET /v1/sessions/:id/files/big.bin`);
    set('download_mib_per_s', cfg.fileMib / (median(fRest) / 1000), 'MiB/s');
    set('disk_read_ms', median(fDisk), 'ms', 'same size read from disk in the bench process (baseline floor)');
    for (const [k, v] of Object.entries(peakF)) set(`download_peak_rss_${k}_mib`, v / MiB, 'MiB');

    const rd = median(dWs) / median(dZmq);
    const rf = median(fRest) / median(fDisk);
    const ratios = [
      { metric: 'display_ws_ms', value: metrics.display_ws_ms.value, baseline: 'display_zmq_direct_ms', baselineValue: metrics.display_zmq_direct_ms.value, ratio: round(rd, 3),
        goal: GOALS.display, grossLimit: GOALS.display * GROSS, met: rd <= GOALS.display, gross: rd > GOALS.display * GROSS },
      { metric: 'download_ms', value: metrics.download_ms.value, baseline: 'disk_read_ms', baselineValue: metrics.disk_read_ms.value, ratio: round(rf, 3),
        goal: null, grossLimit: null, met: null, gross: false },
    ];
    notes.push(`${cfg.rounds} round(s); display goal ${GOALS.display}x ZMQ is ours (the issue sets none); download vs a local disk read is informational (the floor, not a peer)`);
    if (peakF.orchestrator) notes.push(`download peak RSS: orchestrator ${Math.round(peakF.orchestrator / MiB)} MiB, worker ${Math.round((peakF.worker ?? 0) / MiB)} MiB for a ${cfg.fileMib} MiB file (bounded if well below it + idle RSS)`);
    return { metrics, baselines: { display_zmq_direct_ms: median(dZmq), disk_read_ms: median(fDisk) }, ratios, notes, config: cfg };
  } finally {
    await o.close().catch(() => {});
    await zmq.stop().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
