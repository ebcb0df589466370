import { ExecutionFold, type ClientExecute, type DisplayEvent, type ErrorEvent, type ExecuteResponse, type ResultEvent } from "@tether/shared";
import type { EventsExpiredError, TetherError } from "./errors.js";
import type { ExecutionStreamEvent } from "./stream-messages.js";

export type DisplayOutput = Omit<DisplayEvent, "type" | "requestId">;
export type ResultOutput = Omit<ResultEvent, "type" | "requestId">;
export type ExecutionError = Omit<ErrorEvent, "type" | "requestId">;
export interface InputPrompt {
  prompt: string;
  /** getpass(): do not echo the answer. */
  password: boolean;
}

/** Callbacks of one execution; each fires once per event, in order, across reconnects. */
export interface ExecutionCallbacks {
  /** Printed text, in chunks as it comes. */
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
  /** Rich output: a plot (`data["image/png"]`, base64), HTML, …; `update: true` replaces the display with that `displayId`. */
  onDisplay?: (display: DisplayOutput) => void;
  /** The value of the last expression. */
  onResult?: (result: ResultOutput) => void;
  /** A Python exception (the execution's status will be "error"). */
  onError?: (error: ExecutionError) => void;
  /** Clear this execution's output so far; with `wait`, when the next output arrives. */
  onClearOutput?: (clear: { wait: boolean }) => void;
  /**
   * `input()` asks: return (or resolve with) the answer. Without this callback
   * the execution is interrupted at its first prompt (it cannot be answered).
   */
  onInput?: (request: InputPrompt) => Promise<string> | string;
  /** This execution resumed a stopped session on a new worker: files are back, variables are not. */
  onResumed?: (info: { restoredFiles: number }) => void;
  /** The kernel died during the execution (its `done` says whether a new one took over). */
  onKernelDied?: (info: { reason: string }) => void;
  /** The stream lost messages of this execution (410): some callbacks did not fire; the result is still complete. */
  onEventsExpired?: (error: EventsExpiredError) => void;
}

export interface ExecuteOptions extends ExecutionCallbacks {
  /** Aborting interrupts the execution (KeyboardInterrupt); the promise still resolves with how it ended. */
  signal?: AbortSignal;
  /** The server's execution timeout (interrupt, then restart); default the orchestrator's (60 s). */
  timeoutMs?: number;
  /** Your own id for it (1-128 characters, unique in the session); default a random one. */
  requestId?: string;
}

/** Reports a callback that threw (to the session's `error` event). */
export type CallbackErrorSink = (error: unknown) => void;

/** One execution the SDK follows: its callbacks, its fold, and what was sent on which connection. */
export class PendingExecution {
  readonly fold: ExecutionFold;
  readonly promise: Promise<ExecuteResponse>;
  /** The connection generation its execute went out on; undefined until sent. */
  sentOn: number | undefined;
  /** Some event of it arrived: the server knows it. */
  seen = false;
  /** The execute was sent again after a reconnect: a duplicate-id refusal is expected. */
  resent = false;
  /** After a 410: the result comes from GET …/executions/:requestId, not from the fold. */
  recovering = false;
  /** Frames to send once connected (input replies, interrupts). */
  readonly outbox: ({ type: "input_reply"; requestId: string; value: string } | { type: "interrupt"; requestId: string })[] = [];
  private settled = false;
  private resolvePromise!: (response: ExecuteResponse) => void;
  private rejectPromise!: (error: TetherError) => void;
  private detachSignal: () => void = () => undefined;

  constructor(
    readonly requestId: string,
    /** `execute`: this client sends it; `attach`: it was started elsewhere (another page, before a reload). */
    readonly origin: { kind: "execute"; message: ClientExecute } | { kind: "attach" },
    readonly callbacks: ExecutionCallbacks,
    private readonly onCallbackError: CallbackErrorSink,
  ) {
    this.fold = new ExecutionFold(requestId);
    this.promise = new Promise<ExecuteResponse>((resolve, reject) => {
      this.resolvePromise = resolve;
      this.rejectPromise = reject;
    });
  }

  get isSettled(): boolean {
    return this.settled;
  }

  onAbort(signal: AbortSignal, abort: () => void): void {
    signal.addEventListener("abort", abort, { once: true });
    this.detachSignal = () => signal.removeEventListener("abort", abort);
  }

  /** Applies one event: folds it (unless recovering) and fires its callback. Returns the input prompt to answer, if any. */
  apply(event: ExecutionStreamEvent): InputPrompt | undefined {
    this.seen = true;
    if (!this.recovering) this.fold.apply(event);
    const cb = this.callbacks;
    switch (event.type) {
      case "stream":
        this.fire(event.name === "stdout" ? cb.onStdout : cb.onStderr, event.text);
        return undefined;
      case "display":
        this.fire(cb.onDisplay, { data: event.data, metadata: event.metadata, update: event.update, ...(event.displayId !== undefined ? { displayId: event.displayId } : {}) });
        return undefined;
      case "result":
        this.fire(cb.onResult, { executionCount: event.executionCount, data: event.data, metadata: event.metadata });
        return undefined;
      case "error":
        this.fire(cb.onError, { name: event.name, value: event.value, traceback: event.traceback });
        return undefined;
      case "clear_output":
        this.fire(cb.onClearOutput, { wait: event.wait });
        return undefined;
      case "session_resumed":
        this.fire(cb.onResumed, { restoredFiles: event.restoredFiles });
        return undefined;
      case "kernel_died":
        this.fire(cb.onKernelDied, { reason: event.reason });
        return undefined;
      case "input_request":
        return { prompt: event.prompt, password: event.password };
      case "status":
      case "done":
        return undefined;
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  fire<T>(callback: ((value: T) => void) | undefined, value: T): void {
    if (!callback) return;
    try {
      callback(value);
    } catch (error) {
      this.onCallbackError(error);
    }
  }

  resolve(response: ExecuteResponse): void {
    if (this.settled) return;
    this.settled = true;
    this.detachSignal();
    this.resolvePromise(response);
  }

  reject(error: TetherError): void {
    if (this.settled) return;
    this.settled = true;
    this.detachSignal();
    this.rejectPromise(error);
  }
}
