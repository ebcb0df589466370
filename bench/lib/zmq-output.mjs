// Node side of baselines/zmq_output.py: a kernel over ZMQ, no Tether.
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnTracked } from './procs.mjs';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../baselines/zmq_output.py');

export async function startZmqOutput({ python = process.env.TETHER_PYTHON || '/usr/bin/python3' } = {}) {
  const child = spawnTracked(python, [script], { env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: '1' } });
  const lines = readline.createInterface({ input: child.proc.stdout });
  const queue = [];
  lines.on('line', (l) => queue.shift()?.(JSON.parse(l)));
  const next = () => new Promise((resolve, reject) => {
    queue.push(resolve);
    child.exited.then(() => reject(new Error(`zmq_output.py exited: ${child.stderrTail()}`)));
  });
  const ready = await next();
  return {
    pid: child.proc.pid,
    kernelPid: ready.pid,
    run(code) { const r = next(); child.proc.stdin.write(`${JSON.stringify({ code })}\n`); return r; },
    async stop() { child.proc.stdin.end('quit\n'); await Promise.race([child.exited, new Promise((r) => setTimeout(r, 5000))]); await child.stop(); },
  };
}
