// Scenario: the warm pool across a cluster, real workers (Jupyter Server + ipykernel).
// Two replicas on one redis-server: A with no pool (TETHER_POOL_SIZE=0), B with a pool
// of 2. Each subject is POST /v1/sessions -> first result of `print(1)`:
//   peer_pool   created through A, whose pool is empty, while B has an idle worker: A
//               claims B's in Redis and the create is served on B (workerSource "pool")
//   cold        created through A with a profile the pool does not hold (same worker,
//               same env): the cold start A did before the cluster-wide pool
//   local_pool  created through B, on its own pool worker: the floor (no hop)
// Subjects run interleaved in rounds (the machine is shared and noisy); before each
// round B's pool is full again. All informational: no goal, no gross gate.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { findRedisServer, kill, pidsWithEnv, startRedis, stopChild } from '../../infra/dev/cluster-procs.mjs';
import { callApi, startServer } from '../lib/orchestrator-server.mjs';
import { tetherUnavailable } from '../lib/tether.mjs';
import { freePort, sleep } from '../lib/procs.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'cluster-pool';

const MARKER = 'TETHER_BENCH_CLUSTER_POOL_RUN';
const runId = randomBytes(8).toString('hex');
const POOL_SIZE = 2;

const replica = ({ port, dataDir, key, redisUrl, prefix, poolSize }) => startServer({
  port, dataDir, key, marker: { [MARKER]: runId },
  env: {
    TETHER_REDIS_URL: redisUrl,
    TETHER_REDIS_PREFIX: prefix,
    TETHER_REPLICA_URL: `http://127.0.0.1:${port}`,
    TETHER_POOL_SIZE: String(poolSize),
    // Workers of the pool run `default`; `cold` is the same worker the pool never holds.
    TETHER_PROFILES: JSON.stringify({ cold: { env: { TETHER_BENCH_PROFILE: 'cold' } } }),
  },
});
const call = callApi;

export async function run({ quick = false, log = () => {} } = {}) {
  const why = tetherUnavailable() ?? (findRedisServer() ? null : 'redis-server is not installed (apt-get install -y redis-server)');
  if (why) throw new Error(why);
  const rounds = quick ? 3 : 7;
  const key = `bench-${randomBytes(12).toString('hex')}`;
  const dataDir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-cluster-pool-')));
  const prefix = `bench${randomBytes(4).toString('hex')}:`;
  const redis = await startRedis({ binary: findRedisServer(), port: await freePort() });
  const replicas = [];
  const metrics = {};
  const set = (k, value, unit, description) => { metrics[k] = { value: round(value, 2), unit, ...(description ? { description } : {}) }; };
  try {
    const common = { dataDir, key, redisUrl: redis.url, prefix };
    const [a, b] = await Promise.all([replica({ ...common, port: await freePort(), poolSize: 0 }), replica({ ...common, port: await freePort(), poolSize: POOL_SIZE })]);
    replicas.push(a, b);
    const poolFull = async () => {
      for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(100)) {
        const pool = await call(key, 'GET', `${b.url}/v1/pool`);
        if (pool.ready === POOL_SIZE && pool.cluster?.idle === POOL_SIZE) return;
      }
      throw new Error('the pool did not fill within 120 s');
    };
    const createToFirstResult = async (via, body, source) => {
      const t0 = performance.now();
      const session = await call(key, 'POST', `${via}/v1/sessions`, body);
      const r = await call(key, 'POST', `${via}/v1/sessions/${session.id}/execute`, { code: 'print(1)' });
      const ms = performance.now() - t0;
      if (r.stdout !== '1\n') throw new Error(`unexpected result: ${JSON.stringify(r).slice(0, 300)}`);
      if (session.workerSource !== source) throw new Error(`expected workerSource ${source}, got ${session.workerSource}`);
      await call(key, 'DELETE', `${via}/v1/sessions/${session.id}`);
      return ms;
    };
    const subjects = {
      peer_pool: () => createToFirstResult(a.url, {}, 'pool'),
      cold: () => createToFirstResult(a.url, { profile: 'cold' }, 'launch'),
      local_pool: () => createToFirstResult(b.url, {}, 'pool'),
    };
    const names = Object.keys(subjects);
    const samples = Object.fromEntries(names.map((n) => [n, []]));
    for (let round_ = 0; round_ < rounds; round_++) {
      for (let i = 0; i < names.length; i++) {
        const subject = names[(i + round_) % names.length];
        await poolFull();
        samples[subject].push(await subjects[subject]());
      }
      log(`round ${round_ + 1}: ${names.map((n) => `${n} ${samples[n].at(-1).toFixed(0)} ms`).join(', ')}`);
    }
    const descriptions = {
      peer_pool: 'create -> first result through a replica with an empty pool, another replica holding idle pool workers (median)',
      cold: 'the same create as a cold start (a profile the pool does not hold): what it cost before the cluster-wide pool (median)',
      local_pool: 'create -> first result on the replica holding the pool worker, no hop (median)',
    };
    for (const n of names) set(`${n}_median_ms`, median(samples[n]), 'ms', descriptions[n]);
    const ratio = (metric, baseline) => ({ metric, value: metrics[metric].value, baseline, baselineValue: metrics[baseline].value, ratio: round(metrics[metric].value / metrics[baseline].value, 3), goal: null, grossLimit: null, met: null, gross: false });
    return {
      metrics,
      baselines: { cold_median_ms: metrics.cold_median_ms.value, local_pool_median_ms: metrics.local_pool_median_ms.value },
      ratios: [ratio('peer_pool_median_ms', 'cold_median_ms'), ratio('peer_pool_median_ms', 'local_pool_median_ms')],
      notes: [`${rounds} interleaved rounds; samples: ${names.map((n) => `${n} ${samples[n].map((x) => x.toFixed(0)).join('/')}`).join('; ')} ms`, 'TETHER_SANDBOX=off; one redis-server on loopback'],
      config: { rounds, poolSize: POOL_SIZE },
    };
  } finally {
    await Promise.all(replicas.map((r) => stopChild(r.child, 'SIGTERM', 30_000)));
    await redis.close();
    for (let i = 0; i < 50 && (await pidsWithEnv(MARKER, runId)).length > 0; i++) await sleep(100);
    for (const pid of await pidsWithEnv(MARKER, runId)) kill(pid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
