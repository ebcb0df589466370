import type { KernelMessage } from "@jupyterlab/services";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCodes, type WorkerMessage } from "@tether/shared";
import { ExecutionRunner, type ExecutionKernel } from "./execution-runner.js";

const logger = pino({ level: "silent" });

/** A kernel the test drives by hand: it records what the runner asks and replies when told to. */
class FakeKernel implements ExecutionKernel {
  readonly executed: { msgId: string; code: string; allowStdin: boolean }[] = [];
  readonly inputReplies: string[] = [];
  interrupts = 0;
  restarts = 0;
  recoveries = 0;
  /** What the next restart / recovery does: resolve, or hang until the test settles it. */
  restartBehaviour: "ok" | "fail" | "hang" = "ok";
  private pendingRestart: { resolve(): void; reject(error: Error): void } | undefined;
  private next = 1;
  runner!: ExecutionRunner;

  execute(code: string, allowStdin: boolean): string {
    const msgId = `m${this.next++}`;
    this.executed.push({ msgId, code, allowStdin });
    return msgId;
  }

  sendInputReply(value: string): void {
    this.inputReplies.push(value);
  }

  async interrupt(): Promise<void> {
    this.interrupts += 1;
  }

  restart(): Promise<void> {
    this.restarts += 1;
    return this.settleLikeBehaviour();
  }

  recoverFromDeath(): Promise<void> {
    this.recoveries += 1;
    return this.settleLikeBehaviour();
  }

  finishPendingRestart(ok = true): void {
    const pending = this.pendingRestart;
    this.pendingRestart = undefined;
    if (ok) pending?.resolve();
    else pending?.reject(new Error("no kernel"));
  }

  private settleLikeBehaviour(): Promise<void> {
    if (this.restartBehaviour === "ok") return Promise.resolve();
    if (this.restartBehaviour === "fail") return Promise.reject(new Error("restart failed"));
    return new Promise((resolve, reject) => (this.pendingRestart = { resolve, reject }));
  }

  // ---- kernel messages, as Jupyter sends them ------------------------------

  private message(channel: "iopub" | "shell" | "stdin", parent: string, msgType: string, content: Record<string, unknown>): KernelMessage.IMessage {
    return {
      channel,
      header: { msg_id: `k${this.next++}`, msg_type: msgType, session: "s", username: "", date: "", version: "5.3" },
      parent_header: { msg_id: parent },
      metadata: {},
      content,
      buffers: [],
    } as unknown as KernelMessage.IMessage;
  }

  stdout(parent: string, text: string): void {
    this.runner.onKernelMessage(this.message("iopub", parent, "stream", { name: "stdout", text }));
  }

  error(parent: string, ename: string): void {
    this.runner.onKernelMessage(this.message("iopub", parent, "error", { ename, evalue: "", traceback: [] }));
  }

  inputRequest(parent: string, prompt: string): void {
    this.runner.onKernelMessage(this.message("stdin", parent, "input_request", { prompt, password: false }));
  }

  finish(parent: string, status: "ok" | "error" = "ok"): void {
    this.runner.onKernelMessage(this.message("shell", parent, "execute_reply", { status, execution_count: 1 }));
    this.runner.onKernelMessage(this.message("iopub", parent, "status", { execution_state: "idle" }));
  }
}

describe("the execution runner over a fake kernel", () => {
  let kernel: FakeKernel;
  let sent: WorkerMessage[];
  let runner: ExecutionRunner;
  const dones = () => sent.filter((m) => m.type === "done");
  const settle = async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };

  beforeEach(() => {
    vi.useFakeTimers();
    kernel = new FakeKernel();
    sent = [];
    runner = new ExecutionRunner(kernel, (msg) => sent.push(msg), { interruptGraceMs: 100, logger });
    kernel.runner = runner;
  });
  afterEach(() => vi.useRealTimers());

  const execute = (requestId: string, timeoutMs = 1000, stdin: { mode: "none" } | { mode: "lines"; lines: string[] } | { mode: "interactive" } = { mode: "none" }) =>
    runner.enqueue({ type: "execute", requestId, code: `code ${requestId}`, timeoutMs, stdin });

  it("ends an execution once both its reply and idle arrived, then runs the next", () => {
    execute("a");
    execute("b");
    expect(kernel.executed.map((e) => e.code)).toEqual(["code a"]);
    kernel.stdout("m1", "hi\n");
    kernel.finish("m1");
    expect(dones()).toMatchObject([{ requestId: "a", status: "ok", kernelRestarted: false, stateLost: false }]);
    expect(sent[0]).toEqual({ type: "stream", requestId: "a", name: "stdout", text: "hi\n" });
    expect(kernel.executed.map((e) => e.code)).toEqual(["code a", "code b"]);
  });

  it("interrupts at the timeout and keeps the kernel when the interrupt works", async () => {
    execute("a", 1000);
    vi.advanceTimersByTime(1000);
    expect(kernel.interrupts).toBe(1);
    kernel.error("m1", "KeyboardInterrupt");
    kernel.finish("m1", "error");
    expect(dones()).toMatchObject([{ requestId: "a", status: "timeout", kernelRestarted: false, stateLost: false, failure: { code: ErrorCodes.EXEC_TIMEOUT } }]);
    expect(kernel.restarts).toBe(0);
  });

  it("restarts the kernel after the grace when the interrupt is ignored, says state is lost, and runs what waited", async () => {
    execute("a", 1000);
    execute("b");
    vi.advanceTimersByTime(1000);
    vi.advanceTimersByTime(100);
    await settle();
    expect(kernel.restarts).toBe(1);
    expect(dones()).toMatchObject([{ requestId: "a", status: "timeout", kernelRestarted: true, stateLost: true, failure: { code: ErrorCodes.EXEC_TIMEOUT } }]);
    expect(kernel.executed.map((e) => e.code)).toEqual(["code a", "code b"]);
    // Late messages of the abandoned execution are not b's.
    kernel.finish("m1");
    expect(dones()).toHaveLength(1);
  });

  it("ends the execution kernel_died when the kernel dies, once the replacement is up; a death during that recovery still ends it once", async () => {
    kernel.restartBehaviour = "hang";
    execute("a");
    runner.onKernelDeath("the kernel process died", false);
    expect(sent).toContainEqual({ type: "kernel_died", requestId: "a", reason: "the kernel process died", restarted: false });
    expect(dones()).toHaveLength(0);
    // The replacement dies too: a second death report while recovering.
    runner.onKernelDeath("the kernel process died", false);
    kernel.finishPendingRestart(true);
    await settle();
    kernel.finishPendingRestart(true);
    await settle();
    expect(dones()).toMatchObject([{ requestId: "a", status: "kernel_died", kernelRestarted: true, stateLost: true, failure: { code: ErrorCodes.KERNEL_DIED } }]);
  });

  it("reports KERNEL_RESTART_FAILED when no replacement kernel comes up", async () => {
    kernel.restartBehaviour = "fail";
    execute("a");
    runner.onKernelDeath("the kernel died and could not be restarted", true);
    await settle();
    expect(dones()).toMatchObject([{ requestId: "a", status: "kernel_died", kernelRestarted: false, stateLost: true, failure: { code: ErrorCodes.KERNEL_RESTART_FAILED } }]);
  });

  it("answers input() from stdin lines, and interrupts with StdinExhausted when they run out", () => {
    execute("a", 1000, { mode: "lines", lines: ["2"] });
    expect(kernel.executed[0]?.allowStdin).toBe(true);
    kernel.inputRequest("m1", "a? ");
    expect(kernel.inputReplies).toEqual(["2"]);
    kernel.inputRequest("m1", "b? ");
    expect(kernel.interrupts).toBe(1);
    kernel.error("m1", "KeyboardInterrupt");
    kernel.finish("m1", "error");
    expect(sent).toContainEqual(expect.objectContaining({ type: "error", requestId: "a", name: "StdinExhausted" }));
    expect(dones()).toMatchObject([{ requestId: "a", status: "error", failure: { code: ErrorCodes.EXEC_STDIN_EXHAUSTED } }]);
  });

  it("forwards prompts in interactive mode and refuses a reply nobody waits for", () => {
    execute("a", 1000, { mode: "interactive" });
    expect(() => runner.inputReply("a", "x")).toThrow(expect.objectContaining({ code: ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT }));
    kernel.inputRequest("m1", "name? ");
    expect(sent).toContainEqual({ type: "input_request", requestId: "a", prompt: "name? ", password: false });
    runner.inputReply("a", "Ada");
    expect(kernel.inputReplies).toEqual(["Ada"]);
  });

  it("ends a running execution cancelled when someone restarts the kernel", async () => {
    execute("a");
    await runner.restart();
    expect(dones()).toMatchObject([{ requestId: "a", status: "cancelled", kernelRestarted: true, stateLost: true, failure: { code: ErrorCodes.EXEC_CANCELLED } }]);
  });

  it("refuses a requestId already queued or running", () => {
    execute("a");
    expect(() => execute("a")).toThrow(expect.objectContaining({ code: ErrorCodes.EXEC_DUPLICATE_REQUEST_ID }));
  });
});

describe("the execution runner when the kernel never replies", () => {
  afterEach(() => vi.useRealTimers());

  it("ends an execution whose kernel went idle without an execute_reply, instead of waiting for its timeout", () => {
    vi.useFakeTimers();
    const kernel = new FakeKernel();
    const sent: WorkerMessage[] = [];
    const runner = new ExecutionRunner(kernel, (msg) => sent.push(msg), { interruptGraceMs: 100, logger });
    kernel.runner = runner;
    runner.enqueue({ type: "execute", requestId: "a", code: "x", timeoutMs: 60_000, stdin: { mode: "none" } });
    runner.onKernelMessage({
      channel: "iopub",
      header: { msg_id: "s", msg_type: "status", session: "s", username: "", date: "", version: "5.3" },
      parent_header: { msg_id: "m1" },
      metadata: {},
      content: { execution_state: "idle" },
      buffers: [],
    } as unknown as KernelMessage.IMessage);
    vi.advanceTimersByTime(2999);
    expect(sent.filter((m) => m.type === "done")).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(sent.filter((m) => m.type === "done")).toMatchObject([{ requestId: "a", status: "error", failure: { code: ErrorCodes.EXEC_NO_REPLY } }]);
  });
});
