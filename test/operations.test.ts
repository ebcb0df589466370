import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import type { LaunchHandle, Launcher, LauncherHealth } from "../orchestrator/src/launchers/launcher.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { parsePrometheus, sampleValue, type Sample } from "./helpers/prometheus.js";
import { expectStatus, type RestClient } from "./helpers/rest.js";
import { StreamClient } from "./helpers/ws.js";
import { waitForPool } from "./helpers/pool.js";

interface Readyz {
  status: "ready" | "not_ready";
  reasons: string[];
  checks: Record<string, { ok: boolean; detail: string }>;
}

async function scrape(client: RestClient): Promise<Sample[]> {
  // From this process, over loopback: /metrics needs no token then.
  const res = await client.request("GET", "/metrics", { auth: false });
  expect(res.status, res.text()).toBe(200);
  return parsePrometheus(res.text());
}

/** A launcher that launches nothing and whose health the test sets. */
class HealthSwitchLauncher implements Launcher {
  readonly kind = "switch";
  answer: LauncherHealth = { ok: false, reason: "the engine is down (test)" };
  async launch(): Promise<LaunchHandle> {
    throw new Error("this launcher launches nothing");
  }
  async stopAll(): Promise<void> {}
  async health(): Promise<LauncherHealth> {
    return this.answer;
  }
}

describe("operations: profiles, /metrics and /readyz on a real orchestrator", () => {
  let orchestrator: TestOrchestrator | undefined;
  afterEach(async () => {
    await orchestrator?.close();
    orchestrator = undefined;
  });

  it("counts a real run in /metrics: sessions by status, executions by status, start durations; a non-default profile starts cold with its env while default claims the pool", async () => {
    orchestrator = await startTestOrchestrator({ TETHER_POOL_SIZE: "1", TETHER_PROFILES: JSON.stringify({ marked: { env: { PROFILE_MARK: "marked" } } }) });
    const { alice } = orchestrator;
    await waitForPool(alice, (pool) => pool.ready === 1);
    const ready = await alice.request("GET", "/readyz", { auth: false });
    expect(ready.status).toBe(200);
    expect(ready.json<Readyz>()).toMatchObject({ status: "ready", reasons: [], checks: { listening: { ok: true }, reconcile: { ok: true }, python: { ok: true, detail: expect.stringContaining("python") } } });

    const unknown = await alice.request("POST", "/v1/sessions", { json: { profile: "gpu" } });
    expect([unknown.status, unknown.errorCode()]).toEqual([400, ErrorCodes.PROFILE_UNKNOWN]);
    expect(unknown.json<{ error: { message: string; hint: string } }>().error.message).toContain("available: default, marked");

    const marked = expectStatus<SessionInfo>(await alice.request("POST", "/v1/sessions", { json: { profile: "marked" } }), 201, "POST /v1/sessions (marked)");
    expect(marked.profile).toBe("marked");
    // Not from the pool: its worker still waits there.
    expect(await waitForPool(alice, () => true)).toMatchObject({ ready: 1 });
    expect((await alice.execute(marked.id, { code: "import os\nprint(os.environ.get('PROFILE_MARK'))" })).stdout).toBe("marked\n");
    expect((await alice.execute(marked.id, { code: "1/0" })).status).toBe("error");
    const stream = await StreamClient.open(orchestrator.url, marked.id, orchestrator.keys.alice);
    try {
      expect((await stream.run("ws-1", "print('x' * 1000)")).done.status).toBe("ok");
    } finally {
      await stream.close();
    }

    let metrics = await scrape(alice);
    const local = { launcher: "local" };
    expect(sampleValue(metrics, "tether_sessions", { ...local, status: "ready" })).toBe(1);
    expect(sampleValue(metrics, "tether_sessions", { ...local, status: "starting" })).toBe(0);
    expect(sampleValue(metrics, "tether_executions_total", { ...local, status: "ok" })).toBe(2);
    expect(sampleValue(metrics, "tether_executions_total", { ...local, status: "error" })).toBe(1);
    expect(sampleValue(metrics, "tether_execution_duration_seconds_count", { status: "ok" })).toBe(2);
    const markedStart = { profile: "marked", purpose: "session", outcome: "ready" };
    expect(sampleValue(metrics, "tether_worker_starts_total", markedStart)).toBe(1);
    expect(sampleValue(metrics, "tether_worker_start_duration_seconds_count", markedStart)).toBe(1);
    expect(sampleValue(metrics, "tether_worker_start_duration_seconds_sum", markedStart)).toBeGreaterThan(0);
    expect(sampleValue(metrics, "tether_worker_start_duration_seconds_count", { profile: "default", purpose: "pool", outcome: "ready" })).toBe(1);
    expect(sampleValue(metrics, "tether_pool_workers", { state: "ready" })).toBe(1);
    expect(sampleValue(metrics, "tether_pool_target")).toBe(1);
    expect(sampleValue(metrics, "tether_session_transitions_total", { from: "ready", to: "busy" })).toBe(3);
    // The websocket execution's frames, 1000 x's among them.
    expect(sampleValue(metrics, "tether_client_bytes_sent_total")).toBeGreaterThan(1000);
    expect(sampleValue(metrics, "tether_client_frames_sent_total")).toBeGreaterThanOrEqual(2);
    expect(sampleValue(metrics, "tether_worker_losses_total")).toBe(0);

    await alice.deleteSession(marked.id);
    // A default session claims the pooled worker: no session start of its own.
    const plain = await alice.createSession();
    expect(plain.profile).toBe("default");
    metrics = await scrape(alice);
    expect(sampleValue(metrics, "tether_worker_starts_total", { profile: "default", purpose: "session" })).toBeUndefined();
    expect(sampleValue(metrics, "tether_sessions", { status: "ready" })).toBe(1);
    expect(sampleValue(metrics, "tether_session_transitions_total", { from: "ready", to: "deleted" })).toBe(1);
    expect(sampleValue(metrics, "tether_executions_total", { status: "ok" })).toBe(2);
  });

  it("answers /readyz 503 with the launcher's reason while its health check fails, and 200 once it passes; /healthz stays 200", async () => {
    const launcher = new HealthSwitchLauncher();
    orchestrator = await startTestOrchestrator({}, () => ({ launcher: () => launcher }));
    const { alice } = orchestrator;
    const down = await alice.request("GET", "/readyz", { auth: false });
    expect(down.status).toBe(503);
    expect(down.json<Readyz>()).toMatchObject({ status: "not_ready", reasons: ["launcher: the engine is down (test)"], checks: { listening: { ok: true }, reconcile: { ok: true } } });
    expect((await alice.request("GET", "/healthz", { auth: false })).status).toBe(200);
    launcher.answer = { ok: true, detail: "the engine answers (test)" };
    const up = await alice.request("GET", "/readyz", { auth: false });
    expect(up.status).toBe(200);
    expect(up.json<Readyz>().checks.launcher).toEqual({ ok: true, detail: "the engine answers (test)" });
  });
});
