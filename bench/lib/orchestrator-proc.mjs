// Start the orchestrator in its own process (lib/orchestrator-entry.mjs) so its
// memory can be read alone and it does not share the bench client's event loop.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import readline from 'node:readline';
import { randomBytes } from 'node:crypto';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const ENTRY = path.join(here, 'orchestrator-entry.mjs');

/** VmRSS / VmHWM of a process, in bytes (null when it is gone). */
export function procMemory(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return null;
  }
}

/** Every pid in the process tree under `pid` (itself included). */
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const kids = fs.readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    } catch { /* gone */ }
  }
  return out;
}

/** Samples VmRSS of `pids()` every intervalMs; stop() -> { peak: {label: bytes} }. */
export function rssSampler(pidsByLabel, intervalMs = 50) {
  const peak = {};
  const tick = () => {
    for (const [label, pid] of Object.entries(pidsByLabel())) {
      const m = pid ? procMemory(pid) : null;
      if (m && Number.isFinite(m.rss)) peak[label] = Math.max(peak[label] ?? 0, m.rss);
    }
  };
  tick();
  const t = setInterval(tick, intervalMs);
  return { stop() { clearInterval(t); tick(); return peak; } };
}

/**
 * Starts an orchestrator process. env: extra TETHER_* settings. fleet: launch
 * synthetic workers (benchmarks only). onLog(obj): every pino line.
 */
export async function startOrchestratorProc({ env = {}, fleet = false, onLog, nodeArgs = [] } = {}) {
  const dataDir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-')));
  const key = `bench-${randomBytes(12).toString('hex')}`;
  const child = fork(ENTRY, fleet ? ['--fleet'] : [], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    execArgv: ['--expose-gc', ...nodeArgs],
    env: {
      ...process.env,
      TETHER_HOST: '127.0.0.1',
      TETHER_PORT: '0',
      TETHER_API_KEYS: `bench:${key}`,
      TETHER_DATA_DIR: dataDir,
      TETHER_PYTHON: process.env.TETHER_PYTHON || '/usr/bin/python3',
      TETHER_LOG_LEVEL: 'warn',
      ...env,
    },
  });
  let stderrTail = '';
  child.stderr.on('data', (d) => { stderrTail = (stderrTail + d).slice(-4000); });
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    if (!onLog) return;
    try { onLog(JSON.parse(line)); } catch { /* not json */ }
  });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  const killOnExit = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', killOnExit);
  const ready = await new Promise((resolve, reject) => {
    child.on('message', (m) => { if (m.type === 'ready') resolve(m); });
    exited.then(({ code }) => reject(new Error(`orchestrator process exited (${code}): ${stderrTail}`)));
  });
  const auth = { Authorization: `Bearer ${key}` };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  function request(method, p, body, { raw = false } = {}) {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(`${ready.url}${p}`, {
        method, agent,
        headers: { ...auth, ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}) },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          if (res.statusCode >= 300) reject(new Error(`${method} ${p}: ${res.statusCode} ${buf.toString().slice(0, 500)}`));
          else resolve(raw ? buf : buf.length ? JSON.parse(buf.toString()) : null);
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Opens the client websocket of a session; resolves after its hello. */
  function openStream(sessionId, onMessage) {
    const ws = new WebSocket(`${ready.url.replace(/^http/, 'ws')}/v1/sessions/${sessionId}/stream`, { headers: auth, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    return new Promise((resolve, reject) => {
      let hello = false;
      ws.on('message', (data, isBinary) => {
        if (!hello) { hello = true; resolve(ws); return; }
        onMessage(data, isBinary);
      });
      ws.once('error', reject);
    });
  }

  const gc = () => new Promise((resolve) => {
    const on = (m) => { if (m.type === 'gc_done') { child.off('message', on); resolve(); } };
    child.on('message', on);
    child.send({ type: 'gc' });
  });

  async function close() {
    if (child.exitCode === null) {
      child.send({ type: 'close' });
      const t = setTimeout(() => child.kill('SIGKILL'), 15000);
      await exited;
      clearTimeout(t);
    }
    agent.destroy();
    process.off('exit', killOnExit);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }

  return { url: ready.url, pid: ready.pid, fleetPid: ready.fleetPid, key, auth, request, openStream, gc, fleetGc: () => child.send({ type: 'fleet_gc' }), close, exited, stderrTail: () => stderrTail };
}
