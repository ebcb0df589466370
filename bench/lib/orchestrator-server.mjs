// An orchestrator process as deployed (orchestrator/dist/server.js) on its own port, for the
// cluster scenarios: unsandboxed (local workers in a cluster need it), killed when the bench exits.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForReplica } from '../../infra/dev/cluster-procs.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER = path.join(repo, 'orchestrator/dist/server.js');

/** `marker` ({name: value}) goes to every process of the run (replicas pass it on to workers): the end finds what a killed one left. */
export async function startServer({ port, dataDir, key, marker, env = {} }) {
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [SERVER], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      TETHER_HOST: '127.0.0.1',
      TETHER_PORT: String(port),
      TETHER_API_KEYS: `bench:${key}`,
      TETHER_DATA_DIR: dataDir,
      TETHER_PYTHON: process.env.TETHER_PYTHON || '/usr/bin/python3',
      TETHER_SANDBOX: 'off',
      TETHER_LOG_LEVEL: 'warn',
      ...marker,
      ...env,
    },
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const replicaId = await waitForReplica(url, child, 120_000, `orchestrator on ${url}`);
  return { url, port, child, replicaId };
}

/** fetch with the bench key; JSON body, or a thrown error carrying the status. */
export async function callApi(key, method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw Object.assign(new Error(`${method} ${url}: ${response.status} ${text.slice(0, 300)}`), { status: response.status });
  return text ? JSON.parse(text) : null;
}
