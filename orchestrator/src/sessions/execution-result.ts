import type { DoneEvent, ExecuteResponse, ExecutionEvent, OutputItem } from "@tether/shared";

/**
 * Folds one execution's events into the REST response: stream text in order
 * (cut past `maxOutputBytes` per stream), rich outputs with display updates
 * and clear_output applied the way a notebook would show them, the error, and
 * the done event's status.
 */
export class ExecutionResultFold {
  private stdout = "";
  private stderr = "";
  private stdoutBytes = 0;
  private stderrBytes = 0;
  private truncated = false;
  private outputs: OutputItem[] = [];
  private error: ExecuteResponse["error"];
  /** clear_output(wait=True): clear when the next output arrives. */
  private clearPending = false;
  private done: DoneEvent | undefined;
  private resumed = false;
  private outputBytes = 0;

  constructor(
    readonly requestId: string,
    private readonly maxOutputBytes: number,
  ) {}

  apply(event: ExecutionEvent): void {
    switch (event.type) {
      case "stream":
        this.flushPendingClear();
        this.appendStream(event.name, event.text);
        return;
      case "display":
        if (event.update) {
          // update_display_data changes outputs in place; it is not a new output.
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
        this.pushOutput({
          type: "display_data",
          data: event.data,
          metadata: event.metadata,
          ...(event.displayId !== undefined ? { displayId: event.displayId } : {}),
        });
        return;
      case "result":
        this.flushPendingClear();
        this.pushOutput({ type: "execute_result", data: event.data, metadata: event.metadata });
        return;
      case "error":
        this.flushPendingClear();
        this.error = { name: event.name, value: event.value, traceback: event.traceback };
        return;
      case "clear_output":
        if (event.wait) this.clearPending = true;
        else this.clear();
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

  /** The execution resumed a stopped session on a new worker: the response says `resumed` and `stateLost`. */
  markResumed(): void {
    this.resumed = true;
  }

  /** Bytes of output held (stream text and rich outputs). */
  get retainedBytes(): number {
    return this.stdoutBytes + this.stderrBytes + this.outputBytes;
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
      truncated: this.truncated,
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

  /** Clears what the notebook would clear: stream text and rich outputs (not the error, which ends the cell). */
  private clear(): void {
    this.stdout = "";
    this.stderr = "";
    this.stdoutBytes = 0;
    this.stderrBytes = 0;
    this.truncated = false;
    this.outputs = [];
    this.outputBytes = 0;
  }

  /** Rich outputs are kept whole up to MAX_REST_OUTPUTS_BYTES in all; past it they are left out and the response says `truncated`. */
  private pushOutput(output: OutputItem): void {
    const bytes = bundleBytes(output.data);
    if (this.outputBytes + bytes > MAX_REST_OUTPUTS_BYTES) {
      this.truncated = true;
      return;
    }
    this.outputBytes += bytes;
    this.outputs.push(output);
  }

  private appendStream(name: "stdout" | "stderr", text: string): void {
    const used = name === "stdout" ? this.stdoutBytes : this.stderrBytes;
    const room = this.maxOutputBytes - used;
    if (room <= 0) {
      if (text.length > 0) this.truncated = true;
      return;
    }
    let kept = text;
    let bytes = Buffer.byteLength(text);
    if (bytes > room) {
      kept = truncateUtf8(text, room);
      bytes = Buffer.byteLength(kept);
      this.truncated = true;
    }
    if (name === "stdout") {
      this.stdout += kept;
      this.stdoutBytes += bytes;
    } else {
      this.stderr += kept;
      this.stderrBytes += bytes;
    }
  }
}

/**
 * Rich outputs one REST response holds at most (a loop of large plots must not
 * grow the orchestrator without bound); the websocket stream has no such cap.
 */
export const MAX_REST_OUTPUTS_BYTES = 64 * 1024 * 1024;

function bundleBytes(bundle: Record<string, unknown>): number {
  let total = 0;
  for (const value of Object.values(bundle)) total += typeof value === "string" ? value.length : 64;
  return total;
}

/** The longest prefix of `text` that fits in `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const encoded = Buffer.from(text, "utf8");
  if (encoded.byteLength <= maxBytes) return text;
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) to a character boundary.
  while (end > 0 && ((encoded[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return encoded.subarray(0, end).toString("utf8");
}
