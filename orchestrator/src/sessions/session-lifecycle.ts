import type { Logger } from "pino";
import type { SessionPhase, SessionStatus, SessionStopReason } from "@tether/shared";
import { ErrorCodes, TetherError } from "../errors.js";
import type { WorkerHandle } from "../workers/worker-handle.js";

/** Where a start (create or resume) is: a pool claim or start slot, the launch, the kernel, the restore. */
export type StartPhase = "queued" | "launching" | "connected" | "restoring";
export type StartKind = "create" | "resume";

/**
 * A session's life as one union: each state carries what only it has.
 *
 *   starting ─┬─> ready ⇄ busy ──┬─> stopped (worker lost) ─┐
 *             │     └─> stopping ─┴─> stopped (idle, lifetime)│
 *             ├─> failed (first start)       starting <──────┘ (resume)
 *             └─> stopped (resume failed)
 *   any state but deleted ─> deleted (terminal)
 */
export type LifecycleState =
  | { name: "starting"; kind: StartKind; phase: StartPhase; worker?: WorkerHandle }
  | { name: "ready"; worker: WorkerHandle }
  | { name: "busy"; worker: WorkerHandle }
  /** Scaling to zero: the workspace is being snapshotted and the worker stopped; `settled` resolves when done. */
  | { name: "stopping"; stop: SessionStopReason; settled: Promise<void> }
  /** Resumable: the next execute or file call starts a new worker. */
  | { name: "stopped"; stop: SessionStopReason }
  /** The first start failed: terminal but for delete. */
  | { name: "failed"; failure: { code: string; message: string } }
  /** Deleted by its owner (or the orchestrator shutting down): terminal. */
  | { name: "deleted"; reason: string };

export type LifecycleStateName = LifecycleState["name"];

/** Every legal move; starting → starting records progress (phase, worker). */
const TRANSITIONS: Readonly<Record<LifecycleStateName, readonly LifecycleStateName[]>> = {
  starting: ["starting", "ready", "failed", "stopped", "deleted"],
  ready: ["busy", "stopping", "stopped", "deleted"],
  busy: ["ready", "stopped", "deleted"],
  stopping: ["stopped", "deleted"],
  stopped: ["starting", "deleted"],
  failed: ["deleted"],
  deleted: [],
};

/** A move the transition table does not allow: a bug in the session core, never the client's fault. */
export class IllegalTransitionError extends TetherError {
  constructor(
    readonly from: LifecycleStateName,
    readonly to: LifecycleStateName,
  ) {
    super(ErrorCodes.INTERNAL, `Illegal session transition ${from} -> ${to}.`, { statusCode: 500 });
    this.name = "IllegalTransitionError";
  }
}

export function isLegalTransition(from: LifecycleStateName, to: LifecycleStateName): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The client-visible status of a state (a deleted session reads as stopped). */
export function statusOf(state: LifecycleState): SessionStatus {
  switch (state.name) {
    case "starting":
    case "ready":
    case "busy":
    case "failed":
      return state.name;
    case "stopping":
    case "stopped":
    case "deleted":
      return "stopped";
    default: {
      const unreachable: never = state;
      return unreachable;
    }
  }
}

/** The client-visible phase of a state. */
export function phaseOf(state: LifecycleState): SessionPhase {
  switch (state.name) {
    case "starting":
      return state.phase;
    case "ready":
    case "busy":
      return "ready";
    case "stopping":
    case "stopped":
    case "failed":
      return state.name;
    case "deleted":
      return "stopped";
    default: {
      const unreachable: never = state;
      return unreachable;
    }
  }
}

/** Holds the state, checks every move against the table, logs it, and tells the session. */
export class SessionLifecycle {
  private state: LifecycleState;

  constructor(
    initial: LifecycleState,
    private readonly logger: Logger,
    private readonly onChange: (from: LifecycleState, to: LifecycleState, reason: string | undefined) => void,
  ) {
    this.state = initial;
  }

  get current(): LifecycleState {
    return this.state;
  }

  get name(): LifecycleStateName {
    return this.state.name;
  }

  /** The worker serving the session (ready or busy), or starting for it. */
  get worker(): WorkerHandle | undefined {
    const state = this.state;
    return state.name === "ready" || state.name === "busy" || state.name === "starting" ? state.worker : undefined;
  }

  /** The worker serving the session right now (ready or busy). */
  get servingWorker(): WorkerHandle | undefined {
    const state = this.state;
    return state.name === "ready" || state.name === "busy" ? state.worker : undefined;
  }

  /**
   * Takes the state another replica left the session in (a takeover), with
   * no notice: its clients saw that state already. Only on a fresh session.
   */
  adopt(state: LifecycleState): void {
    if (this.state.name !== "starting" || this.state.worker) throw new IllegalTransitionError(this.state.name, state.name);
    this.state = state;
    this.logger.info({ state: describe(state) }, "session adopted from another replica");
  }

  /** Moves to `next`; throws IllegalTransitionError for a move the table forbids. */
  to(next: LifecycleState, reason?: string): void {
    const from = this.state;
    if (!isLegalTransition(from.name, next.name)) throw new IllegalTransitionError(from.name, next.name);
    this.state = next;
    // ready ⇄ busy happens per execution: keep it out of info logs.
    const routine = (from.name === "ready" && next.name === "busy") || (from.name === "busy" && next.name === "ready") || describe(from) === describe(next);
    this.logger[routine ? "debug" : "info"]({ from: describe(from), to: describe(next), ...(reason ? { reason } : {}) }, "session state changed");
    this.onChange(from, next, reason);
  }
}

function describe(state: LifecycleState): string {
  return state.name === "starting" ? `starting(${state.kind}:${state.phase})` : state.name;
}
