import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { ErrorCodes } from "../errors.js";
import type { MetricsHooks, WorkerStartReport } from "./hooks.js";

/** What the metrics read at each scrape instead of counting: the session registry and the warm pool. */
export interface MetricsSources {
  /** TETHER_LAUNCHER (or the replacing launcher's kind): a label on every series. */
  launcher: string;
  /** Sessions per client-visible status, right now. */
  sessionsByStatus(): ReadonlyMap<string, number>;
  /** The warm pool right now; undefined without one. */
  pool(): { target: number; ready: number; starting: number } | undefined;
  /** Also export Node's process metrics (CPU, memory, event loop lag, GC). They install process-wide observers: one app per process only. */
  processMetrics?: boolean;
}

/** Every status `/metrics` reports, 0 included, so a dashboard sees a series before the first session. */
const SESSION_STATUSES = ["starting", "ready", "busy", "stopped", "failed"] as const;
const START_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300];
const EXECUTION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** A start's outcome label: the failure codes an operator tells apart, everything else `failed`. */
export function startOutcome(failureCode: string | undefined): "ready" | "timeout" | "cancelled" | "failed" {
  if (failureCode === undefined) return "ready";
  if (failureCode === ErrorCodes.SESSION_START_TIMEOUT) return "timeout";
  if (failureCode === ErrorCodes.SESSION_STOPPED) return "cancelled";
  return "failed";
}

/**
 * One orchestrator's metrics, in its own prom-client registry (never the
 * global one: tests run several orchestrators in one process). Hooks bump
 * counters; gauges of state (sessions, pool) are read from their sources at
 * scrape time, so they cannot drift from what the registry holds.
 */
export class OrchestratorMetrics implements MetricsHooks {
  readonly registry = new Registry();
  private readonly workerStarts: Counter<"profile" | "purpose" | "outcome">;
  private readonly workerStartSeconds: Histogram<"profile" | "purpose" | "outcome">;
  private readonly workerLosses: Counter;
  private readonly executions: Counter<"status">;
  private readonly executionSeconds: Histogram<"status">;
  private readonly transitions: Counter<"from" | "to">;
  private readonly slowClients: Counter;
  // The relay is the hot path (about 100k frames/s): plain additions there, copied into the counters at scrape.
  private clientBytes = 0;
  private clientFrames = 0;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ launcher: sources.launcher });
    this.workerStarts = new Counter({ name: "tether_worker_starts_total", help: "Worker starts that ended, by profile, purpose (session or pool) and outcome (ready, failed, timeout, cancelled).", labelNames: ["profile", "purpose", "outcome"], registers });
    this.workerStartSeconds = new Histogram({ name: "tether_worker_start_duration_seconds", help: "From the launcher call to the worker's kernel ready (or to the failure).", labelNames: ["profile", "purpose", "outcome"], buckets: START_BUCKETS_S, registers });
    this.workerLosses = new Counter({ name: "tether_worker_losses_total", help: "Ready workers that went away unasked (socket lost past the resume hold, process or container ended, worker_failed), pooled ones included.", registers });
    this.executions = new Counter({ name: "tether_executions_total", help: "Executions ended, by done status.", labelNames: ["status"], registers });
    this.executionSeconds = new Histogram({ name: "tether_execution_duration_seconds", help: "From sending an execution to its worker to its done, by status (executions that never ran are not observed).", labelNames: ["status"], buckets: EXECUTION_BUCKETS_S, registers });
    this.transitions = new Counter({ name: "tether_session_transitions_total", help: "Session lifecycle transitions, by from and to state.", labelNames: ["from", "to"], registers });
    this.slowClients = new Counter({ name: "tether_slow_client_disconnects_total", help: "Websocket clients disconnected (1013) for not reading within TETHER_SLOW_CLIENT_TIMEOUT_MS.", registers });
    const relayed = { bytes: () => this.clientBytes, frames: () => this.clientFrames };
    new Counter({
      name: "tether_client_bytes_sent_total",
      help: "Bytes of websocket frames relayed to clients.",
      registers,
      collect() {
        this.reset();
        this.inc(relayed.bytes());
      },
    });
    new Counter({
      name: "tether_client_frames_sent_total",
      help: "Websocket frames relayed to clients.",
      registers,
      collect() {
        this.reset();
        this.inc(relayed.frames());
      },
    });
    new Gauge({
      name: "tether_sessions",
      help: "Sessions held by this orchestrator, by status.",
      labelNames: ["status"],
      registers,
      collect() {
        const counts = sources.sessionsByStatus();
        for (const status of SESSION_STATUSES) this.set({ status }, counts.get(status) ?? 0);
      },
    });
    new Gauge({
      name: "tether_pool_workers",
      help: "Unclaimed warm-pool workers, by state (ready, starting).",
      labelNames: ["state"],
      registers,
      collect() {
        const pool = sources.pool();
        this.set({ state: "ready" }, pool?.ready ?? 0);
        this.set({ state: "starting" }, pool?.starting ?? 0);
      },
    });
    new Gauge({
      name: "tether_pool_target",
      help: "TETHER_POOL_SIZE.",
      registers,
      collect() {
        this.set(sources.pool()?.target ?? 0);
      },
    });
    if (sources.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** The Prometheus text exposition of every metric. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  workerStartEnded(start: WorkerStartReport): void {
    const labels = { profile: start.profile, purpose: start.pooled ? "pool" : "session", outcome: startOutcome(start.failureCode) };
    this.workerStarts.inc(labels);
    this.workerStartSeconds.observe(labels, start.durationMs / 1000);
  }

  workerLost(): void {
    this.workerLosses.inc();
  }

  executionFinished(status: string, durationMs: number | undefined): void {
    this.executions.inc({ status });
    if (durationMs !== undefined) this.executionSeconds.observe({ status }, durationMs / 1000);
  }

  sessionTransition(from: string, to: string): void {
    // starting -> starting records start progress (phase, worker): not a move.
    if (from !== to) this.transitions.inc({ from, to });
  }

  clientFrameSent(bytes: number): void {
    this.clientBytes += bytes;
    this.clientFrames += 1;
  }

  slowClientDisconnected(): void {
    this.slowClients.inc();
  }
}
