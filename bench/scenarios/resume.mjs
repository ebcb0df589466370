// Scenario: resume after scale to zero, real workers (Jupyter Server + ipykernel).
//   resume     a session with `idleTimeoutS: 1` writes its workspace, scales to
//              zero (snapshot saved, worker stopped: phase `stopped`), then
//              POST execute `1 + 1` -> first result. With and without a warm pool
//              (TETHER_POOL_SIZE=2, full before each resume), with a small (1 KiB)
//              and a ~50 MiB workspace (5 x 10 MiB random files). Medians.
//   stopping   the same, with the execute sent as soon as the session shows `stopping`
//              (it waits for the snapshot, then resumes).
//   baseline   cold start to first result in the same orchestrator, same run
//              (POST /v1/sessions -> execute), and the restore time the orchestrator
//              logs ("workspace restored", restoreMs) for the pool goal.
//   goals      (issue #9) no pool: resume -> first result <= 1.5 s; pool: <= 300 ms
//              plus the restore time.
// TETHER_SNAPSHOT_STORE etc. pass through from the environment (e.g. azure-blob).
import { startOrchestratorProc } from '../lib/orchestrator-proc.mjs';
import { tetherUnavailable } from '../lib/tether.mjs';
import { waitFor } from '../lib/procs.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'resume';

const GOAL_NO_POOL_MS = 1500;
const GOAL_POOL_MS = 300;
const POOL = 2;
const WORKSPACES = {
  small: "open('notes.txt', 'w').write('x' * 1024)",
  large: "import os\nos.makedirs('data', exist_ok=True)\nfor i in range(5):\n    open(f'data/part{i}.bin', 'wb').write(os.urandom(10 * 1024 * 1024))",
};

async function orchestrator(poolSize) {
  const restoreMs = new Map();
  const onLog = (l) => {
    if (l.msg === 'workspace restored' && l.sessionId) restoreMs.set(l.sessionId, l.restoreMs);
  };
  const o = await startOrchestratorProc({ env: { TETHER_LOG_LEVEL: 'info', TETHER_POOL_SIZE: String(poolSize) }, onLog });
  return { ...o, restoreMs };
}

async function poolFull(o) {
  await waitFor(async () => (await o.request('GET', '/v1/pool')).ready === POOL, { timeoutMs: 120000, intervalMs: 50, what: 'a full warm pool' });
}

/** One round: create, write the workspace, wait for `stopped`, then time execute -> result. */
async function resumeOnce(o, workspace, pooled) {
  const s = await o.request('POST', '/v1/sessions', { idleTimeoutS: 1 });
  const wrote = await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: WORKSPACES[workspace], timeoutMs: 120000 });
  if (wrote.status !== 'ok') throw new Error(`writing the workspace: ${JSON.stringify(wrote).slice(0, 300)}`);
  await waitFor(async () => (await o.request('GET', `/v1/sessions/${s.id}`)).phase === 'stopped', { timeoutMs: 120000, intervalMs: 50, what: 'the session to scale to zero' });
  if (pooled) await poolFull(o);
  const info = await o.request('GET', `/v1/sessions/${s.id}`);
  const t0 = performance.now();
  const r = await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: '1 + 1' });
  const ms = performance.now() - t0;
  if (r.status !== 'ok' || !r.resumed) throw new Error(`resume: ${JSON.stringify(r).slice(0, 300)}`);
  await new Promise((resolve) => setTimeout(resolve, 100)); // the log line arrives over a pipe
  const restoreMs = o.restoreMs.get(s.id) ?? null;
  await o.request('DELETE', `/v1/sessions/${s.id}`).catch(() => {});
  return { ms, restoreMs, snapshotBytes: info.snapshot?.bytes ?? 0 };
}

/** An execute that arrives while the session is still stopping (snapshot, worker shutdown) -> first result. */
async function resumeWhileStoppingOnce(o) {
  const s = await o.request('POST', '/v1/sessions', { idleTimeoutS: 1 });
  await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: WORKSPACES.small });
  await waitFor(async () => (await o.request('GET', `/v1/sessions/${s.id}`)).phase === 'stopping', { timeoutMs: 60000, intervalMs: 10, what: 'the session to start stopping' });
  const t0 = performance.now();
  const r = await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: '1 + 1' });
  const ms = performance.now() - t0;
  if (r.status !== 'ok' || !r.resumed) throw new Error(`resume while stopping: ${JSON.stringify(r).slice(0, 300)}`);
  await o.request('DELETE', `/v1/sessions/${s.id}`).catch(() => {});
  return ms;
}

async function coldOnce(o) {
  const t0 = performance.now();
  const s = await o.request('POST', '/v1/sessions', {});
  const r = await o.request('POST', `/v1/sessions/${s.id}/execute`, { code: '1 + 1' });
  const ms = performance.now() - t0;
  if (r.status !== 'ok') throw new Error(`cold start: ${JSON.stringify(r).slice(0, 300)}`);
  await o.request('DELETE', `/v1/sessions/${s.id}`).catch(() => {});
  return ms;
}

export async function run({ quick = false, log = () => {} } = {}) {
  const why = tetherUnavailable();
  if (why) throw new Error(why);
  const rounds = quick ? 1 : 5;
  const workspaces = quick ? ['small'] : ['small', 'large'];
  const metrics = {};
  const ratios = [];
  const notes = [];
  const set = (k, value, unit, description) => { metrics[k] = { value: round(value, 1), unit, ...(description ? { description } : {}) }; };

  for (const pooled of [false, true]) {
    const o = await orchestrator(pooled ? POOL : 0);
    const tag = pooled ? 'pool' : 'no_pool';
    try {
      if (!pooled) {
        const cold = [];
        for (let i = 0; i < rounds; i++) cold.push(await coldOnce(o));
        set('cold_start_to_result_ms', median(cold), 'ms', 'POST /v1/sessions (no pool) -> first result, same orchestrator, same run (baseline)');
        const stopping = [];
        for (let i = 0; i < rounds; i++) stopping.push(await resumeWhileStoppingOnce(o));
        log(`no_pool: execute while stopping -> result ${stopping.map((x) => x.toFixed(0)).join(', ')} ms`);
        set('resume_while_stopping_no_pool_small_ms', median(stopping), 'ms', 'execute sent as the session starts stopping (snapshot in progress) -> first result, no pool, small workspace (median)');
      }
      for (const workspace of workspaces) {
        const samples = [];
        for (let i = 0; i < rounds; i++) {
          const r = await resumeOnce(o, workspace, pooled);
          samples.push(r);
          log(`${tag} ${workspace}: resume -> result ${r.ms.toFixed(0)} ms (restore ${r.restoreMs ?? '?'} ms, snapshot ${(r.snapshotBytes / 2 ** 20).toFixed(1)} MiB)`);
        }
        const key = `resume_${tag}_${workspace}`;
        const resumeMs = median(samples.map((s) => s.ms));
        const restoreMs = median(samples.map((s) => s.restoreMs ?? 0));
        set(`${key}_ms`, resumeMs, 'ms', `stopped session -> POST execute -> first result, ${pooled ? `TETHER_POOL_SIZE=${POOL} (full)` : 'no pool'}, ${workspace} workspace (median)`);
        set(`${key}_restore_ms`, restoreMs, 'ms', 'snapshot restore into the new worker, from the orchestrator log (median)');
        set(`${key}_snapshot_mib`, samples[0].snapshotBytes / 2 ** 20, 'MiB');
        const goal = pooled ? GOAL_POOL_MS + restoreMs : GOAL_NO_POOL_MS;
        ratios.push({
          metric: `${key}_ms`, value: metrics[`${key}_ms`].value, baseline: pooled ? 'goal_300_ms_plus_restore' : 'goal_1500_ms', baselineValue: round(goal, 1),
          ratio: round(resumeMs / goal, 3), goal: 1, grossLimit: null, met: resumeMs <= goal, gross: false,
        });
        if (!pooled) {
          ratios.push({
            metric: `${key}_ms`, value: metrics[`${key}_ms`].value, baseline: 'cold_start_to_result_ms', baselineValue: metrics.cold_start_to_result_ms.value,
            ratio: round(resumeMs / metrics.cold_start_to_result_ms.value, 3), goal: null, grossLimit: 5, met: null, gross: resumeMs / metrics.cold_start_to_result_ms.value > 5,
          });
        }
      }
    } finally {
      await o.close();
    }
  }
  notes.push(`${rounds} round(s) per cell; the pool is full before each pooled resume; store: ${process.env.TETHER_SNAPSHOT_STORE || 'local'}; gross gate: a resume without a pool over 5x a cold start`);
  return { metrics, baselines: { cold_start_to_result_ms: metrics.cold_start_to_result_ms?.value }, ratios, notes, config: { rounds, workspaces, pool: POOL } };
}
