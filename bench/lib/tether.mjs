// Tether-through subjects: client websocket -> orchestrator -> worker -> kernel,
// and REST. The orchestrator runs in this process (startOrchestrator from
// orchestrator/dist/index.js); it launches a real worker (worker/dist/main.js),
// which starts Jupyter Server and a kernel. Build first: npx tsc -b shared worker orchestrator
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ORCHESTRATOR_ENTRY = path.join(repo, 'orchestrator/dist/index.js');
export const WORKER_ENTRY = path.join(repo, 'worker/dist/main.js');

/** Why the Tether paths cannot run, or null when they can. */
export function tetherUnavailable() {
  for (const f of [ORCHESTRATOR_ENTRY, WORKER_ENTRY]) {
    if (!fs.existsSync(f)) return `${path.relative(repo, f)} missing (build: npx tsc -b shared worker orchestrator)`;
  }
  return null;
}

/**
 * Start an orchestrator + one session. Returns { ws: subject, rest: subject,
 * stop() }; each subject has runBatch(n) -> samples in ms (send -> done).
 */
export async function startTether({ log = () => {}, python = process.env.TETHER_PYTHON || '/usr/bin/python3' } = {}) {
  const { startOrchestrator, loadConfig } = await import(pathToFileURL(ORCHESTRATOR_ENTRY).href);
  const dataDir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-')));
  const key = `bench-${randomBytes(12).toString('hex')}`;
  const orch = await startOrchestrator(loadConfig({
    TETHER_HOST: '127.0.0.1',
    TETHER_PORT: '0',
    TETHER_API_KEYS: `bench:${key}`,
    TETHER_DATA_DIR: dataDir,
    TETHER_PYTHON: python,
    TETHER_LOG_LEVEL: process.env.TETHER_BENCH_LOG_LEVEL || 'silent',
  }));
  log(`orchestrator on ${orch.url}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const auth = { Authorization: `Bearer ${key}` };

  function request(method, p, body) {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(`${orch.url}${p}`, {
        method,
        agent,
        headers: { ...auth, ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}) },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode >= 300) reject(new Error(`${method} ${p}: ${res.statusCode} ${text}`));
          else resolve(text ? JSON.parse(text) : null);
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  let sessionId;
  let ws;
  async function stop() {
    try { ws?.close(); } catch { /* closed */ }
    if (sessionId) await request('DELETE', `/v1/sessions/${sessionId}`).catch(() => {});
    agent.destroy();
    await orch.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }

  try {
    const t0 = performance.now();
    const session = await request('POST', '/v1/sessions', {});
    sessionId = session.id;
    log(`session ${sessionId} ready in ${(performance.now() - t0).toFixed(0)} ms`);

    // ---- client websocket ----
    const wsUrl = `${orch.url.replace(/^http/, 'ws')}/v1/sessions/${sessionId}/stream`;
    ws = new WebSocket(wsUrl, { headers: auth, perMessageDeflate: false });
    const waiters = new Map(); // requestId -> { resolve, reject, status }
    let helloResolve;
    const hello = new Promise((r) => { helloResolve = r; });
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'hello') return helloResolve(m);
      const w = m.requestId && waiters.get(m.requestId);
      if (!w) return;
      if (m.type === 'done') {
        waiters.delete(m.requestId);
        w.resolve(m);
      } else if (m.type === 'protocol_error') {
        waiters.delete(m.requestId);
        w.reject(new Error(`protocol_error: ${JSON.stringify(m)}`));
      }
    });
    ws.on('close', () => { for (const w of waiters.values()) w.reject(new Error('stream closed')); waiters.clear(); });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    await hello;
    let seq = 0;
    const wsExecute = (code) => new Promise((resolve, reject) => {
      const requestId = `b${++seq}`;
      waiters.set(requestId, { resolve, reject });
      ws.send(JSON.stringify({ type: 'execute', requestId, code }));
    });
    const first = await wsExecute('x = 1');
    if (first.status !== 'ok') throw new Error(`x = 1 failed: ${JSON.stringify(first)}`);

    const wsSubject = {
      async runBatch(n, code = 'x + 1') {
        const out = [];
        for (let i = 0; i < n; i++) {
          const t = performance.now();
          const done = await wsExecute(code);
          out.push(performance.now() - t);
          if (done.status !== 'ok') throw new Error(`ws execute: ${JSON.stringify(done)}`);
        }
        return out;
      },
    };
    const restSubject = {
      async runBatch(n, code = 'x + 1') {
        const out = [];
        for (let i = 0; i < n; i++) {
          const t = performance.now();
          const r = await request('POST', `/v1/sessions/${sessionId}/execute`, { code });
          out.push(performance.now() - t);
          if (r.status !== 'ok') throw new Error(`REST execute: ${JSON.stringify(r)}`);
        }
        return out;
      },
    };
    return { ws: wsSubject, rest: restSubject, stop, url: orch.url, key, sessionId };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}
