// Scenario: what the agent adapters add over REST execute, for a trivial `x + 1`.
//
// Subjects, each with its own session (and kernel) on one orchestrator, interleaved in rounds:
//   tether_rest      POST /v1/sessions/:id/execute (baseline)
//   mcp_run_code     MCP tools/call run_code over Streamable HTTP (the SDK's Client: SSE response)
//   ds_code_execute  POST /dynamic-sessions/code/execute (2024-02-02-preview shape)
// One sample = request -> full answer. Ratios: median over rounds of (subject p50 / tether_rest p50);
// informational (no goal): the machine is shared.
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTether, tetherUnavailable } from '../lib/tether.mjs';
import { summarize, median, round } from '../lib/stats.mjs';

export const name = 'agent-adapters';

const DESCRIPTIONS = {
  tether_rest: 'REST POST /v1/sessions/:id/execute',
  mcp_run_code: 'MCP tools/call run_code (Streamable HTTP, SDK client)',
  ds_code_execute: 'dynamic sessions POST code/execute',
};

export async function run({ quick = false, log = () => {} } = {}) {
  const cfg = quick ? { rounds: 4, batch: 15, warmup: 5 } : { rounds: 8, batch: 30, warmup: 10 };
  const notes = [`${cfg.rounds} interleaved rounds x ${cfg.batch} samples per subject, ${cfg.warmup} warm-up calls per subject discarded`];
  const why = tetherUnavailable();
  if (why) return { metrics: {}, baselines: {}, ratios: [], notes: [...notes, `skipped: ${why}`] };
  const tether = await startTether({ log });
  let mcp;
  try {
    mcp = new Client({ name: 'bench', version: '1' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(`${tether.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${tether.key}` } } }));
    const mcpCall = async (code) => {
      const result = await mcp.callTool({ name: 'run_code', arguments: { code } });
      if (result.isError) throw new Error(`run_code: ${JSON.stringify(result)}`);
    };
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const dsCall = (code) => new Promise((resolve, reject) => {
      const payload = JSON.stringify({ properties: { codeInputType: 'inline', executionType: 'synchronous', code } });
      const req = http.request(`${tether.url}/dynamic-sessions/code/execute?identifier=bench&api-version=2024-02-02-preview`, {
        method: 'POST', agent, headers: { Authorization: `Bearer ${tether.key}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString());
          if (body.properties?.status !== 'Success') reject(new Error(`code/execute: ${JSON.stringify(body)}`));
          else resolve();
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
    const batchOf = (call) => async (n) => {
      const out = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await call('x + 1');
        out.push(performance.now() - t);
      }
      return out;
    };
    await mcpCall('x = 1');
    await dsCall('x = 1');
    const subjects = [
      { key: 'tether_rest', runBatch: (n) => tether.rest.runBatch(n) },
      { key: 'mcp_run_code', runBatch: batchOf(mcpCall) },
      { key: 'ds_code_execute', runBatch: batchOf(dsCall) },
    ];
    for (const s of subjects) await s.runBatch(cfg.warmup);

    const all = Object.fromEntries(subjects.map((s) => [s.key, []]));
    const perRound = Object.fromEntries(subjects.map((s) => [s.key, []]));
    for (let r = 0; r < cfg.rounds; r++) {
      for (const s of subjects.map((_, i) => subjects[(i + r) % subjects.length])) {
        const samples = await s.runBatch(cfg.batch);
        all[s.key].push(...samples);
        perRound[s.key].push(median(samples));
      }
      log(`round ${r + 1}/${cfg.rounds}: ${subjects.map((s) => `${s.key} ${perRound[s.key][r].toFixed(2)}`).join(', ')} (p50 ms)`);
    }
    agent.destroy();

    const metrics = {};
    for (const s of subjects) {
      const st = summarize(all[s.key]);
      metrics[`${s.key}_p50_ms`] = { value: round(st.p50, 3), unit: 'ms', description: `${DESCRIPTIONS[s.key]}: p50` };
      metrics[`${s.key}_p99_ms`] = { value: round(st.p99, 3), unit: 'ms', description: `${DESCRIPTIONS[s.key]}: p99` };
    }
    const ratios = subjects.filter((s) => s.key !== 'tether_rest').map((s) => ({
      metric: `${s.key}_p50_ms`,
      value: metrics[`${s.key}_p50_ms`].value,
      baseline: 'tether_rest_p50_ms',
      baselineValue: metrics.tether_rest_p50_ms.value,
      ratio: round(median(perRound[s.key].map((v, i) => v / perRound.tether_rest[i])), 3),
      goal: null, grossLimit: null, met: null, gross: false,
    }));
    return { metrics, baselines: { tether_rest_p50_ms: metrics.tether_rest_p50_ms.value }, ratios, notes, config: cfg };
  } finally {
    await mcp?.close().catch(() => {});
    await tether.stop();
  }
}
