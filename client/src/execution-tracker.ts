import { ExecutionView, errorMessage, schemaGuard, type ExecuteResponse } from "@tether/shared";
import { AbortError, ClientErrorCodes, ConflictError, ProtocolError, TetherError, type EventsExpiredError } from "./errors.js";
import type { HttpClient } from "./http.js";
import { newRequestId } from "./ids.js";
import { PendingExecution, type CallbackErrorSink, type ExecuteOptions, type ExecutionCallbacks } from "./pending-execution.js";
import type { SessionStream } from "./session-stream.js";
import type { NumberedMessage, ProtocolErrorMessage } from "./stream-messages.js";
import { isRetryable } from "./transport-errors.js";

const isExecutionView = schemaGuard(ExecutionView);
/** Refusals of frames that were sent again, or that raced the execution's end: expected, not errors. */
const BENIGN_REFUSALS: ReadonlySet<string> = new Set(["TETHER_ERR_EXEC_NOT_WAITING_FOR_INPUT", "TETHER_ERR_EXEC_UNKNOWN_REQUEST"]);
/** How long one long-poll of an execution's result holds (the server caps it at 60 s). */
const RECOVERY_WAIT_MS = 25_000;

/**
 * The executions a session handle follows over its stream: sends each execute
 * once the stream has caught up, routes events by requestId, answers input(),
 * and after a reconnect sends again what the server never acknowledged. When
 * the stream reports a gap (410), results come from `GET …/executions/:id`.
 */
export class ExecutionTracker {
  private readonly pending = new Map<string, PendingExecution>();
  private generation = 0;

  constructor(
    private readonly sessionId: string,
    private readonly stream: SessionStream,
    private readonly http: HttpClient,
    private readonly reportError: CallbackErrorSink,
    private readonly reportExpired: (error: EventsExpiredError) => void,
  ) {
    stream.events.on("message", (message) => this.onMessage(message));
    stream.events.on("caughtUp", ({ generation }) => this.onCaughtUp(generation));
    stream.events.on("expired", (error) => this.onExpired(error));
    stream.events.on("state", (state) => {
      if (state.kind === "closed") this.failAll(state.error ?? new TetherError({ code: ClientErrorCodes.CLOSED, message: "The session handle was closed." }));
    });
  }

  execute(code: string, options: ExecuteOptions): Promise<ExecuteResponse> {
    const requestId = options.requestId ?? newRequestId();
    if (this.pending.has(requestId)) return Promise.reject(duplicate(requestId));
    if (options.signal?.aborted) return Promise.reject(new AbortError({ code: ClientErrorCodes.ABORTED, message: "The execution was aborted before it was sent.", requestId }));
    const message = { type: "execute" as const, requestId, code, ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) };
    const execution = this.track(new PendingExecution(requestId, { kind: "execute", message }, options, this.reportError));
    if (options.signal) execution.onAbort(options.signal, () => this.abort(execution));
    this.stream.ready().then(() => this.sendPending(execution), (error: TetherError) => execution.reject(error));
    return execution.promise;
  }

  /** Follows an execution started elsewhere; its events since the stream's start point fire the callbacks. */
  attach(requestId: string, callbacks: ExecutionCallbacks): Promise<ExecuteResponse> {
    if (this.pending.has(requestId)) return Promise.reject(duplicate(requestId));
    const execution = this.track(new PendingExecution(requestId, { kind: "attach" }, callbacks, this.reportError));
    this.stream.ready().then(
      // Caught up and nothing of it seen: it ended before the replay point, or it is silent. Ask.
      () => (execution.seen ? undefined : this.checkAttached(execution)),
      (error: TetherError) => execution.reject(error),
    );
    return execution.promise;
  }

  /** Rejects every pending execution (the handle is closing). */
  failAll(error: TetherError): void {
    for (const execution of this.pending.values()) execution.reject(error);
    this.pending.clear();
  }

  private track(execution: PendingExecution): PendingExecution {
    this.pending.set(execution.requestId, execution);
    void execution.promise.then(
      () => this.pending.delete(execution.requestId),
      () => this.pending.delete(execution.requestId),
    );
    return execution;
  }

  private onMessage({ message }: NumberedMessage): void {
    switch (message.type) {
      case "hello":
      case "session_status":
        return;
      case "protocol_error":
        return this.onRefusal(message);
      default: {
        if (message.requestId === null) return;
        const execution = this.pending.get(message.requestId);
        if (!execution) return;
        const prompt = execution.apply(message);
        if (prompt) this.answer(execution, prompt.prompt, prompt.password);
        if (message.type === "done" && !execution.recovering) execution.resolve(execution.fold.toResponse());
      }
    }
  }

  private onCaughtUp(generation: number): void {
    this.generation = generation;
    for (const execution of this.pending.values()) this.sendPending(execution);
  }

  /** Sends the execute when it was never sent, or again when it went out on an earlier connection and nothing of it came back. */
  private sendPending(execution: PendingExecution): void {
    if (execution.isSettled || execution.origin.kind !== "execute") return this.flushOutbox(execution);
    const neverSent = execution.sentOn === undefined;
    const unacknowledged = !neverSent && execution.sentOn !== this.generation && !execution.seen && !execution.recovering;
    if ((neverSent || unacknowledged) && this.stream.send(execution.origin.message)) {
      // A server that did get the first one answers the second with DUPLICATE_REQUEST_ID, which is ignored.
      execution.resent = !neverSent;
      execution.sentOn = this.generation;
    }
    this.flushOutbox(execution);
  }

  private flushOutbox(execution: PendingExecution): void {
    while (execution.outbox.length > 0 && !execution.isSettled) {
      const frame = execution.outbox[0];
      if (!frame || !this.stream.send(frame)) return;
      execution.outbox.shift();
    }
  }

  private sendOrQueue(execution: PendingExecution, frame: PendingExecution["outbox"][number]): void {
    execution.outbox.push(frame);
    this.flushOutbox(execution);
  }

  private answer(execution: PendingExecution, prompt: string, password: boolean): void {
    const onInput = execution.callbacks.onInput;
    if (!onInput) return this.sendOrQueue(execution, { type: "interrupt", requestId: execution.requestId });
    Promise.resolve()
      .then(() => onInput({ prompt, password }))
      .then(
        (value) => this.sendOrQueue(execution, { type: "input_reply", requestId: execution.requestId, value: String(value) }),
        (error: unknown) => {
          this.reportError(error);
          this.sendOrQueue(execution, { type: "interrupt", requestId: execution.requestId });
        },
      );
  }

  private abort(execution: PendingExecution): void {
    if (execution.sentOn === undefined && execution.origin.kind === "execute") {
      return execution.reject(new AbortError({ code: ClientErrorCodes.ABORTED, message: "The execution was aborted before it was sent.", requestId: execution.requestId }));
    }
    this.sendOrQueue(execution, { type: "interrupt", requestId: execution.requestId });
  }

  private onRefusal(refusal: ProtocolErrorMessage): void {
    const execution = refusal.requestId === null ? undefined : this.pending.get(refusal.requestId);
    const error = new ProtocolError({ code: refusal.code, message: refusal.message, requestId: refusal.requestId ?? undefined });
    if (!execution) return this.reportError(error);
    if (BENIGN_REFUSALS.has(refusal.code)) return;
    if (refusal.code === "TETHER_ERR_EXEC_DUPLICATE_REQUEST_ID" && execution.resent) return;
    // An execute the server refused never ran; a refusal of a later frame (an input reply) leaves it running.
    if (!execution.seen) execution.reject(error);
    else this.reportError(error);
  }

  private onExpired(error: EventsExpiredError): void {
    this.reportExpired(error);
    for (const execution of this.pending.values()) {
      const started = execution.origin.kind === "attach" || execution.sentOn !== undefined;
      if (!started || execution.recovering) continue;
      execution.recovering = true;
      execution.fire(execution.callbacks.onEventsExpired, error);
      void this.recover(execution);
    }
  }

  private async checkAttached(execution: PendingExecution): Promise<void> {
    try {
      const view = await this.readExecution(execution.requestId, 0);
      if (view) execution.resolve(view);
    } catch (error) {
      execution.reject(asTetherError(error));
    }
  }

  /** Long-polls the execution's record until it ends. */
  private async recover(execution: PendingExecution): Promise<void> {
    let failures = 0;
    while (!execution.isSettled) {
      try {
        const view = await this.readExecution(execution.requestId, RECOVERY_WAIT_MS);
        failures = 0;
        if (view) return execution.resolve(view);
      } catch (error) {
        const typed = asTetherError(error);
        if (typed.code === "TETHER_ERR_EXEC_UNKNOWN_REQUEST" && execution.origin.kind === "execute" && !execution.seen) {
          // The execute was lost with the connection: the server never had it. Send it (again) on the live stream.
          execution.recovering = false;
          execution.sentOn = undefined;
          return this.sendPending(execution);
        }
        if (!isRetryable(typed) || ++failures > 20) return execution.reject(typed);
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** failures)));
      }
    }
  }

  /** The execution's result once it ended, else undefined (still queued or running). */
  private async readExecution(requestId: string, waitMs: number): Promise<ExecuteResponse | undefined> {
    const path = `/v1/sessions/${encodeURIComponent(this.sessionId)}/executions/${encodeURIComponent(requestId)}${waitMs > 0 ? `?waitMs=${waitMs}` : ""}`;
    const view = await this.http.json({ method: "GET", path, timeoutMs: waitMs + 15_000 }, isExecutionView);
    const { status } = view;
    if (status === "queued" || status === "running") return undefined;
    return { ...view, status };
  }
}

function duplicate(requestId: string): TetherError {
  return new ConflictError({ code: "TETHER_ERR_EXEC_DUPLICATE_REQUEST_ID", message: `Execution '${requestId}' is already followed by this session handle.`, requestId });
}

function asTetherError(error: unknown): TetherError {
  return error instanceof TetherError ? error : new TetherError({ code: ClientErrorCodes.BAD_RESPONSE, message: errorMessage(error), cause: error });
}
