// Node side of bench/baselines/zmq_direct.py: keeps one Python process (and
// its kernel) alive in --serve mode so the scenario can interleave batches.
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnTracked } from '../lib/procs.mjs';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zmq_direct.py');

export async function startZmqDirect({ python = process.env.TETHER_PYTHON || '/usr/bin/python3', warmup = 20 } = {}) {
  const child = spawnTracked(python, [SCRIPT, '--serve', '--warmup', String(warmup)], {
    env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: '1' },
  });
  const lines = readline.createInterface({ input: child.proc.stdout });
  const queue = [];
  const waiting = [];
  lines.on('line', (l) => {
    const w = waiting.shift();
    if (w) w.resolve(l); else queue.push(l);
  });
  child.exited.then(() => { for (const w of waiting.splice(0)) w.reject(new Error(`zmq_direct.py exited: ${child.stderrTail()}`)); });
  const nextLine = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve, reject) => waiting.push({ resolve, reject })));

  const ready = JSON.parse(await nextLine());
  if (!ready.ready) throw new Error(`zmq_direct.py: unexpected ${JSON.stringify(ready)}`);
  return {
    async runBatch(n) {
      child.proc.stdin.write(`run ${n}\n`);
      return JSON.parse(await nextLine()).samples_ms;
    },
    async stop() {
      child.proc.stdin.end('quit\n');
      const t = setTimeout(() => child.stop(3000), 10000);
      await child.exited;
      clearTimeout(t);
    },
  };
}
