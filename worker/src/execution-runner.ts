import { performance } from "node:perf_hooks";
import { KernelMessage } from "@jupyterlab/services";
import type { Logger } from "pino";
import { ErrorCodes, numberField, stringField, type ExecutionStatus, type WorkerExecute, type WorkerMessage } from "@tether/shared";
import { WorkerError, toErrorDetail } from "./errors.js";
import type { KernelSession } from "./kernel-session.js";
import { boundedEvents } from "./output-limits.js";
import { translateIopub } from "./output-translator.js";
import { StdinHandler } from "./stdin-handler.js";

/** What the runner needs of a kernel (KernelSession; the benchmarks' SyntheticKernel). */
export type ExecutionKernel = Pick<KernelSession, "execute" | "sendInputReply" | "interrupt" | "restart" | "recoverFromDeath">;

export interface ExecutionRunnerOptions {
  /** After a timeout interrupt, how long before the kernel is restarted. */
  interruptGraceMs: number;
  logger: Logger;
}

type Send = (msg: WorkerMessage) => void;

/** Request ids of ended executions remembered for executions_status (a replica taking the worker over asks). */
const REMEMBERED_ENDED = 256;

/** After idle, how long the execute_reply may still take before the execution is ended without it. */
const NO_REPLY_GRACE_MS = 3000;

interface Running {
  requestId: string;
  msgId: string;
  startedAt: number;
  stdin: StdinHandler;
  gotReply: boolean;
  gotIdle: boolean;
  replyStatus: string;
  executionCount: number | null;
  timedOut: boolean;
  stdinExhausted: string | undefined;
  pendingInput: KernelMessage.IHeader<"input_request"> | undefined;
  /** The worker is ending it (death, restart): kernel messages no longer count. */
  ending: boolean;
  timers: NodeJS.Timeout[];
  log: Logger;
}

interface DoneFields {
  status: ExecutionStatus;
  kernelRestarted?: boolean;
  failure?: { code: string; message: string };
}

/**
 * Runs executions one at a time and ends each with exactly one `done`, whatever
 * happens: reply + idle, timeout (interrupt, then restart), kernel death,
 * exhausted stdin, or a restart someone asked for.
 */
export class ExecutionRunner {
  private readonly queue: WorkerExecute[] = [];
  private current: Running | undefined;
  private readonly ended: string[] = [];
  /** Set while the kernel is being restarted or replaced; executions wait for it. */
  private recovery: Promise<void> | undefined;
  private disposed = false;

  constructor(
    private readonly kernel: ExecutionKernel,
    private readonly send: Send,
    private readonly options: ExecutionRunnerOptions,
  ) {}

  /** Executions wait until `ready` settles (the first kernel start). */
  holdUntil(ready: Promise<unknown>): void {
    this.recover(async () => {
      // A failed start is reported as worker_failed by the agent; queued executions then end with KERNEL_UNAVAILABLE.
      await ready.catch(() => undefined);
    });
  }

  enqueue(request: WorkerExecute): void {
    if (this.current?.requestId === request.requestId || this.queue.some((queued) => queued.requestId === request.requestId)) {
      throw new WorkerError(ErrorCodes.EXEC_DUPLICATE_REQUEST_ID, `Request ${request.requestId} is already running or queued.`);
    }
    this.queue.push(request);
    this.pump();
  }

  /** What runs, waits and recently ended, by request id (executions_status). */
  status(): { running: string | null; queued: string[]; ended: string[] } {
    return { running: this.current?.requestId ?? null, queued: this.queue.map((request) => request.requestId), ended: [...this.ended] };
  }

  /** Every kernel message, synchronously (hot path: no promises, no re-encoding). */
  onKernelMessage(msg: KernelMessage.IMessage): void {
    const run = this.current;
    if (!run || run.ending) return;
    if (stringField(msg.parent_header, "msg_id") !== run.msgId) return;
    switch (msg.channel) {
      case "iopub":
        this.onIopub(run, msg);
        return;
      case "shell":
        if (msg.header.msg_type === "execute_reply") {
          run.gotReply = true;
          run.replyStatus = stringField(msg.content, "status") ?? "error";
          run.executionCount = numberField(msg.content, "execution_count") ?? null;
          this.maybeFinish(run);
        }
        return;
      case "stdin":
        if (KernelMessage.isInputRequestMsg(msg)) this.onInputRequest(run, msg);
        return;
      default:
        return;
    }
  }

  onKernelDeath(reason: string, restartFailed: boolean): void {
    const run = this.current;
    const log = run?.log ?? this.options.logger;
    log.warn({ reason, restartFailed }, "kernel died");
    if (run && !run.ending) {
      run.ending = true;
      clearTimers(run);
      this.send({ type: "kernel_died", requestId: run.requestId, reason, restarted: false });
    } else if (!run) {
      this.send({ type: "kernel_died", requestId: null, reason, restarted: false });
    }
    this.recover(async () => {
      let restarted = true;
      let failure: { code: string; message: string } = { code: ErrorCodes.KERNEL_DIED, message: `The kernel died (${reason}); variables and imports are gone.` };
      try {
        await this.kernel.recoverFromDeath(restartFailed);
      } catch (error) {
        restarted = false;
        failure = { code: ErrorCodes.KERNEL_RESTART_FAILED, message: `The kernel died and could not be restarted: ${toErrorDetail(error).message}` };
        log.error({ err: error }, "kernel could not be replaced");
      }
      if (run && this.current === run) this.finish(run, { status: "kernel_died", kernelRestarted: restarted, failure });
      else if (!run && restarted) this.send({ type: "status", requestId: null, state: "idle" });
    });
  }

  /** Answer of the client to an input_request of the running execution. */
  inputReply(requestId: string, value: string): void {
    const run = this.current;
    if (!run || run.requestId !== requestId || !run.pendingInput) {
      throw new WorkerError(ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT, `Request ${requestId} is not waiting for input.`);
    }
    const header = run.pendingInput;
    run.pendingInput = undefined;
    this.kernel.sendInputReply(value, header);
  }

  /** Interrupts whatever runs; the execution ends on its own with KeyboardInterrupt. */
  async interrupt(): Promise<void> {
    if (this.current) this.current.pendingInput = undefined;
    await this.kernel.interrupt();
  }

  /** Restarts the kernel; a running execution ends `cancelled` with its state lost. */
  async restart(): Promise<void> {
    await this.recovery;
    const run = this.current;
    if (run) {
      run.ending = true;
      clearTimers(run);
    }
    let failed: unknown;
    this.recover(async () => {
      try {
        await this.kernel.restart();
      } catch (error) {
        failed = error;
      }
      if (run && this.current === run) {
        this.finish(run, {
          status: "cancelled",
          kernelRestarted: failed === undefined,
          failure: { code: ErrorCodes.EXEC_CANCELLED, message: "The kernel was restarted while this execution ran; variables and imports are gone." },
        });
      }
    });
    await this.recovery;
    if (failed) throw failed;
  }

  /** Ends the running execution (if the socket can still carry it) and forgets the queue. */
  dispose(reason: string): void {
    if (this.disposed) return;
    this.disposed = true;
    const run = this.current;
    if (run) this.finish(run, { status: "cancelled", failure: { code: ErrorCodes.EXEC_CANCELLED, message: `The worker is shutting down: ${reason}` } });
    this.queue.length = 0;
  }

  private onIopub(run: Running, msg: KernelMessage.IMessage): void {
    const type = msg.header.msg_type;
    if (type === "status") {
      if (stringField(msg.content, "execution_state") === "idle") {
        run.gotIdle = true;
        this.maybeFinish(run);
        // The reply travels on another channel and may trail idle a little; one that never comes
        // (a request the kernel refused) must not hold the execution until its timeout.
        if (!run.gotReply) run.timers.push(setTimeout(() => this.onNoReply(run), NO_REPLY_GRACE_MS));
      }
      return;
    }
    const event = translateIopub(msg, run.requestId);
    if (!event) return;
    if (event.type === "error" && run.stdinExhausted !== undefined && event.name === "KeyboardInterrupt") {
      // Our own interrupt ended the input(): tell the client why instead.
      this.send({ type: "error", requestId: run.requestId, name: "StdinExhausted", value: run.stdinExhausted, traceback: [] });
      return;
    }
    for (const piece of boundedEvents(event)) this.send(piece);
  }

  private onInputRequest(run: Running, msg: KernelMessage.IInputRequestMsg): void {
    const action = run.stdin.onPrompt();
    switch (action.kind) {
      case "reply":
        this.kernel.sendInputReply(action.value, msg.header);
        return;
      case "forward":
        run.pendingInput = msg.header;
        this.send({ type: "input_request", requestId: run.requestId, prompt: msg.content.prompt, password: msg.content.password });
        return;
      case "exhausted":
        if (run.stdinExhausted !== undefined) return;
        run.stdinExhausted = action.message;
        run.log.info("stdin exhausted, interrupting");
        this.kernel.interrupt().catch((error: unknown) => run.log.warn({ err: error }, "interrupt after exhausted stdin failed"));
        return;
      default: {
        const unknown: never = action;
        throw new Error(`unknown stdin action ${JSON.stringify(unknown)}`);
      }
    }
  }

  private pump(): void {
    if (this.current || this.recovery || this.disposed) return;
    const request = this.queue.shift();
    if (!request) return;
    const stdin = new StdinHandler(request.stdin);
    const log = this.options.logger.child({ requestId: request.requestId });
    const startedAt = performance.now();
    let msgId: string;
    try {
      msgId = this.kernel.execute(request.code, stdin.allowStdin);
    } catch (error) {
      this.send({
        type: "done",
        requestId: request.requestId,
        status: "error",
        executionCount: null,
        durationMs: 0,
        kernelRestarted: false,
        stateLost: false,
        failure: toErrorDetail(error),
      });
      queueMicrotask(() => this.pump());
      return;
    }
    const run: Running = {
      requestId: request.requestId,
      msgId,
      startedAt,
      stdin,
      gotReply: false,
      gotIdle: false,
      replyStatus: "ok",
      executionCount: null,
      timedOut: false,
      stdinExhausted: undefined,
      pendingInput: undefined,
      ending: false,
      timers: [],
      log,
    };
    this.current = run;
    run.timers.push(setTimeout(() => this.onTimeout(run, request.timeoutMs), request.timeoutMs));
  }

  private onNoReply(run: Running): void {
    if (this.current !== run || run.ending || run.gotReply) return;
    run.log.warn("the kernel went idle without answering the execution");
    this.finish(run, { status: "error", failure: { code: ErrorCodes.EXEC_NO_REPLY, message: "The kernel went idle without answering this execution (it refused or lost the request); run it again." } });
  }

  private onTimeout(run: Running, timeoutMs: number): void {
    if (this.current !== run || run.ending) return;
    run.timedOut = true;
    run.pendingInput = undefined;
    run.log.info({ timeoutMs }, "execution timed out, interrupting");
    this.kernel.interrupt().catch((error: unknown) => run.log.warn({ err: error }, "timeout interrupt failed"));
    run.timers.push(setTimeout(() => this.onGraceExpired(run, timeoutMs), this.options.interruptGraceMs));
  }

  private onGraceExpired(run: Running, timeoutMs: number): void {
    if (this.current !== run || run.ending) return;
    run.ending = true;
    run.log.warn("execution did not stop after interrupt, restarting the kernel");
    this.recover(async () => {
      let restarted = true;
      try {
        await this.kernel.restart();
      } catch (error) {
        restarted = false;
        run.log.error({ err: error }, "restart after timeout failed");
      }
      this.finish(run, {
        status: "timeout",
        kernelRestarted: restarted,
        failure: { code: ErrorCodes.EXEC_TIMEOUT, message: `The execution ran past ${timeoutMs} ms and did not stop when interrupted; the kernel was restarted, variables and imports are gone.` },
      });
    });
  }

  private maybeFinish(run: Running): void {
    if (!run.gotReply || !run.gotIdle) return;
    if (run.timedOut) {
      this.finish(run, { status: "timeout", failure: { code: ErrorCodes.EXEC_TIMEOUT, message: "The execution ran past its timeout and was interrupted." } });
    } else if (run.stdinExhausted !== undefined) {
      this.finish(run, { status: "error", failure: { code: ErrorCodes.EXEC_STDIN_EXHAUSTED, message: run.stdinExhausted } });
    } else if (run.replyStatus === "aborted") {
      // The kernel skipped the code without running it. Executions are
      // sent with stop_on_error false and one at a time, so this should not
      // happen; if it does, say so rather than report a bare error.
      this.finish(run, { status: "error", failure: { code: ErrorCodes.EXEC_ABORTED, message: "The kernel aborted this execution without running it; run it again." } });
    } else {
      this.finish(run, { status: run.replyStatus === "ok" ? "ok" : "error" });
    }
  }

  private finish(run: Running, fields: DoneFields): void {
    if (this.current !== run) return;
    clearTimers(run);
    this.current = undefined;
    this.ended.push(run.requestId);
    if (this.ended.length > REMEMBERED_ENDED) this.ended.shift();
    const restarted = fields.kernelRestarted ?? false;
    this.send({
      type: "done",
      requestId: run.requestId,
      status: fields.status,
      executionCount: run.executionCount,
      durationMs: Math.round((performance.now() - run.startedAt) * 100) / 100,
      kernelRestarted: restarted,
      // A dead kernel loses its state even when no replacement could be started.
      stateLost: restarted || fields.status === "kernel_died",
      ...(fields.failure ? { failure: fields.failure } : {}),
    });
    this.pump();
  }

  /** Runs a kernel restart or replacement; executions queue behind it. */
  private recover(work: () => Promise<void>): void {
    const recovery = work()
      .catch((error: unknown) => this.options.logger.error({ err: error }, "kernel recovery failed"))
      .finally(() => {
        if (this.recovery === recovery) this.recovery = undefined;
        this.pump();
      });
    this.recovery = recovery;
  }
}

function clearTimers(run: Running): void {
  for (const timer of run.timers) clearTimeout(timer);
  run.timers.length = 0;
}
