import type { Logger } from "pino";
import type { DoneEvent, ExecutionEvent, ExecutionStatus, SessionResumed, StdinMode } from "@tether/shared";
import { ErrorCodes, tetherError } from "../errors.js";
import type { MetricsHooks } from "../metrics/hooks.js";
import { PausableTimer } from "./pausable-timer.js";

export interface ExecutionRequest {
  requestId: string;
  code: string;
  timeoutMs: number;
  stdin: StdinMode;
}

/** Where one execution's events go besides the session's observers: the REST fold. */
export interface ExecutionSink {
  /** `raw` is the worker's frame when there is one (relay it as is); undefined for events the orchestrator made. */
  deliver(event: ExecutionEvent, raw: Uint8Array | undefined): void;
  /** This execution resumed a stopped session on a new worker; comes before its other events. */
  resumed?(notice: SessionResumed): void;
}

export interface Execution extends ExecutionRequest {
  readonly sink: ExecutionSink | undefined;
  waitingForInput: boolean;
  startedAt: number | undefined;
  /** Runs on a worker that resumed the session: its done says stateLost. */
  resumed: boolean;
  backstop: PausableTimer | undefined;
}

export interface ExecutionQueueOptions {
  logger: Logger;
  interruptGraceMs: number;
  /** Every event of every execution, after its own sink: the session's observers. */
  publish(event: ExecutionEvent, raw: Uint8Array | undefined): void;
  /** The worker never ended the running execution within its backstop: it is presumed lost. */
  onBackstop(requestId: string, backstopMs: number): void;
  /** An execution ended; its done has gone out. */
  onFinished(execution: Execution): void;
  metrics?: MetricsHooks;
}

/**
 * Beyond the worker's own timeout + grace: a worker silent this much longer is
 * considered lost. It must exceed the worker's worst recovery after a timeout
 * (a restart that stays silent for 10 s, then a new kernel within 30 s), or a
 * slow restart is misreported as worker_lost.
 */
export const BACKSTOP_EXTRA_MS = 60_000;
export const MAX_QUEUED_EXECUTIONS = 1000;

/**
 * A session's executions: the queue, the one running, the backstop that
 * ends it if the worker never does, and the rule that every execution ends
 * with exactly one done.
 */
export class ExecutionQueue {
  private readonly queue: Execution[] = [];
  private readonly inFlight = new Map<string, Execution>();
  private current: Execution | undefined;
  private backstopPaused = false;

  constructor(private readonly options: ExecutionQueueOptions) {}

  get running(): Execution | undefined {
    return this.current;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Nothing runs and nothing waits. */
  get idle(): boolean {
    return !this.current && this.queue.length === 0;
  }

  /** Queues an execution; throws EXEC_DUPLICATE_REQUEST_ID or SESSION_QUEUE_FULL. */
  add(request: ExecutionRequest, sink: ExecutionSink | undefined): Execution {
    if (this.inFlight.has(request.requestId)) {
      throw tetherError(ErrorCodes.EXEC_DUPLICATE_REQUEST_ID, `An execution with requestId '${request.requestId}' is already in flight.`);
    }
    if (this.queue.length >= MAX_QUEUED_EXECUTIONS) {
      throw tetherError(ErrorCodes.SESSION_QUEUE_FULL, `The session already has ${MAX_QUEUED_EXECUTIONS} executions queued.`);
    }
    const execution: Execution = { ...request, sink, waitingForInput: false, startedAt: undefined, resumed: false, backstop: undefined };
    this.inFlight.set(request.requestId, execution);
    this.queue.push(execution);
    return execution;
  }

  /**
   * Takes the next queued execution and makes it the running one, arming its
   * backstop; `send` hands it to the worker. Undefined when one already runs
   * or none waits.
   */
  startNext(send: (execution: Execution) => void): Execution | undefined {
    if (this.current) return undefined;
    const next = this.queue.shift();
    if (!next) return undefined;
    this.current = next;
    next.startedAt = Date.now();
    send(next);
    this.armBackstop(next);
    return next;
  }

  /**
   * The execution the session's previous replica had sent the worker: it
   * runs here from now on. No sink: whoever waited for it waited there (and
   * reads its record, or the log, here).
   */
  adoptRunning(request: ExecutionRequest): void {
    const execution: Execution = { ...request, sink: undefined, waitingForInput: false, startedAt: Date.now(), resumed: false, backstop: undefined };
    this.inFlight.set(request.requestId, execution);
    this.current = execution;
    this.armBackstop(execution);
  }

  private armBackstop(execution: Execution): void {
    const backstopMs = execution.timeoutMs + this.options.interruptGraceMs + BACKSTOP_EXTRA_MS;
    execution.backstop = new PausableTimer(backstopMs, () => {
      this.options.logger.error({ requestId: execution.requestId, backstopMs }, "the worker never ended the execution");
      this.options.onBackstop(execution.requestId, backstopMs);
    });
    if (this.backstopPaused) execution.backstop.pause();
  }

  /** This replica lets the session go: backstops stop (the next owner arms its own). */
  disarm(): void {
    this.current?.backstop?.cancel();
  }

  /** Stops (true) or restarts (false) the running execution's backstop clock: the worker is not being read. */
  pauseBackstop(paused: boolean): void {
    this.backstopPaused = paused;
    if (paused) this.current?.backstop?.pause();
    else this.current?.backstop?.resume();
  }

  /** An event from the worker for `requestId` (its own). A done ends its execution; events for no execution in flight are dropped. */
  route(event: ExecutionEvent, requestId: string, raw: Uint8Array): void {
    const execution = this.inFlight.get(requestId);
    if (!execution) {
      this.options.logger.debug({ requestId, type: event.type }, "event for no execution in flight; dropped");
      return;
    }
    if (event.type === "done") {
      // The kernel this execution ran on is not the one earlier executions used.
      if (execution.resumed && !event.stateLost) this.finish(execution, { ...event, stateLost: true }, undefined);
      else this.finish(execution, event, raw);
      return;
    }
    if (event.type === "input_request") execution.waitingForInput = true;
    this.emit(execution, event, raw);
  }

  /** Sends an event the orchestrator made to one execution's sink and the observers. */
  emit(execution: Execution, event: ExecutionEvent, raw: Uint8Array | undefined): void {
    execution.sink?.deliver(event, raw);
    this.options.publish(event, raw);
  }

  /** The running execution is waiting for this input reply; throws EXEC_UNKNOWN_REQUEST / EXEC_NOT_WAITING_FOR_INPUT. */
  takeInputReply(requestId: string): void {
    const execution = this.requireInFlight(requestId);
    if (execution !== this.current || !execution.waitingForInput) {
      throw tetherError(ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT, `Execution '${requestId}' is not waiting for input.`);
    }
    execution.waitingForInput = false;
  }

  /** True when `requestId` is the running execution; a queued one is cancelled (done `cancelled`) and false returned. */
  interruptTarget(requestId: string): boolean {
    const execution = this.requireInFlight(requestId);
    if (execution === this.current) return true;
    this.finish(execution, syntheticDone(execution, "cancelled", { code: ErrorCodes.EXEC_CANCELLED, message: "Cancelled by an interrupt before it started." }, false), undefined);
    return false;
  }

  /** Ends every execution in flight, the running one first, then the queue in order. Their kernel is gone. */
  endAll(status: ExecutionStatus, failure: { code: string; message: string }): void {
    const pending = [...(this.current ? [this.current] : []), ...this.queue];
    for (const execution of pending) this.finish(execution, syntheticDone(execution, status, failure, true), undefined);
  }

  private finish(execution: Execution, done: DoneEvent, raw: Uint8Array | undefined): void {
    if (!this.inFlight.delete(execution.requestId)) return;
    execution.backstop?.cancel();
    if (this.current === execution) {
      this.current = undefined;
    } else {
      const index = this.queue.indexOf(execution);
      if (index >= 0) this.queue.splice(index, 1);
    }
    this.emit(execution, done, raw);
    this.options.metrics?.executionFinished(done.status, execution.startedAt === undefined ? undefined : Date.now() - execution.startedAt);
    this.options.onFinished(execution);
  }

  private requireInFlight(requestId: string): Execution {
    const execution = this.inFlight.get(requestId);
    if (!execution) throw tetherError(ErrorCodes.EXEC_UNKNOWN_REQUEST, `No execution '${requestId}' is in flight.`);
    return execution;
  }
}

function syntheticDone(execution: Execution, status: ExecutionStatus, failure: { code: string; message: string }, stateLost: boolean): DoneEvent {
  return {
    type: "done",
    requestId: execution.requestId,
    status,
    executionCount: null,
    durationMs: execution.startedAt === undefined ? 0 : Date.now() - execution.startedAt,
    kernelRestarted: false,
    stateLost,
    failure,
  };
}
