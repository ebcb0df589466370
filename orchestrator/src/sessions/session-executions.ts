import type { Logger } from "pino";
import type { SessionStopReason } from "@tether/shared";
import type { WorkerHandle } from "../workers/worker-handle.js";
import type { Execution, ExecutionQueue, ExecutionRequest, ExecutionSink } from "./execution-queue.js";
import type { SessionClocks } from "./session-clocks.js";
import { assertKernelText, sessionErrors, textFieldsOf } from "./session-errors.js";
import type { SessionEvents } from "./session-events.js";
import type { SessionLifecycle } from "./session-lifecycle.js";
import type { SessionReplication } from "./session-replication.js";

const CALL_TIMEOUT_MS = 30_000;
const RESTART_TIMEOUT_MS = 120_000;

/** The parts of a session every piece of it works with. */
export interface SessionParts {
  id: string;
  logger: Logger;
  lifecycle: SessionLifecycle;
  queue: ExecutionQueue;
  events: SessionEvents;
  clocks: SessionClocks;
}

/** What running code needs of its session. */
export interface SessionExecutionsDeps extends SessionParts {
  /** Longest one worker serves the session; past it the session scales to zero between executions. */
  maxLifetimeMs: number;
  /** The cluster layer, once the session reports to one. */
  replication(): SessionReplication | undefined;
  /** Throws once the session is deleted or failed. */
  assertNotEnded(): void;
  /** The serving worker, connected; throws otherwise. */
  servingNow(): WorkerHandle;
  /** Resolves once a worker serves the session, resuming it when stopped. */
  wake(): Promise<void>;
  /** Activity: pushes the idle clock back. */
  touch(): void;
  /** The session was last active now (without arming the idle clock: the next execution may be about to run). */
  active(): void;
  /** Arms the idle clock when the session is ready with nothing to do. */
  armIdle(): void;
  /** Snapshots the workspace and stops the worker, when the session is ready and nothing runs. */
  suspend(kind: SessionStopReason["kind"], message: string): void;
}

/**
 * Running code on a session: its entry points (execute, input replies,
 * interrupt, restart; the Session methods of the same names delegate here
 * and document the contracts) and the pump that hands queued executions to
 * the serving worker, one at a time.
 */
export class SessionExecutions {
  /** Set by a resume, taken by the first execution that runs after it. */
  private resumeNotice: { restoredFiles: number } | undefined;

  constructor(private readonly deps: SessionExecutionsDeps) {}

  assertNewRequestId(requestId: string): void {
    const known = this.deps.events.records.get(requestId);
    if (known !== undefined && known !== "expired") throw sessionErrors.requestIdTaken(this.deps.id, requestId, known.view().status);
  }

  execute(request: ExecutionRequest, sink: ExecutionSink | undefined): void {
    const { lifecycle, queue } = this.deps;
    this.deps.assertNotEnded();
    assertKernelText(textFieldsOf(request));
    const execution = queue.add(request, sink);
    this.deps.events.records.create(request.requestId);
    this.deps.replication()?.execution(request, "queued");
    this.deps.touch();
    const state = lifecycle.name;
    if (queue.running || (state !== "ready" && state !== "busy")) {
      queue.emit(execution, { type: "status", requestId: request.requestId, state: "queued" }, undefined);
    }
    // A failed resume ends the queued executions itself.
    if (state === "stopped" || state === "stopping") this.deps.wake().catch(() => undefined);
    this.pump();
  }

  inputReply(requestId: string, value: string): void {
    assertKernelText([["value", value]]);
    this.deps.queue.takeInputReply(requestId);
    this.deps.lifecycle.worker?.send({ type: "input_reply", requestId, value });
  }

  async interrupt(requestId?: string): Promise<void> {
    const { lifecycle, queue } = this.deps;
    this.deps.assertNotEnded();
    if (requestId !== undefined && !queue.interruptTarget(requestId)) return;
    if (lifecycle.name === "stopped" || lifecycle.name === "stopping") return;
    await this.deps.servingNow().call("interrupt", {}, CALL_TIMEOUT_MS);
  }

  async restart(): Promise<void> {
    const { lifecycle } = this.deps;
    this.deps.assertNotEnded();
    if (lifecycle.name === "stopped" || lifecycle.name === "stopping") return;
    const worker = this.deps.servingNow();
    this.deps.logger.info("restarting the kernel on request");
    await worker.call("restart", {}, RESTART_TIMEOUT_MS);
  }

  /** A resume's worker serves the session: the first execution it runs tells its clients so. */
  resumed(restoredFiles: number): void {
    this.resumeNotice = { restoredFiles };
  }

  /** Sends the next queued execution when the session serves and nothing runs; at max lifetime the session stops instead. */
  pump(): void {
    const { lifecycle, queue, clocks, events } = this.deps;
    const state = lifecycle.current;
    if (queue.running || (state.name !== "ready" && state.name !== "busy")) return;
    if (clocks.lifetimeExpired) {
      this.deps.suspend("max_lifetime", `The worker reached TETHER_MAX_SESSION_LIFETIME_S (${Math.round(this.deps.maxLifetimeMs / 1000)} s).`);
      return;
    }
    const worker = state.worker;
    // A closed worker is about to stop the session, which ends the queue.
    if (!worker.serving) return;
    queue.startNext((next) => {
      clocks.clearIdle();
      if (state.name === "ready") lifecycle.to({ name: "busy", worker });
      events.started(next);
      if (this.resumeNotice) events.resumedBy(next, this.resumeNotice.restoredFiles);
      this.resumeNotice = undefined;
      this.deps.replication()?.execution(next, "running");
      worker.send({ type: "execute", requestId: next.requestId, code: next.code, timeoutMs: next.timeoutMs, stdin: next.stdin });
    });
  }

  /** An execution ended (its done has gone out): busy turns ready, and the next one goes out. */
  ended(execution: Execution): void {
    this.deps.replication()?.execution(execution, "ended");
    this.deps.active();
    const state = this.deps.lifecycle.current;
    if (state.name === "busy" && !this.deps.queue.running) this.deps.lifecycle.to({ name: "ready", worker: state.worker });
    this.pump();
    this.deps.armIdle();
  }
}
