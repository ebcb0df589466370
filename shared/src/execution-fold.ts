import type { SessionResumed } from "./client-protocol.js";
import type { DoneEvent, ExecutionEvent } from "./execution.js";
import type { ExecuteResponse, OutputItem } from "./rest.js";

/** What a fold takes: one execution's events, and the notice that it resumed a stopped session. */
export type FoldableEvent = ExecutionEvent | SessionResumed;

/** Byte caps of a fold; none by default (a client folding a stream keeps what it was sent). */
export interface FoldLimits {
  /** Stream text kept per stream (stdout, stderr), cut at a character boundary past it. */
  maxStreamBytes?: number;
  /** Rich outputs kept in all; past it, later ones are left out. Either cut says `truncated`. */
  maxOutputsBytes?: number;
}

/**
 * Folds one execution's events into the body a REST execute answers
 * (`ExecuteResponse`), the way a notebook shows them (docs/api.md): stream
 * text in order, display updates replace in place, clear_output(wait) clears
 * when the next output arrives, the error, the done event's status. One fold
 * for the orchestrator (REST, adapters: with caps) and the client SDK (its
 * `result()` of a streamed execution: no caps), so both answer the same.
 */
export class ExecutionFold {
  private stdout = "";
  private stderr = "";
  private stdoutBytes = 0;
  private stderrBytes = 0;
  private truncated = false;
  private outputs: OutputItem[] = [];
  private outputBytes = 0;
  private error: ExecuteResponse["error"];
  /** clear_output(wait=True): clear when the next output arrives. */
  private clearPending = false;
  private done: DoneEvent | undefined;
  private resumed = false;
  private readonly maxStreamBytes: number;
  private readonly maxOutputsBytes: number;

  constructor(
    readonly requestId: string,
    limits: FoldLimits = {},
  ) {
    this.maxStreamBytes = limits.maxStreamBytes ?? Number.POSITIVE_INFINITY;
    this.maxOutputsBytes = limits.maxOutputsBytes ?? Number.POSITIVE_INFINITY;
  }

  apply(event: FoldableEvent): void {
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
        this.pushOutput({ type: "display_data", data: event.data, metadata: event.metadata, ...(event.displayId !== undefined ? { displayId: event.displayId } : {}) });
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

  /** The execution resumed a stopped session on a new worker (told out of band): the response says `resumed` and `stateLost`. */
  markResumed(): void {
    this.resumed = true;
  }

  /** Bytes of output held (stream text and rich outputs); counted only where a cap is set. */
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

  private pushOutput(output: OutputItem): void {
    if (this.maxOutputsBytes !== Number.POSITIVE_INFINITY) {
      const bytes = bundleBytes(output.data);
      if (this.outputBytes + bytes > this.maxOutputsBytes) {
        this.truncated = true;
        return;
      }
      this.outputBytes += bytes;
    }
    this.outputs.push(output);
  }

  private appendStream(name: "stdout" | "stderr", text: string): void {
    let kept = text;
    if (this.maxStreamBytes !== Number.POSITIVE_INFINITY) {
      const used = name === "stdout" ? this.stdoutBytes : this.stderrBytes;
      const room = this.maxStreamBytes - used;
      if (room <= 0) {
        if (text.length > 0) this.truncated = true;
        return;
      }
      let bytes = utf8Length(text);
      if (bytes > room) {
        kept = truncateUtf8(text, room);
        bytes = utf8Length(kept);
        this.truncated = true;
      }
      if (name === "stdout") this.stdoutBytes += bytes;
      else this.stderrBytes += bytes;
    }
    if (name === "stdout") this.stdout += kept;
    else this.stderr += kept;
  }
}

/** A bundle's size for the outputs cap: its strings' lengths (base64 images dominate), 64 for anything else. */
function bundleBytes(bundle: Record<string, unknown>): number {
  let total = 0;
  for (const value of Object.values(bundle)) total += typeof value === "string" ? value.length : 64;
  return total;
}

/** UTF-8 length of `text` without encoding it (the fold runs in browsers too, where there is no Buffer). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** The longest prefix of `text` that fits in `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const pair = code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : pair ? 4 : 3;
    if (bytes + size > maxBytes) return text.slice(0, i);
    bytes += size;
    if (pair) i++;
  }
  return text;
}
