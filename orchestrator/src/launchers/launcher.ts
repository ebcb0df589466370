import type { WorkerProfile } from "../config-profiles.js";

/**
 * Starts workers. A launch is one worker process (local) or one job execution
 * (cloud); the worker dials back with the join token, so the launcher never
 * needs an address for it.
 */
export interface LaunchRequest {
  launchId: string;
  /** The session the worker is launched for; null for a warm-pool worker (bound when claimed). */
  sessionId: string | null;
  /** Full websocket URL of the worker gateway (`.../v1/workers/connect`). */
  orchestratorUrl: string;
  /** Single-use; ends up in the worker's environment only. */
  joinToken: string;
  /** Extra environment for the worker (TETHER_PYTHON, TETHER_LOG_LEVEL, ..., the profile's `env` already merged in). */
  env: Readonly<Record<string, string>>;
  /**
   * The worker profile (TETHER_PROFILES) the launch is for; absent means
   * `default`. Each launcher applies the fields it supports over its own
   * settings (PROFILE_FIELDS_BY_LAUNCHER; config refuses the others).
   */
  profile?: WorkerProfile;
}

export interface LaunchExit {
  /** Process exit code, or the job's, when known. */
  code: number | null;
  signal: string | null;
  /** One readable line: why it ended. */
  reason: string;
  /** The last lines the worker wrote to stderr, for failure reasons. */
  stderrTail: readonly string[];
}

export interface LaunchHandle {
  readonly launchId: string;
  /** Settles once the worker is gone, however it ended. Never rejects. */
  readonly exited: Promise<LaunchExit>;
  /** Ends the worker and everything it started; resolves once they are gone. Idempotent. */
  stop(reason: string): Promise<void>;
  /**
   * The worker dialed back with this launch's token. A cloud launcher watches
   * its job only until then (from here on the connection tells the session
   * when the worker is gone); optional, launchers that see their process exit need not care.
   */
  joined?(): void;
  /**
   * Stops watching the worker without stopping it: it was handed to another
   * orchestrator replica, which ends it over its link. Optional: cloud
   * launchers stopped watching at `joined` already.
   */
  release?(): void;
}

export interface Launcher {
  readonly kind: string;
  launch(request: LaunchRequest): Promise<LaunchHandle>;
  /** Stops every launch still running (orchestrator shutdown). */
  stopAll(): Promise<void>;
  /**
   * Orchestrator start, before it listens: stops the launcher's workers that
   * no live session owns (left behind by a crashed or killed orchestrator).
   * Optional: a local launcher's workers die with their process group.
   */
  reconcile?(): Promise<ReconcileResult>;
  /**
   * Whether the launcher can launch right now (its engine or API answers),
   * for `/readyz`. Optional: a local launcher has nothing to ask. Never rejects.
   */
  health?(): Promise<LauncherHealth>;
}

export type LauncherHealth = { ok: true; detail: string } | { ok: false; reason: string };

export interface ReconcileResult {
  /** Names of the orphaned launches (job executions) that were stopped. */
  stopped: readonly string[];
}
