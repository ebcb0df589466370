import { randomUUID } from "node:crypto";
import type { KernelMessage } from "@jupyterlab/services";
import type { JupyterServer } from "./jupyter-server.js";
import type { KernelInfo, KernelSessionEvents } from "./kernel-session.js";
import type { OutputGate } from "./output-gate.js";

/**
 * BENCHMARKS ONLY (bench/scenarios/orchestrator-scale.mjs). An in-process fake
 * kernel so one process can host thousands of workers that use the real
 * orchestrator connection, protocol and execution runner. It never runs code
 * and must never stand in for the real kernel in functional tests.
 *
 * Code it understands:
 * - `%stream <count> <bytes>`: `count` stdout stream messages of `bytes` bytes
 *   each, emitted in small batches (respecting the worker's backpressure pause).
 *   Each text starts with `@<process.hrtime.bigint()>;` (CLOCK_MONOTONIC, the
 *   same clock in every process on the machine) so a client can measure relay
 *   latency.
 * - anything else: echoed back as one stdout stream message.
 */
export interface SyntheticKernelOptions {
  /** Stream messages emitted per kernel per event-loop turn (default 16). */
  batch?: number;
}

/** The kernel info a synthetic worker reports in worker_ready. */
export const SYNTHETIC_KERNEL_INFO: KernelInfo = { name: "synthetic", language: "python", languageVersion: "synthetic" };

const STREAM_COMMAND = /^%stream\s+(\d+)\s+(\d+)\s*$/;
const PAUSED_RETRY_MS = 2;

interface Run {
  msgId: string;
  remaining: number;
  bytes: number;
  cancelled: boolean;
}

/** Has the methods of KernelSession the agent and the execution runner call. */
export class SyntheticKernel {
  private executionCount = 0;
  private current: Run | undefined;
  private stopped = false;
  private readonly session = randomUUID();
  private readonly batch: number;

  constructor(
    private readonly events: KernelSessionEvents,
    private readonly gate: OutputGate,
    options: SyntheticKernelOptions = {},
  ) {
    this.batch = Math.max(1, options.batch ?? 16);
  }

  async start(_server: { baseUrl: string; wsUrl: string; token: string }): Promise<KernelInfo> {
    return SYNTHETIC_KERNEL_INFO;
  }

  execute(code: string, _allowStdin: boolean): string {
    const msgId = randomUUID();
    const match = STREAM_COMMAND.exec(code.trim());
    const run: Run = { msgId, remaining: match ? Number(match[1]) : 0, bytes: match ? Number(match[2]) : 0, cancelled: false };
    this.current = run;
    this.executionCount += 1;
    setImmediate(() => {
      this.emit(run, "iopub", "status", { execution_state: "busy" });
      if (!match) {
        this.emit(run, "iopub", "stream", { name: "stdout", text: code });
        this.finish(run, "ok");
        return;
      }
      this.pump(run);
    });
    return msgId;
  }

  sendInputReply(): void {}

  async interrupt(): Promise<void> {
    const run = this.current;
    if (!run || run.cancelled) return;
    run.cancelled = true;
    this.emit(run, "iopub", "error", { ename: "KeyboardInterrupt", evalue: "", traceback: [] });
    this.finish(run, "error");
  }

  async restart(): Promise<void> {
    if (this.current) this.current.cancelled = true;
    this.current = undefined;
  }

  async recoverFromDeath(): Promise<void> {}

  async waitIdle(): Promise<void> {}

  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.current) this.current.cancelled = true;
  }

  private pump(run: Run): void {
    if (run.cancelled || this.stopped) return;
    if (this.gate.isPaused) {
      setTimeout(() => this.pump(run), PAUSED_RETRY_MS);
      return;
    }
    for (let i = 0; i < this.batch && run.remaining > 0; i++, run.remaining--) {
      const stamp = `@${process.hrtime.bigint()};`;
      this.emit(run, "iopub", "stream", { name: "stdout", text: stamp.padEnd(run.bytes, "x") });
    }
    if (run.remaining > 0) setImmediate(() => this.pump(run));
    else this.finish(run, "ok");
  }

  private finish(run: Run, status: "ok" | "error"): void {
    this.emit(run, "shell", "execute_reply", { status, execution_count: this.executionCount });
    this.emit(run, "iopub", "status", { execution_state: "idle" });
    if (this.current === run) this.current = undefined;
  }

  private emit(run: Run, channel: "iopub" | "shell", msgType: string, content: Record<string, unknown>): void {
    if (this.stopped) return;
    const msg = {
      channel,
      header: { msg_id: "", msg_type: msgType, session: this.session, username: "", date: "", version: "5.3" },
      parent_header: { msg_id: run.msgId },
      metadata: {},
      content,
      buffers: [],
    };
    this.events.onMessage(msg as unknown as KernelMessage.IMessage);
  }
}

/** Stands in for the Jupyter Server process a synthetic worker does not start. */
export function syntheticJupyterServer(): JupyterServer {
  return { baseUrl: "http://synthetic.invalid/", wsUrl: "ws://synthetic.invalid/", token: "", pid: undefined, exited: new Promise(() => undefined), stop: async () => {} };
}
