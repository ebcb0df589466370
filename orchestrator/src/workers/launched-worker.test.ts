import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { OrchestratorMessage } from "@tether/shared";
import { FakeWorkerHandle } from "../../../test/fakes/fake-worker-handle.js";
import { ErrorCodes, tetherError, type ErrorCode } from "../errors.js";
import type { LaunchExit, LaunchHandle, Launcher, LaunchRequest } from "../launchers/launcher.js";
import { MemoryClusterStore } from "../store/memory-store.js";
import { JoinTokens } from "./join-tokens.js";
import type { AttachedConnection } from "./launch-table.js";
import { LaunchTable } from "./launch-table.js";
import { LaunchedWorker } from "./launched-worker.js";
import { StartLimiter } from "./start-limiter.js";
import { WarmPool } from "./warm-pool.js";
import type { WorkerConnectionHandler } from "./worker-connection.js";

const logger = pino({ level: "silent" });
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A launcher whose launches the test ends by hand. */
class ManualLauncher implements Launcher {
  readonly kind = "manual";
  readonly requests: LaunchRequest[] = [];
  readonly exits: ((exit: LaunchExit) => void)[] = [];
  readonly stopped: string[] = [];
  failWith: Error | undefined;
  async launch(request: LaunchRequest): Promise<LaunchHandle> {
    if (this.failWith) throw this.failWith;
    this.requests.push(request);
    let exit!: (exit: LaunchExit) => void;
    const exited = new Promise<LaunchExit>((resolve) => (exit = resolve));
    this.exits.push(exit);
    return {
      launchId: request.launchId,
      exited,
      stop: async (reason) => {
        this.stopped.push(reason);
        exit({ code: 0, signal: null, reason, stderrTail: [] });
      },
    };
  }
  async stopAll(): Promise<void> {}
}

/** The connection a dialed-back worker would have: records what is sent, lets the test speak for the worker. */
class FakeConnection implements AttachedConnection {
  readonly workerId = "wrk_1";
  state: "open" | "closed" = "open";
  readonly delivered = 0;
  readonly resumeDigest = undefined;
  deferAcks(): void {}
  confirm(): void {}
  readonly sent: OrchestratorMessage[] = [];
  handler: WorkerConnectionHandler | undefined;
  setHandler(handler: WorkerConnectionHandler): void {
    this.handler = handler;
  }
  send(message: OrchestratorMessage): boolean {
    this.sent.push(message);
    return this.state === "open";
  }
  call = async () => ({}) as never;
  download = async () => ({}) as never;
  upload = async () => ({}) as never;
  pause(): void {}
  resume(): void {}
  shuttingDown(): void {}
  close(): void {
    this.state = "closed";
  }
  ready(): void {
    this.handler?.onMessage({ type: "worker_ready", kernel: { name: "python3", language: "python", languageVersion: "3" }, timings: { processStartMs: 0, jupyterReadyMs: 0, kernelReadyMs: 0 } }, new Uint8Array());
  }
  drop(code: ErrorCode = ErrorCodes.WORKER_LOST): void {
    this.state = "closed";
    this.handler?.onClose(code, "socket closed");
  }
}

function launched(options: { startTimeoutMs?: number; preload?: string } = {}) {
  const launcher = new ManualLauncher();
  const launches = new LaunchTable();
  const joinTokens = new JoinTokens(new MemoryClusterStore(), 60_000, logger);
  const worker = new LaunchedWorker(
    "lch_1",
    "ses_1",
    { launcher, joinTokens, launches, logger, orchestratorUrl: () => "ws://127.0.0.1:1/v1/workers/connect", workerEnv: { TETHER_LOG_LEVEL: "warn" }, startTimeoutMs: options.startTimeoutMs ?? 60_000 },
    options.preload,
  );
  return { worker, launcher, launches, joinTokens };
}

describe("a launched worker", () => {
  afterEach(() => vi.useRealTimers());

  it("mints a join token bound to its launch, waits for the dial-back, then for the kernel", async () => {
    const { worker, launcher, launches, joinTokens } = launched();
    const phases: string[] = [];
    worker.setListener({ phase: (p) => phases.push(p), message: () => undefined, lost: () => undefined });
    worker.start();
    await flush();
    const request = launcher.requests[0]!;
    expect(request).toMatchObject({ launchId: "lch_1", sessionId: "ses_1", env: { TETHER_LOG_LEVEL: "warn" } });
    expect(await joinTokens.consume(request.joinToken)).toMatchObject({ ok: true, binding: { launchId: "lch_1", sessionId: "ses_1" } });
    expect(launches.forWorker("lch_1")).toBe(worker);
    const connection = new FakeConnection();
    expect(worker.attachWorker(connection)).toBe(true);
    expect(worker.attachWorker(new FakeConnection())).toBe(false); // one worker per launch
    connection.ready();
    await worker.ready;
    expect(worker.state).toBe("ready");
    expect(worker.serving).toBe(true);
    expect(phases).toEqual(["connected", "ready"]);
  });

  it("fails the start at the start timeout, with a hint, and stops the launch", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { worker, launcher } = launched({ startTimeoutMs: 500 });
    worker.start();
    await vi.advanceTimersByTimeAsync(500);
    await expect(worker.ready).rejects.toMatchObject({ code: ErrorCodes.SESSION_START_TIMEOUT, hint: expect.stringContaining("TETHER_START_TIMEOUT_MS") });
    expect(worker.state).toBe("failed");
    expect(launcher.stopped).toHaveLength(1);
  });

  it("passes a launcher's own error through (e.g. a cloud 429 with Retry-After)", async () => {
    const { worker, launcher } = launched();
    launcher.failWith = tetherError(ErrorCodes.LAUNCH_THROTTLED, "throttled", { retryAfterS: 17 });
    worker.start();
    await expect(worker.ready).rejects.toMatchObject({ code: ErrorCodes.LAUNCH_THROTTLED, retryAfterS: 17 });
  });

  it("fails the start with the exit reason when the process ends before it is ready", async () => {
    const { worker, launcher } = launched();
    worker.start();
    await flush();
    launcher.exits[0]!({ code: 3, signal: null, reason: "the worker exited with code 3 (no usable Python runtime)", stderrTail: ['{"msg":"no usable Python runtime"}'] });
    await expect(worker.ready).rejects.toMatchObject({ code: ErrorCodes.SESSION_START_FAILED, message: expect.stringContaining("no usable Python runtime") });
  });

  it("runs the pool preload before it counts as ready, and reports a loss after ready to its holder once", async () => {
    const { worker, launcher } = launched({ preload: "import numpy" });
    const lost: string[] = [];
    worker.setListener({ phase: () => undefined, message: () => undefined, lost: (_code, message) => lost.push(message) });
    worker.start();
    await flush();
    const connection = new FakeConnection();
    worker.attachWorker(connection);
    connection.ready();
    expect(connection.sent).toContainEqual({ type: "execute", requestId: "tether-preload", code: "import numpy", timeoutMs: 60_000, stdin: { mode: "none" } });
    expect(worker.state).toBe("connected");
    connection.handler!.onMessage({ type: "done", requestId: "tether-preload", status: "ok", executionCount: 1, durationMs: 1, kernelRestarted: false, stateLost: false }, new Uint8Array());
    await worker.ready;
    connection.drop();
    launcher.exits[0]!({ code: null, signal: "SIGKILL", reason: "the worker was killed by SIGKILL", stderrTail: [] });
    await flush();
    await flush();
    expect(lost).toHaveLength(1);
    expect(lost[0]).toContain("SIGKILL");
    expect(worker.state).toBe("stopped");
  });
});

describe("the warm pool", () => {
  function pool(target = 2, maxStarts = 5) {
    const workers: FakeWorkerHandle[] = [];
    const warm = new WarmPool({
      targetSize: target,
      limiter: new StartLimiter(maxStarts),
      createWorker: () => {
        const worker = new FakeWorkerHandle(`lch_${workers.length + 1}`);
        workers.push(worker);
        return worker;
      },
      logger,
    });
    return { warm, workers };
  }

  it("fills to its target, hands out a ready worker before a starting one, and refills behind a claim", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { warm, workers } = pool(2);
    warm.start();
    expect(workers).toHaveLength(2);
    expect(workers.every((w) => w.started)).toBe(true);
    workers[1]!.becomeReady();
    await flush();
    expect(warm.status()).toEqual({ target: 2, ready: 1, starting: 1 });
    expect(warm.claim()).toBe(workers[1]);
    expect(warm.claim()).toBe(workers[0]); // still starting, but further along than a new launch
    expect(warm.claim()).toBeUndefined();
    expect(warm.status()).toEqual({ target: 2, ready: 0, starting: 2 }); // the refill is on its way
    vi.advanceTimersByTime(250);
    expect(workers).toHaveLength(4);
    vi.useRealTimers();
  });

  it("replaces an idle worker that dies, and backs off after a failed start", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { warm, workers } = pool(1);
    warm.start();
    workers[0]!.becomeReady();
    await flush();
    workers[0]!.lose();
    expect(workers).toHaveLength(2);
    workers[1]!.failStart();
    await flush();
    expect(workers).toHaveLength(2);
    vi.advanceTimersByTime(1000);
    expect(workers).toHaveLength(3);
    vi.useRealTimers();
  });

  it("stops every unclaimed worker when closed, and launches no more", async () => {
    const { warm, workers } = pool(2);
    warm.start();
    workers[0]!.becomeReady();
    const claimed = warm.claim() as FakeWorkerHandle | undefined;
    await warm.close();
    expect(workers.filter((w) => w !== claimed).every((w) => w.stopped !== undefined)).toBe(true);
    expect(claimed?.stopped).toBeUndefined();
  });
});
