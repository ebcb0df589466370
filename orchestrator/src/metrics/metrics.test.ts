import { describe, expect, it } from "vitest";
import { parsePrometheus, sampleValue, type Sample } from "../../../test/helpers/prometheus.js";
import { ErrorCodes } from "../errors.js";
import type { LauncherHealth } from "../launchers/launcher.js";
import { OrchestratorMetrics, startOutcome } from "./orchestrator-metrics.js";
import { Readiness } from "./readiness.js";

async function scrape(metrics: OrchestratorMetrics): Promise<Sample[]> {
  return parsePrometheus((await metrics.scrape()).body);
}

describe("OrchestratorMetrics", () => {
  it("reads sessions and the pool from their sources at each scrape, every status included, with the launcher label", async () => {
    let counts = new Map([["ready", 2], ["busy", 1]]);
    const metrics = new OrchestratorMetrics({ launcher: "docker", sessionsByStatus: () => counts, pool: () => ({ target: 3, ready: 2, starting: 1 }) });
    let scraped = await scrape(metrics);
    const docker = { launcher: "docker" };
    expect(sampleValue(scraped, "tether_sessions", { ...docker, status: "ready" })).toBe(2);
    expect(sampleValue(scraped, "tether_sessions", { ...docker, status: "busy" })).toBe(1);
    expect(sampleValue(scraped, "tether_sessions", { ...docker, status: "starting" })).toBe(0);
    expect(sampleValue(scraped, "tether_sessions", { ...docker, status: "failed" })).toBe(0);
    expect(sampleValue(scraped, "tether_pool_workers", { ...docker, state: "ready" })).toBe(2);
    expect(sampleValue(scraped, "tether_pool_workers", { ...docker, state: "starting" })).toBe(1);
    expect(sampleValue(scraped, "tether_pool_target", docker)).toBe(3);
    counts = new Map([["stopped", 5]]);
    scraped = await scrape(metrics);
    expect(sampleValue(scraped, "tether_sessions", { status: "ready" })).toBe(0);
    expect(sampleValue(scraped, "tether_sessions", { status: "stopped" })).toBe(5);
  });

  it("counts what the hooks report: starts by outcome with durations, losses, executions, transitions, relayed frames, slow clients", async () => {
    const metrics = new OrchestratorMetrics({ launcher: "local", sessionsByStatus: () => new Map(), pool: () => undefined });
    metrics.workerStartEnded({ profile: "default", pooled: false, durationMs: 1500 });
    metrics.workerStartEnded({ profile: "gpu", pooled: false, durationMs: 60_000, failureCode: ErrorCodes.SESSION_START_TIMEOUT });
    metrics.workerStartEnded({ profile: "default", pooled: true, durationMs: 300 });
    metrics.workerLost();
    metrics.executionFinished("ok", 12);
    metrics.executionFinished("ok", 40);
    metrics.executionFinished("cancelled", undefined);
    metrics.sessionTransition("ready", "busy");
    metrics.sessionTransition("starting", "starting");
    metrics.clientFrameSent(100);
    metrics.clientFrameSent(23);
    metrics.slowClientDisconnected();
    const scraped = await scrape(metrics);
    const session = { launcher: "local", profile: "default", purpose: "session", outcome: "ready" };
    expect(sampleValue(scraped, "tether_worker_starts_total", session)).toBe(1);
    expect(sampleValue(scraped, "tether_worker_starts_total", { profile: "gpu", purpose: "session", outcome: "timeout" })).toBe(1);
    expect(sampleValue(scraped, "tether_worker_starts_total", { profile: "default", purpose: "pool", outcome: "ready" })).toBe(1);
    expect(sampleValue(scraped, "tether_worker_start_duration_seconds_count", session)).toBe(1);
    expect(sampleValue(scraped, "tether_worker_start_duration_seconds_sum", session)).toBe(1.5);
    expect(sampleValue(scraped, "tether_worker_start_duration_seconds_bucket", { ...session, le: "1" })).toBe(0);
    expect(sampleValue(scraped, "tether_worker_start_duration_seconds_bucket", { ...session, le: "2" })).toBe(1);
    expect(sampleValue(scraped, "tether_worker_losses_total", { launcher: "local" })).toBe(1);
    expect(sampleValue(scraped, "tether_executions_total", { status: "ok" })).toBe(2);
    expect(sampleValue(scraped, "tether_executions_total", { status: "cancelled" })).toBe(1);
    expect(sampleValue(scraped, "tether_execution_duration_seconds_count", { status: "ok" })).toBe(2);
    // An execution that never ran has no duration to observe.
    expect(sampleValue(scraped, "tether_execution_duration_seconds_count", { status: "cancelled" })).toBeUndefined();
    expect(sampleValue(scraped, "tether_session_transitions_total", { from: "ready", to: "busy" })).toBe(1);
    expect(sampleValue(scraped, "tether_session_transitions_total", { from: "starting", to: "starting" })).toBeUndefined();
    expect(sampleValue(scraped, "tether_client_bytes_sent_total")).toBe(123);
    expect(sampleValue(scraped, "tether_client_frames_sent_total")).toBe(2);
    expect(sampleValue(scraped, "tether_slow_client_disconnects_total")).toBe(1);
    // Counters never go down between scrapes.
    metrics.clientFrameSent(7);
    expect(sampleValue(await scrape(metrics), "tether_client_bytes_sent_total")).toBe(130);
  });

  it("labels start outcomes by failure code", () => {
    expect(startOutcome(undefined)).toBe("ready");
    expect(startOutcome(ErrorCodes.SESSION_START_TIMEOUT)).toBe("timeout");
    expect(startOutcome(ErrorCodes.SESSION_STOPPED)).toBe("cancelled");
    expect(startOutcome(ErrorCodes.LAUNCH_QUOTA)).toBe("failed");
  });

  it("keeps two orchestrators' metrics apart (no global registry)", async () => {
    const a = new OrchestratorMetrics({ launcher: "local", sessionsByStatus: () => new Map(), pool: () => undefined });
    const b = new OrchestratorMetrics({ launcher: "local", sessionsByStatus: () => new Map(), pool: () => undefined });
    a.workerLost();
    expect(sampleValue(await scrape(b), "tether_worker_losses_total")).toBe(0);
    expect(sampleValue(await scrape(a), "tether_worker_losses_total")).toBe(1);
  });
});

describe("Readiness", () => {
  function readiness(health: (() => Promise<LauncherHealth>) | undefined, overrides: { listening?: boolean; python?: string | null } = {}) {
    return new Readiness({ listening: () => overrides.listening ?? true, launcherHealth: health, python: "python" in overrides ? overrides.python : "/usr/bin/python3", healthCacheMs: 60_000, healthTimeoutMs: 100 });
  }

  it("is ready only once reconciled, listening, with a Python runtime and a healthy launcher, and not while shutting down", async () => {
    const ready = readiness(async () => ({ ok: true, detail: "engine answers" }));
    expect((await ready.report()).ready).toBe(false);
    expect((await ready.report()).checks.reconcile?.ok).toBe(false);
    ready.reconciled("nothing to reconcile");
    const report = await ready.report();
    expect(report).toEqual({
      ready: true,
      checks: {
        shutdown: { ok: true, detail: "running" },
        listening: { ok: true, detail: "accepting connections" },
        reconcile: { ok: true, detail: "nothing to reconcile" },
        python: { ok: true, detail: "/usr/bin/python3" },
        launcher: { ok: true, detail: "engine answers" },
      },
    });
    ready.shuttingDown();
    expect(await ready.report()).toMatchObject({ ready: false, checks: { shutdown: { ok: false } } });

    const noPython = readiness(undefined, { python: undefined });
    noPython.reconciled("x");
    expect(await noPython.report()).toMatchObject({ ready: false, checks: { python: { ok: false } } });
    const notListening = readiness(undefined, { listening: false, python: null });
    notListening.reconciled("x");
    const notListeningReport = await notListening.report();
    expect(notListeningReport).toMatchObject({ ready: false, checks: { listening: { ok: false } } });
    expect(notListeningReport.checks.python).toBeUndefined();
  });

  it("is not ready while the launcher fails, rejects or hangs, sees recovery at once and reuses a passed check", async () => {
    let answer: LauncherHealth | "reject" | "hang" = { ok: false, reason: "no Docker engine answers" };
    let calls = 0;
    const ready = readiness(() => {
      calls += 1;
      if (answer === "reject") return Promise.reject(new Error("socket closed"));
      if (answer === "hang") return new Promise<LauncherHealth>(() => undefined);
      return Promise.resolve(answer);
    });
    ready.reconciled("x");
    expect((await ready.report()).checks.launcher).toEqual({ ok: false, detail: "no Docker engine answers" });
    answer = "reject";
    expect((await ready.report()).checks.launcher).toEqual({ ok: false, detail: "socket closed" });
    answer = "hang";
    expect((await ready.report()).checks.launcher).toEqual({ ok: false, detail: "the launcher did not answer its health check within 100 ms" });
    answer = { ok: true, detail: "fine" };
    expect((await ready.report()).ready).toBe(true);
    const before = calls;
    answer = { ok: false, reason: "gone" };
    // Passed checks are reused within the cache time; concurrent probes share one call.
    await Promise.all([ready.report(), ready.report()]);
    expect(calls).toBe(before);
  });
});
