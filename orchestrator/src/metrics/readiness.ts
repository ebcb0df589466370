import type { LauncherHealth } from "../launchers/launcher.js";

/** One condition of readiness, as `/readyz` shows it. */
export interface ReadinessCheck {
  ok: boolean;
  detail: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, ReadinessCheck>;
}

export interface ReadinessDeps {
  /** The server accepts connections. */
  listening(): boolean;
  /** The launcher's own check (an engine ping, an API call); undefined when it has none. */
  launcherHealth: (() => Promise<LauncherHealth>) | undefined;
  /** With the local launcher: the interpreter workers get (probed at start); undefined when not probed. Null: workers run their image's Python. */
  python: string | null | undefined;
  /** Default HEALTH_CACHE_MS. */
  healthCacheMs?: number;
  /** Default HEALTH_TIMEOUT_MS. */
  healthTimeoutMs?: number;
}

/**
 * A passed launcher check is reused this long: a probe storm must not become
 * an API storm. A failed one is not: recovery shows at the next probe (and a
 * failing engine answers fast; a hung one is bounded by the timeout).
 */
export const HEALTH_CACHE_MS = 2000;
/** A launcher that has not answered within this is not ready. */
export const HEALTH_TIMEOUT_MS = 3000;

/**
 * Whether this orchestrator can serve (`/readyz`), distinct from being alive
 * (`/healthz`): listening, its launcher reconciled at start and answering
 * now, a Python runtime found for local workers, and not shutting down. A
 * shared store will add its own check here when there is one.
 */
export class Readiness {
  private reconcile: ReadinessCheck = { ok: false, detail: "workers not reconciled yet (the orchestrator is starting)" };
  private closing = false;
  /** The check in flight (shared by concurrent probes), or the last one that passed. */
  private cached: { at: number | undefined; health: Promise<LauncherHealth> } | undefined;

  constructor(private readonly deps: ReadinessDeps) {}

  /** startOrchestrator reconciled the launcher's workers (or the launcher has nothing to reconcile). */
  reconciled(detail: string): void {
    this.reconcile = { ok: true, detail };
  }

  /** Shutdown began: load balancers should stop sending new work. */
  shuttingDown(): void {
    this.closing = true;
  }

  async report(): Promise<ReadinessReport> {
    const checks: Record<string, ReadinessCheck> = {
      shutdown: this.closing ? { ok: false, detail: "shutting down" } : { ok: true, detail: "running" },
      listening: this.deps.listening() ? { ok: true, detail: "accepting connections" } : { ok: false, detail: "not listening yet" },
      reconcile: this.reconcile,
    };
    if (this.deps.python !== null) {
      checks.python = this.deps.python ? { ok: true, detail: this.deps.python } : { ok: false, detail: "no Python runtime was probed for local workers" };
    }
    if (this.deps.launcherHealth) {
      const health = await this.launcherHealth(this.deps.launcherHealth);
      checks.launcher = health.ok ? { ok: true, detail: health.detail } : { ok: false, detail: health.reason };
    }
    return { ready: Object.values(checks).every((check) => check.ok), checks };
  }

  private launcherHealth(check: () => Promise<LauncherHealth>): Promise<LauncherHealth> {
    const cached = this.cached;
    if (cached && (cached.at === undefined || Date.now() - cached.at < (this.deps.healthCacheMs ?? HEALTH_CACHE_MS))) return cached.health;
    const timeoutMs = this.deps.healthTimeoutMs ?? HEALTH_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<LauncherHealth>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, reason: `the launcher did not answer its health check within ${timeoutMs} ms` }), timeoutMs);
      timer.unref();
    });
    const health = Promise.race([
      check().catch((error: unknown): LauncherHealth => ({ ok: false, reason: error instanceof Error ? error.message : String(error) })),
      timeout,
    ]).finally(() => clearTimeout(timer));
    const entry: { at: number | undefined; health: Promise<LauncherHealth> } = { at: undefined, health };
    this.cached = entry;
    void health.then((result) => {
      if (this.cached !== entry) return;
      if (result.ok) entry.at = Date.now();
      else this.cached = undefined;
    });
    return health;
  }
}
