// Scenario: what several replicas cost, real workers (Jupyter Server + ipykernel).
//   store       REST execute round trip of `print(1)` (request -> full response) on a
//               single orchestrator with the memory store vs on a replica of a
//               3-replica cluster sharing a redis-server, sent to the session's owner.
//   forwarding  the same session, sent to a replica that does not own it (it
//               forwards the request to the owner) vs sent to the owner.
//   failover    kill -9 of a session's owner, then `print(x)` through the balancer
//               (infra/dev/balancer.mjs) every 50 ms until one succeeds, on the same
//               kernel (x kept). The killed replica is restarted on its port between
//               kills. Default TETHER_REPLICA_TTL_MS (5000): the floor of a failover.
// Latency subjects run interleaved in rounds (one batch each, rotating order) because
// the machine is shared and noisy; ratios are the median over rounds of the p50 ratios.
// Every process runs unsandboxed (TETHER_SANDBOX=off: required for local workers in a
// cluster, and the single orchestrator the same, so only the store and the hop differ).
// All informational: no goal, no gross gate.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startBalancer } from '../../infra/dev/balancer.mjs';
import { findRedisServer, kill, pidsWithEnv, startRedis, stopChild } from '../../infra/dev/cluster-procs.mjs';
import { callApi, startServer } from '../lib/orchestrator-server.mjs';
import { tetherUnavailable } from '../lib/tether.mjs';
import { freePort, sleep } from '../lib/procs.mjs';
import { summarize, median, round } from '../lib/stats.mjs';

export const name = 'cluster';

const REPLICA_TTL_MS = 5000;
const FAILOVER_POLL_MS = 50;
const FAILOVER_TIMEOUT_MS = 60_000;
/** Every process of a run carries it (replicas pass it on to workers): the end finds what a killed replica left. */
const MARKER = 'TETHER_BENCH_CLUSTER_RUN';
const runId = randomBytes(8).toString('hex');

const orchestrator = ({ port, dataDir, key, env }) => startServer({ port, dataDir, key, env, marker: { [MARKER]: runId } });
const call = callApi;

/** n execute round trips of `print(1)` against `base`; ms each. */
async function batch(key, base, sessionId, n) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await call(key, 'POST', `${base}/v1/sessions/${sessionId}/execute`, { code: 'print(1)' });
    samples.push(performance.now() - t0);
    if (r.stdout !== '1\n') throw new Error(`unexpected result: ${JSON.stringify(r).slice(0, 300)}`);
  }
  return samples;
}

/** Until an execute of `print(x)` through the balancer answers the value set before the kill; ms since `t0`. */
async function firstSuccess(key, base, sessionId, t0) {
  let last = '';
  while (performance.now() - t0 < FAILOVER_TIMEOUT_MS) {
    try {
      const r = await call(key, 'POST', `${base}/v1/sessions/${sessionId}/execute`, { code: 'print(x)' });
      if (r.stdout !== '41\n') throw new Error(`state lost after the failover: ${JSON.stringify(r).slice(0, 300)}`);
      return performance.now() - t0;
    } catch (error) {
      // 503 OWNER_UNAVAILABLE / SESSION_MOVED, or a connection the dying replica dropped: retry.
      if (error.message.startsWith('state lost')) throw error;
      last = error.message;
    }
    await sleep(FAILOVER_POLL_MS);
  }
  throw new Error(`no execute succeeded within ${FAILOVER_TIMEOUT_MS} ms of the kill; last: ${last}`);
}

export async function run({ quick = false, log = () => {} } = {}) {
  const why = tetherUnavailable() ?? (findRedisServer() ? null : 'redis-server is not installed (apt-get install -y redis-server)');
  if (why) throw new Error(why);
  const rounds = quick ? 3 : 7;
  const perBatch = quick ? 10 : 30;
  const kills = quick ? 2 : 10;
  const key = `bench-${randomBytes(12).toString('hex')}`;
  const dataDir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-cluster-')));
  const prefix = `bench${randomBytes(4).toString('hex')}:`;
  const redis = await startRedis({ binary: findRedisServer(), port: await freePort() });
  const lookup = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  const single = { proc: undefined };
  const replicas = [];
  let balancer;
  const metrics = {};
  const notes = [];
  const set = (k, value, unit, description) => { metrics[k] = { value: round(value, 2), unit, ...(description ? { description } : {}) }; };
  const ownerOf = async (sessionId) => {
    const lease = await lookup.get(`${prefix}lease:${sessionId}`);
    return replicas.find((r) => lease?.startsWith(`${r.replicaId}:`));
  };
  const startReplica = (port) => orchestrator({
    port, dataDir: path.join(dataDir, 'cluster'), key,
    env: { TETHER_REDIS_URL: redis.url, TETHER_REDIS_PREFIX: prefix, TETHER_REPLICA_URL: `http://127.0.0.1:${port}`, TETHER_PUBLIC_URL: `ws://127.0.0.1:${balancer.port}`, TETHER_REPLICA_TTL_MS: String(REPLICA_TTL_MS) },
  });

  try {
    single.proc = await orchestrator({ port: await freePort(), dataDir: path.join(dataDir, 'single'), key });
    const ports = [await freePort(), await freePort(), await freePort()];
    balancer = await startBalancer({ port: await freePort(), backends: ports.map((port) => ({ host: '127.0.0.1', port })) });
    replicas.push(...(await Promise.all(ports.map(startReplica))));
    const via = `http://127.0.0.1:${balancer.port}`;
    log(`single orchestrator ${single.proc.url}; replicas ${replicas.map((r) => r.url).join(' ')}; balancer ${via}; redis ${redis.url}`);

    // Latency: one session on each side, warmed up, then interleaved rounds.
    const singleSession = await call(key, 'POST', `${single.proc.url}/v1/sessions`, {});
    const clusterSession = await call(key, 'POST', `${via}/v1/sessions`, {});
    const owner = await ownerOf(clusterSession.id);
    if (!owner) throw new Error('no owner found for the cluster session');
    const other = replicas.find((r) => r !== owner);
    const subjects = {
      single_memory: () => batch(key, single.proc.url, singleSession.id, perBatch),
      redis_owner: () => batch(key, owner.url, clusterSession.id, perBatch),
      redis_forwarded: () => batch(key, other.url, clusterSession.id, perBatch),
    };
    for (const subject of Object.values(subjects)) await subject();
    const p50s = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
    const all = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
    const names = Object.keys(subjects);
    for (let round_ = 0; round_ < rounds; round_++) {
      for (let i = 0; i < names.length; i++) {
        const subject = names[(i + round_) % names.length];
        const samples = await subjects[subject]();
        p50s[subject].push(summarize(samples).p50);
        all[subject].push(...samples);
      }
      log(`round ${round_ + 1}: ${names.map((n) => `${n} ${p50s[n].at(-1).toFixed(2)} ms`).join(', ')}`);
    }
    const ratioOf = (a, b) => median(p50s[a].map((x, i) => x / p50s[b][i]));
    const descriptions = {
      single_memory: 'POST execute print(1) -> full response, single orchestrator, memory store',
      redis_owner: 'the same on a replica with the Redis store, sent to the session\'s owner',
      redis_forwarded: 'the same session, sent to a replica that forwards it to the owner',
    };
    for (const n of names) {
      const s = summarize(all[n]);
      set(`${n}_p50_ms`, s.p50, 'ms', `${descriptions[n]} (p50 of all samples)`);
      set(`${n}_p90_ms`, s.p90, 'ms');
    }
    await call(key, 'DELETE', `${single.proc.url}/v1/sessions/${singleSession.id}`).catch(() => {});
    // Its worker and kernel would share the 2 cores with the failover below.
    await stopChild(single.proc.child, 'SIGTERM', 15_000);

    // Failover: kill -9 the owner, time until an execute on the session succeeds through the balancer.
    const failovers = [];
    for (let k = 0; k < kills; k++) {
      const session = await call(key, 'POST', `${via}/v1/sessions`, {});
      await call(key, 'POST', `${via}/v1/sessions/${session.id}/execute`, { code: 'x = 41' });
      const victim = await ownerOf(session.id);
      if (!victim) throw new Error('no owner found');
      const exited = new Promise((resolve) => victim.child.once('exit', resolve));
      const t0 = performance.now();
      victim.child.kill('SIGKILL');
      await exited;
      const ms = await firstSuccess(key, via, session.id, t0);
      failovers.push(ms);
      log(`kill ${k + 1}: replica ${victim.port} killed; execute succeeded through the balancer after ${ms.toFixed(0)} ms`);
      await call(key, 'DELETE', `${via}/v1/sessions/${session.id}`).catch(() => {});
      replicas[replicas.indexOf(victim)] = await startReplica(victim.port);
    }
    const f = summarize(failovers);
    set('failover_p50_ms', f.p50, 'ms', `kill -9 of the owner -> first successful execute through the balancer, ${kills} kills (p50)`);
    set('failover_max_ms', f.max, 'ms', 'the same, slowest kill');
    set('replica_ttl_ms', REPLICA_TTL_MS, 'ms', 'TETHER_REPLICA_TTL_MS (default): a dead replica\'s key lapses after it');

    const ratio = (metric, baseline, value, baselineValue, r) => ({ metric, value: round(value, 2), baseline, baselineValue: round(baselineValue, 2), ratio: round(r, 3), goal: null, grossLimit: null, met: null, gross: false });
    const ratios = [
      ratio('redis_owner_p50_ms', 'single_memory_p50_ms', metrics.redis_owner_p50_ms.value, metrics.single_memory_p50_ms.value, ratioOf('redis_owner', 'single_memory')),
      ratio('redis_forwarded_p50_ms', 'redis_owner_p50_ms', metrics.redis_forwarded_p50_ms.value, metrics.redis_owner_p50_ms.value, ratioOf('redis_forwarded', 'redis_owner')),
      ratio('failover_p50_ms', 'replica_ttl_ms', f.p50, REPLICA_TTL_MS, f.p50 / REPLICA_TTL_MS),
      ratio('failover_max_ms', 'replica_ttl_ms', f.max, REPLICA_TTL_MS, f.max / REPLICA_TTL_MS),
    ];
    notes.push(`${rounds} interleaved rounds of ${perBatch} executes per subject; latency ratios are the median over rounds of the per-round p50 ratios`);
    notes.push(`failover: ${kills} kills, each of a fresh session's owner; polled every ${FAILOVER_POLL_MS} ms through the balancer; samples ${failovers.map((x) => x.toFixed(0)).join(', ')} ms`);
    notes.push('all informational (no goal); TETHER_SANDBOX=off everywhere; one redis-server on loopback, no persistence');
    return { metrics, baselines: { single_memory_p50_ms: metrics.single_memory_p50_ms.value, replica_ttl_ms: REPLICA_TTL_MS }, ratios, notes, config: { rounds, perBatch, kills, replicaTtlMs: REPLICA_TTL_MS } };
  } finally {
    if (single.proc) await stopChild(single.proc.child, 'SIGTERM', 15_000);
    // Sessions first (their owners stop the workers), then the replicas.
    for (const r of replicas) {
      const listed = await call(key, 'GET', `${r.url}/v1/sessions`).catch(() => ({ sessions: [] }));
      for (const s of listed.sessions) await call(key, 'DELETE', `${r.url}/v1/sessions/${s.id}`).catch(() => {});
    }
    await Promise.all(replicas.map((r) => stopChild(r.child, 'SIGTERM', 30_000)));
    await balancer?.close();
    lookup.disconnect();
    await redis.close();
    for (let i = 0; i < 50 && (await pidsWithEnv(MARKER, runId)).length > 0; i++) await sleep(100);
    for (const pid of await pidsWithEnv(MARKER, runId)) kill(pid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
