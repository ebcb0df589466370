// Process helpers: free ports, readiness polling, children that always die.
import { spawn } from 'node:child_process';
import net from 'node:net';

const children = new Set();
let hooked = false;

function hookExit() {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const c of children) {
      try { c.kill('SIGKILL'); } catch { /* gone */ }
    }
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => { killAll(); process.exit(130); });
  }
}

/** A free TCP port on 127.0.0.1 (racy by nature, good enough for a bench). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll fn() until it returns a truthy value or the deadline passes. */
export async function waitFor(fn, { timeoutMs = 30000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
}

/**
 * Spawn a child that is killed when this process exits. Captures the tail of
 * stderr for error messages. Returns { proc, stop(graceMs), stderrTail() }.
 */
export function spawnTracked(cmd, args, opts = {}) {
  hookExit();
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  children.add(proc);
  let tail = '';
  proc.stderr?.on('data', (d) => {
    tail = (tail + d.toString()).slice(-4000);
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => {
    children.delete(proc);
    resolve({ code, sig });
  }));
  async function stop(graceMs = 3000) {
    if (proc.exitCode !== null || proc.signalCode !== null) return exited;
    proc.kill('SIGTERM');
    const t = setTimeout(() => { try { proc.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
    const r = await exited;
    clearTimeout(t);
    return r;
  }
  return { proc, stop, exited, stderrTail: () => tail };
}
