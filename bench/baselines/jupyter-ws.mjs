// Baseline: a stock Jupyter Server kernel websocket, driven with raw Jupyter
// JSON messages over `ws` (no @jupyterlab/services), and the same server
// started through bench/fixes/tether_jupyter_launch.py (TCP_NODELAY fix).
//
// Library use: startJupyter({ patched }) -> server; server.openKernel() ->
// kernel subject with runBatch(n) -> samples (ms); kernel.close(); server.stop()
// (which deletes its kernels through the API before stopping the server).
//
// CLI: node bench/baselines/jupyter-ws.mjs [--n 200] [--warmup 20] [--patched]
//      prints {"samples_ms": [...], "patched": bool}
import { randomUUID, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import WebSocket from 'ws';
import { freePort, spawnTracked, waitFor } from '../lib/procs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const LAUNCHER = path.resolve(here, '../fixes/tether_jupyter_launch.py');
export const PYTHON = process.env.TETHER_PYTHON || '/usr/bin/python3';

/** Start a Jupyter Server on 127.0.0.1; `patched` runs it through the launcher. */
export async function startJupyter({ patched = false, python = PYTHON, log = () => {} } = {}) {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-jupyter-'));
  const serverArgs = [
    '--ServerApp.ip=127.0.0.1',
    `--ServerApp.port=${port}`,
    '--ServerApp.port_retries=0',
    `--ServerApp.token=${token}`,
    '--ServerApp.open_browser=False',
    '--ServerApp.allow_root=True',
    `--ServerApp.root_dir=${root}`,
    '--ServerApp.iopub_msg_rate_limit=0',
    '--ServerApp.iopub_data_rate_limit=0',
  ];
  const args = patched ? [LAUNCHER, ...serverArgs] : ['-m', 'jupyter_server', ...serverArgs];
  const env = {
    ...process.env,
    // Keep stock behaviour comparable: the launcher honours this, stock ignores it.
    TETHER_JUPYTER_NODELAY: patched ? '1' : '0',
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
    JUPYTER_RUNTIME_DIR: path.join(root, '.runtime'),
  };
  const child = spawnTracked(python, args, { env, cwd: root });
  child.proc.stdout.resume();
  const base = `http://127.0.0.1:${port}`;
  const headers = { Authorization: `token ${token}` };
  try {
    await waitFor(async () => {
      if (child.proc.exitCode !== null) throw new Error(`jupyter exited: ${child.stderrTail()}`);
      const r = await fetch(`${base}/api`, { headers });
      return r.ok;
    }, { timeoutMs: 60000, what: `jupyter server on ${port}` });
  } catch (e) {
    await child.stop();
    throw e;
  }
  log(`jupyter server (${patched ? 'patched' : 'stock'}) on ${base}, pid ${child.proc.pid}`);
  const kernels = new Set();

  async function api(method, p, body) {
    const r = await fetch(`${base}${p}`, {
      method,
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
    return r.status === 204 ? null : r.json();
  }

  async function openKernel() {
    const k = await api('POST', '/api/kernels', { name: 'python3' });
    kernels.add(k.id);
    const sub = await openKernelWs({ port, token, kernelId: k.id });
    return {
      ...sub,
      kernelId: k.id,
      async close() {
        sub.close();
        await api('DELETE', `/api/kernels/${k.id}`).catch(() => {});
        kernels.delete(k.id);
      },
    };
  }

  async function stop() {
    for (const id of [...kernels]) {
      await api('DELETE', `/api/kernels/${id}`).catch(() => {});
      kernels.delete(id);
    }
    // Belt and braces: anything the server still lists.
    try {
      for (const k of await api('GET', '/api/kernels')) await api('DELETE', `/api/kernels/${k.id}`);
    } catch { /* server gone */ }
    await child.stop(3000);
    fs.rmSync(root, { recursive: true, force: true });
  }

  return { base, port, token, pid: child.proc.pid, patched, api, openKernel, stop };
}

/**
 * Open /api/kernels/<id>/channels and return a subject that times trivial
 * executes from send to (execute_reply AND status idle for that msg_id).
 */
export async function openKernelWs({ port, token, kernelId }) {
  const session = randomUUID();
  const url = `ws://127.0.0.1:${port}/api/kernels/${kernelId}/channels?session_id=${session}&token=${token}`;
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const pending = new Map(); // msg_id -> { reply, idle, resolve, reject, content }
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const pid = msg.parent_header?.msg_id;
    const p = pid && pending.get(pid);
    if (!p) return;
    const type = msg.header?.msg_type;
    if (msg.channel === 'shell' && type?.endsWith('_reply')) {
      p.reply = true;
      p.content = msg.content;
    } else if (msg.channel === 'iopub' && type === 'status' && msg.content?.execution_state === 'idle') {
      p.idle = true;
    }
    if (p.reply && p.idle) {
      pending.delete(pid);
      p.resolve(p.content);
    }
  });
  ws.on('close', () => {
    for (const p of pending.values()) p.reject(new Error('kernel websocket closed'));
    pending.clear();
  });

  function request(msgType, content, channel = 'shell') {
    const msgId = randomUUID();
    const msg = {
      header: { msg_id: msgId, username: 'bench', session, date: new Date().toISOString(), msg_type: msgType, version: '5.3' },
      parent_header: {},
      metadata: {},
      content,
      channel,
      buffers: [],
    };
    return new Promise((resolve, reject) => {
      pending.set(msgId, { reply: false, idle: false, resolve, reject });
      ws.send(JSON.stringify(msg));
    });
  }

  const execute = (code) => request('execute_request', {
    code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true,
  });

  // The kernel may still be starting: kernel_info until it answers.
  await waitFor(() => Promise.race([
    request('kernel_info_request', {}).then(() => true),
    new Promise((r) => setTimeout(() => r(false), 2000)),
  ]), { timeoutMs: 60000, intervalMs: 0, what: 'kernel_info_reply' });
  const r = await execute('x = 1');
  if (r.status !== 'ok') throw new Error(`x = 1 failed: ${JSON.stringify(r)}`);

  async function runBatch(n, code = 'x + 1') {
    const out = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const c = await execute(code);
      out.push(performance.now() - t0);
      if (c.status !== 'ok') throw new Error(`execute failed: ${JSON.stringify(c)}`);
    }
    return out;
  }

  return { runBatch, execute, close: () => ws.close(), ws };
}

async function cli() {
  const argv = process.argv.slice(2);
  const opt = (name, d) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const n = opt('--n', 200);
  const warmup = opt('--warmup', 20);
  const patched = argv.includes('--patched');
  const server = await startJupyter({ patched, log: (m) => process.stderr.write(`${m}\n`) });
  try {
    const k = await server.openKernel();
    await k.runBatch(warmup);
    const samples = await k.runBatch(n);
    await k.close();
    process.stdout.write(`${JSON.stringify({ samples_ms: samples, patched, warmup })}\n`);
  } finally {
    await server.stop();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli().catch((e) => { console.error(e); process.exit(1); });
}
