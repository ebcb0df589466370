import type { DoneEvent, ExecuteResponse, OutputItem } from "@tether/shared";
import type { ExecutionStreamEvent } from "./stream-messages.js";

/**
 * Folds one execution's stream events into the body a REST execute answers
 * (`ExecuteResponse`), with the notebook rules of docs/api.md: display updates
 * replace in place, clear_output(wait) clears when the next output arrives.
 * The same rules as the orchestrator's fold (orchestrator/src/sessions/
 * execution-result.ts), without its byte caps: the stream has none, so
 * `truncated` stays false.
 */
export class ExecutionFold {
  private stdout = "";
  private stderr = "";
  private outputs: OutputItem[] = [];
  private error: ExecuteResponse["error"];
  private clearPending = false;
  private done: DoneEvent | undefined;
  private resumed = false;

  constructor(readonly requestId: string) {}

  apply(event: ExecutionStreamEvent): void {
    switch (event.type) {
      case "stream":
        this.flushPendingClear();
        if (event.name === "stdout") this.stdout += event.text;
        else this.stderr += event.text;
        return;
      case "display":
        if (event.update) {
          if (event.displayId === undefined) return;
          for (const output of this.outputs) {
            if (output.displayId === event.displayId) {
              output.data = event.data;
              output.metadata = event.metadata;
            }
          }
          return;
        }
        this.flushPendingClear();
        this.outputs.push({ type: "display_data", data: event.data, metadata: event.metadata, ...(event.displayId !== undefined ? { displayId: event.displayId } : {}) });
        return;
      case "result":
        this.flushPendingClear();
        this.outputs.push({ type: "execute_result", data: event.data, metadata: event.metadata });
        return;
      case "error":
        this.flushPendingClear();
        this.error = { name: event.name, value: event.value, traceback: event.traceback };
        return;
      case "clear_output":
        if (event.wait) this.clearPending = true;
        else this.clear();
        return;
      case "session_resumed":
        this.resumed = true;
        return;
      case "done":
        this.done = event;
        return;
      case "input_request":
      case "status":
      case "kernel_died":
        return;
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  get finished(): boolean {
    return this.done !== undefined;
  }

  toResponse(): ExecuteResponse {
    const done = this.done;
    return {
      requestId: this.requestId,
      status: done?.status ?? "worker_lost",
      executionCount: done?.executionCount ?? null,
      stdout: this.stdout,
      stderr: this.stderr,
      outputs: this.outputs,
      ...(this.error ? { error: this.error } : {}),
      truncated: false,
      kernelRestarted: done?.kernelRestarted ?? false,
      stateLost: (done?.stateLost ?? false) || this.resumed,
      ...(done?.failure ? { failure: done.failure } : {}),
      durationMs: done?.durationMs ?? 0,
      resumed: this.resumed,
    };
  }

  private flushPendingClear(): void {
    if (!this.clearPending) return;
    this.clearPending = false;
    this.clear();
  }

  private clear(): void {
    this.stdout = "";
    this.stderr = "";
    this.outputs = [];
  }
}
