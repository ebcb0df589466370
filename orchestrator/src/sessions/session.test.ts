import { Readable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ExecutionEvent, ServerMessage, SessionResumed, SessionStatusMessage } from "@tether/shared";
import { FakeWorkerHandle } from "../../../test/fakes/fake-worker-handle.js";
import { ErrorCodes, tetherError } from "../errors.js";
import type { RestoredFile, SnapshotFile, SnapshotLookup, SnapshotStore, SnapshotSummary, SweepResult } from "../snapshots/snapshot-store.js";
import { StartLimiter } from "../workers/start-limiter.js";
import { Session } from "./session.js";
import { SHUTDOWN_SNAPSHOT_MS } from "./scale-to-zero.js";
import { IllegalTransitionError, SessionLifecycle, isLegalTransition, type LifecycleState, type LifecycleStateName } from "./session-lifecycle.js";
import type { LoggedEvent } from "./event-log.js";
import type { SessionObserver } from "./session-observers.js";

const logger = pino({ level: "silent" });

/** Snapshots in memory; `expire(id)` turns one into an expiry marker, as the sweep does. */
class MemorySnapshots implements SnapshotStore {
  readonly kind = "local";
  readonly saved = new Map<string, Map<string, Buffer>>();
  readonly expired = new Set<string>();
  async init(): Promise<void> {}
  async save(sessionId: string, files: AsyncIterable<SnapshotFile>): Promise<SnapshotSummary> {
    const copy = new Map<string, Buffer>();
    for await (const file of files) {
      const chunks: Buffer[] = [];
      for await (const chunk of file.stream) chunks.push(Buffer.from(chunk as Uint8Array));
      copy.set(file.path, Buffer.concat(chunks));
    }
    this.saved.set(sessionId, copy);
    this.expired.delete(sessionId);
    return { files: copy.size, bytes: [...copy.values()].reduce((sum, b) => sum + b.byteLength, 0), savedAt: new Date().toISOString() };
  }
  async open(sessionId: string): Promise<SnapshotLookup> {
    if (this.expired.has(sessionId)) return { kind: "expired", savedAt: "2026-01-01T00:00:00.000Z", expiredAt: "2026-01-08T00:00:00.000Z" };
    const saved = this.saved.get(sessionId);
    if (!saved) return { kind: "none" };
    async function* files(): AsyncGenerator<RestoredFile> {
      for (const [path, bytes] of saved ?? []) yield { path, size: bytes.byteLength, stream: Readable.from([bytes]) };
    }
    return { kind: "found", summary: { files: saved.size, bytes: 0, savedAt: new Date().toISOString() }, files: files() };
  }
  expire(sessionId: string): void {
    this.saved.delete(sessionId);
    this.expired.add(sessionId);
  }
  async delete(sessionId: string): Promise<void> {
    this.saved.delete(sessionId);
    this.expired.delete(sessionId);
  }
  async sweep(): Promise<SweepResult> {
    return { expired: 0, removed: 0 };
  }
}

/** Everything one session sees, recorded (and checked to be numbered 1, 2, 3, ... with no gap). */
class Recorder implements SessionObserver {
  readonly events: ExecutionEvent[] = [];
  readonly notices: (SessionStatusMessage | SessionResumed)[] = [];
  readonly seqs: number[] = [];
  ended: { state: string; reason: string } | undefined;
  deliver(logged: LoggedEvent): void {
    const message = JSON.parse(new TextDecoder().decode(logged.frame)) as ServerMessage & { seq: number };
    expect(message.seq).toBe(logged.seq);
    this.seqs.push(message.seq);
    const { seq: _seq, ...rest } = message;
    if (rest.type === "session_status" || rest.type === "session_resumed") this.notices.push(rest);
    else if (rest.type !== "hello" && rest.type !== "protocol_error") this.events.push(rest);
  }
  sessionEnded(state: "stopped" | "failed", reason: string): void {
    this.ended = { state, reason };
  }
  phases(): string[] {
    return this.notices.flatMap((n) => (n.type === "session_status" ? [n.phase] : []));
  }
  dones(): ExecutionEvent[] {
    return this.events.filter((e) => e.type === "done");
  }
}

function harness(options: { idleTimeoutS?: number; maxLifetimeMs?: number } = {}) {
  const workers: FakeWorkerHandle[] = [];
  const snapshots = new MemorySnapshots();
  let disposed = false;
  const session = new Session("ses_1", "alice", {}, {
    logger,
    interruptGraceMs: 10,
    limiter: new StartLimiter(5),
    pool: undefined,
    snapshots,
    createWorker: () => {
      const worker = new FakeWorkerHandle(`lch_${workers.length + 1}`);
      workers.push(worker);
      return worker;
    },
    idleTimeoutS: options.idleTimeoutS ?? 600,
    maxLifetimeMs: options.maxLifetimeMs ?? 86_400_000,
    onDisposed: () => (disposed = true),
    events: { maxBytes: 1024 * 1024, retentionMs: 60_000, maxOutputBytes: 1024 * 1024 },
  });
  const observer = new Recorder();
  session.events.observers.add(observer);
  session.reserveStart();
  return { session, workers, snapshots, observer, disposed: () => disposed };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

async function readySession(options: { idleTimeoutS?: number; maxLifetimeMs?: number } = {}) {
  const h = harness(options);
  const started = h.session.start();
  await flush();
  h.workers[0]!.becomeReady();
  await started;
  return h;
}

const run = (session: Session, requestId: string, code = "1") => session.execute({ requestId, code, timeoutMs: 1000, stdin: { mode: "none" } }, undefined);

describe("the session lifecycle's transition table", () => {
  const names: LifecycleStateName[] = ["starting", "ready", "busy", "stopping", "stopped", "failed", "deleted"];
  const legal: Record<LifecycleStateName, LifecycleStateName[]> = {
    starting: ["starting", "ready", "failed", "stopped", "deleted"],
    ready: ["busy", "stopping", "stopped", "deleted"],
    busy: ["ready", "stopped", "deleted"],
    stopping: ["stopped", "deleted"],
    stopped: ["starting", "deleted"],
    failed: ["deleted"],
    deleted: [],
  };
  const worker = new FakeWorkerHandle("lch_x");
  const stateNamed = (name: LifecycleStateName): LifecycleState => {
    const stop = { kind: "idle_timeout" as const, message: "idle", at: "now" };
    switch (name) {
      case "starting":
        return { name, kind: "create", phase: "queued" };
      case "ready":
      case "busy":
        return { name, worker };
      case "stopping":
        return { name, stop, settled: Promise.resolve() };
      case "stopped":
        return { name, stop };
      case "failed":
        return { name, failure: { code: "X", message: "x" } };
      case "deleted":
        return { name, reason: "gone" };
    }
  };

  for (const from of names) {
    for (const to of names) {
      const allowed = legal[from].includes(to);
      it(`${allowed ? "allows" : "refuses"} ${from} -> ${to}`, () => {
        expect(isLegalTransition(from, to)).toBe(allowed);
        const changes: string[] = [];
        const lifecycle = new SessionLifecycle(stateNamed(from), logger, (a, b) => changes.push(`${a.name}->${b.name}`));
        if (allowed) {
          lifecycle.to(stateNamed(to));
          expect(lifecycle.name).toBe(to);
          expect(changes).toEqual([`${from}->${to}`]);
        } else {
          expect(() => lifecycle.to(stateNamed(to))).toThrow(IllegalTransitionError);
          expect(lifecycle.name).toBe(from);
          expect(changes).toEqual([]);
        }
      });
    }
  }
});

describe("a session over a fake worker", () => {
  afterEach(() => vi.useRealTimers());

  it("goes starting -> ready once the worker is ready, showing the phases on the way", async () => {
    const h = harness();
    const started = h.session.start();
    await flush();
    expect(h.session.state).toBe("starting");
    h.workers[0]!.progress("connected");
    expect(h.session.phase).toBe("connected");
    h.workers[0]!.becomeReady();
    await started;
    expect(h.session.state).toBe("ready");
    expect(h.observer.phases()).toEqual(["launching", "connected", "ready"]);
    expect(h.session.info()).toMatchObject({ status: "ready", phase: "ready", kernel: { language: "python" } });
  });

  it("fails a first start whose worker fails, ends queued executions, and disposes it", async () => {
    const h = harness();
    const started = h.session.start();
    run(h.session, "q1");
    await flush();
    h.workers[0]!.failStart("no python");
    await expect(started).rejects.toMatchObject({ code: ErrorCodes.SESSION_START_FAILED });
    expect(h.session.state).toBe("failed");
    expect(h.observer.dones()).toMatchObject([{ requestId: "q1", status: "worker_lost" }]);
    expect(h.observer.ended?.state).toBe("failed");
    expect(h.disposed()).toBe(true);
    expect(() => run(h.session, "q2")).toThrow(expect.objectContaining({ code: ErrorCodes.SESSION_FAILED }));
  });

  it("runs executions one at a time: ready -> busy -> ready, exactly one done each, in order", async () => {
    const h = await readySession();
    const worker = h.workers[0]!;
    run(h.session, "a");
    run(h.session, "b");
    expect(h.session.state).toBe("busy");
    expect(worker.sent.map((c) => c.type === "execute" && c.requestId)).toEqual(["a"]);
    expect(h.observer.events).toContainEqual({ type: "status", requestId: "b", state: "queued" });
    worker.done("a");
    expect(worker.lastExecute()?.requestId).toBe("b");
    worker.done("b");
    worker.done("b"); // a duplicate done changes nothing
    expect(h.session.state).toBe("ready");
    expect(h.observer.dones().map((d) => d.requestId)).toEqual(["a", "b"]);
  });

  it("refuses a duplicate requestId and an input reply nobody waits for, and keeps working", async () => {
    const h = await readySession();
    run(h.session, "a");
    expect(() => run(h.session, "a")).toThrow(expect.objectContaining({ code: ErrorCodes.EXEC_DUPLICATE_REQUEST_ID }));
    expect(() => h.session.inputReply("a", "x")).toThrow(expect.objectContaining({ code: ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT }));
    expect(() => h.session.inputReply("zz", "x")).toThrow(expect.objectContaining({ code: ErrorCodes.EXEC_UNKNOWN_REQUEST }));
    h.workers[0]!.emit({ type: "input_request", requestId: "a", prompt: "?", password: false });
    h.session.inputReply("a", "42");
    expect(h.workers[0]!.sent.at(-1)).toEqual({ type: "input_reply", requestId: "a", value: "42" });
    h.workers[0]!.done("a");
    expect(h.session.state).toBe("ready");
  });

  it("cancels a queued execution named by an interrupt, without touching the running one", async () => {
    const h = await readySession();
    run(h.session, "a");
    run(h.session, "b");
    await h.session.interrupt("b");
    expect(h.observer.dones()).toMatchObject([{ requestId: "b", status: "cancelled", failure: { code: ErrorCodes.EXEC_CANCELLED } }]);
    expect(h.workers[0]!.calls).toEqual([]);
    await h.session.interrupt("a");
    expect(h.workers[0]!.calls).toEqual([{ type: "interrupt", params: {} }]);
  });

  it("goes busy -> stopped when the worker is lost, ends every execution worker_lost, then resumes on the next execute with session_resumed", async () => {
    const h = await readySession();
    run(h.session, "a");
    run(h.session, "b");
    h.workers[0]!.lose("the worker process ended");
    expect(h.session.state).toBe("stopped");
    expect(h.session.info().stopReason).toMatchObject({ kind: "worker_lost", message: "the worker process ended" });
    expect(h.observer.dones()).toMatchObject([
      { requestId: "a", status: "worker_lost", stateLost: true },
      { requestId: "b", status: "worker_lost", stateLost: true },
    ]);
    run(h.session, "c");
    await flush();
    expect(h.session.state).toBe("starting");
    h.workers[1]!.becomeReady();
    await flush();
    expect(h.session.state).toBe("busy");
    expect(h.observer.notices.at(-1)).toEqual({ type: "session_resumed", requestId: "c", stateLost: true, restoredFiles: 0 });
    h.workers[1]!.done("c");
    expect(h.observer.dones().at(-1)).toMatchObject({ requestId: "c", status: "ok", stateLost: true });
  });

  it("scales to zero when idle: ready -> stopping -> stopped with a snapshot, and restores the files on resume", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = await readySession({ idleTimeoutS: 1 });
    h.workers[0]!.files.set("data.csv", Buffer.from("a,b\n"));
    vi.advanceTimersByTime(1000);
    expect(h.session.phase).toBe("stopping");
    vi.useRealTimers();
    while (h.session.phase !== "stopped") await flush();
    expect(h.snapshots.saved.get("ses_1")?.get("data.csv")?.toString()).toBe("a,b\n");
    expect(h.workers[0]!.stopped).toMatch(/No activity/);
    expect(h.observer.phases()).toEqual(["launching", "ready", "stopping", "stopped"]);
    run(h.session, "after");
    await flush();
    h.workers[1]!.becomeReady();
    while (h.session.state !== "busy") await flush();
    expect(h.workers[1]!.files.get("data.csv")?.toString()).toBe("a,b\n");
    expect(h.observer.notices.at(-1)).toMatchObject({ type: "session_resumed", restoredFiles: 1 });
  });

  it("restores the files into a resumed worker as soon as it joined, while its kernel starts, and runs nothing before both are done", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = await readySession({ idleTimeoutS: 1 });
    h.workers[0]!.files.set("data.csv", Buffer.from("a,b\n"));
    vi.advanceTimersByTime(1000);
    vi.useRealTimers();
    while (h.session.phase !== "stopped") await flush();
    run(h.session, "after");
    await flush();
    const resumed = h.workers[1]!;
    expect(resumed.files.size).toBe(0);
    resumed.progress("connected");
    for (let i = 0; i < 5; i++) await flush();
    // Joined, kernel not ready: the files are in, the execution waits.
    expect(resumed.files.get("data.csv")?.toString()).toBe("a,b\n");
    expect(h.session.info().phase).toBe("connected");
    expect(resumed.sent).toEqual([]);
    resumed.becomeReady();
    while (h.session.state !== "busy") await flush();
    expect(resumed.sent).toMatchObject([{ type: "execute", requestId: "after" }]);
    expect(h.observer.notices.at(-1)).toMatchObject({ type: "session_resumed", restoredFiles: 1 });
  });

  it("fails a resume whose worker fails: stopped again with resume_failed, its executions ended", async () => {
    const h = await readySession();
    h.workers[0]!.lose();
    run(h.session, "a");
    await flush();
    h.workers[1]!.failStart("image pull failed");
    await flush();
    expect(h.session.state).toBe("stopped");
    expect(h.session.info().stopReason).toMatchObject({ kind: "resume_failed" });
    expect(h.observer.dones().at(-1)).toMatchObject({ requestId: "a", status: "worker_lost" });
  });

  async function stoppedWithSnapshot() {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = await readySession({ idleTimeoutS: 1 });
    h.workers[0]!.files.set("data.csv", Buffer.from("a,b\n"));
    vi.advanceTimersByTime(1000);
    vi.useRealTimers();
    while (h.session.phase !== "stopped") await flush();
    return h;
  }

  it("fails the resume of a session whose snapshot expired with SNAPSHOT_EXPIRED, once: snapshot.lost says so, the next call resumes empty", async () => {
    const h = await stoppedWithSnapshot();
    h.snapshots.expire("ses_1");
    run(h.session, "a");
    while (h.observer.dones().length === 0) await flush();
    expect(h.observer.dones()).toMatchObject([{ requestId: "a", status: "cancelled", failure: { code: ErrorCodes.SNAPSHOT_EXPIRED } }]);
    expect(h.session.info()).toMatchObject({ status: "stopped", stopReason: { kind: "resume_failed" }, snapshot: { lost: "expired" } });
    // The worker the resume had obtained is let go without serving.
    expect(h.workers[1]!.stopped).toMatch(/are gone/);
    run(h.session, "b");
    while (h.workers.length < 3) await flush();
    h.workers[2]!.becomeReady();
    while (h.session.state !== "busy") await flush();
    expect(h.observer.notices.at(-1)).toMatchObject({ type: "session_resumed", requestId: "b", restoredFiles: 0 });
    expect(h.workers[2]!.files.size).toBe(0);
  });

  it("fails the resume of a session whose snapshot vanished from the store with SNAPSHOT_MISSING", async () => {
    const h = await stoppedWithSnapshot();
    h.snapshots.saved.delete("ses_1");
    await expect(h.session.files.list()).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_MISSING, statusCode: 410 });
    expect(h.session.info().snapshot).toMatchObject({ files: 1, lost: "missing" });
  });

  it("fails a resume whose restore fails part way instead of serving part of the files", async () => {
    const h = await stoppedWithSnapshot();
    run(h.session, "a");
    while (h.workers.length < 2) await flush();
    h.workers[1]!.upload = async () => {
      throw tetherError(ErrorCodes.FILE_IO, "disk full");
    };
    h.workers[1]!.becomeReady();
    while (h.observer.dones().length === 0) await flush();
    expect(h.observer.dones()).toMatchObject([{ requestId: "a", status: "worker_lost", failure: { code: ErrorCodes.FILE_IO } }]);
    expect(h.session.info()).toMatchObject({ status: "stopped", stopReason: { kind: "resume_failed" } });
    expect(h.snapshots.saved.get("ses_1")?.get("data.csv")?.toString()).toBe("a,b\n");
  });

  it("at shutdown snapshots an idle session and keeps it (stopReason orchestrator_shutdown); a stopped one keeps its snapshot too", async () => {
    const h = await readySession();
    h.workers[0]!.files.set("notes.txt", Buffer.from("keep me"));
    await h.session.release("orchestrator shutting down");
    expect(h.snapshots.saved.get("ses_1")?.get("notes.txt")?.toString()).toBe("keep me");
    expect(h.session.info()).toMatchObject({ status: "stopped", stopReason: { kind: "orchestrator_shutdown" }, snapshot: { files: 1 } });
    expect(h.session.info().stopReason).not.toHaveProperty("filesLost");
    expect(h.workers[0]!.stopped).toBe("orchestrator shutting down");
    // A second release (stopped now) changes nothing and deletes nothing.
    await h.session.release("again");
    expect(h.snapshots.saved.has("ses_1")).toBe(true);
    expect(h.disposed()).toBe(false);
  });

  it("at shutdown gives a snapshot SHUTDOWN_SNAPSHOT_MS, then stops the worker and keeps the previous snapshot", async () => {
    const h = await readySession();
    h.snapshots.saved.set("ses_1", new Map([["old.txt", Buffer.from("previous")]]));
    // A worker that never answers files_list.
    h.workers[0]!.call = () => new Promise<never>(() => undefined);
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const released = h.session.release("orchestrator shutting down");
    await vi.advanceTimersByTimeAsync(SHUTDOWN_SNAPSHOT_MS);
    vi.useRealTimers();
    await released;
    expect(h.workers[0]!.stopped).toBe("orchestrator shutting down");
    // Files written since the previous snapshot are gone, and the session says so.
    expect(h.session.info()).toMatchObject({ status: "stopped", stopReason: { kind: "orchestrator_shutdown", filesLost: true } });
    expect(h.session.info().stopReason?.message).toMatch(/snapshot failed .*files written since the previous snapshot are lost/);
    expect(h.snapshots.saved.get("ses_1")?.get("old.txt")?.toString()).toBe("previous");
  });

  it("at shutdown stops a busy session's worker without deleting its snapshot", async () => {
    const h = await readySession();
    h.snapshots.saved.set("ses_1", new Map([["old.txt", Buffer.from("from an earlier stop")]]));
    run(h.session, "a");
    await h.session.release("orchestrator shutting down");
    expect(h.observer.dones()).toMatchObject([{ requestId: "a", status: "cancelled" }]);
    expect(h.snapshots.saved.has("ses_1")).toBe(true);
  });

  it("is deleted from any state: executions cancelled, observers told, worker stopped, snapshot forgotten, then refuses everything", async () => {
    const h = await readySession();
    run(h.session, "a");
    h.snapshots.saved.set("ses_1", new Map());
    await h.session.stop("deleted by the client");
    expect(h.session.state).toBe("stopped");
    expect(h.observer.dones()).toMatchObject([{ requestId: "a", status: "cancelled", failure: { code: ErrorCodes.SESSION_STOPPED } }]);
    expect(h.observer.ended).toEqual({ state: "stopped", reason: "deleted by the client" });
    expect(h.workers[0]!.stopped).toBe("deleted by the client");
    expect(h.snapshots.saved.has("ses_1")).toBe(false);
    expect(h.disposed()).toBe(true);
    expect(() => run(h.session, "b")).toThrow(expect.objectContaining({ code: ErrorCodes.SESSION_STOPPED }));
    await expect(h.session.files.list()).rejects.toMatchObject({ code: ErrorCodes.SESSION_STOPPED });
    // A second delete is the same delete.
    await h.session.stop("again");
  });

  it("is deleted while its first worker is still starting: the start rejects with SESSION_STOPPED and the worker is stopped", async () => {
    const h = harness();
    const started = h.session.start();
    await flush();
    await h.session.stop("deleted early");
    await expect(started).rejects.toMatchObject({ code: ErrorCodes.SESSION_STOPPED });
    expect(h.workers[0]!.stopped).toBe("deleted early");
  });

  it("holds a new worker back for a client that is still backed up, and pauses the backstop meanwhile", async () => {
    const h = await readySession();
    const client = {};
    h.session.backpressure.pause(client);
    expect(h.workers[0]!.paused.has(client)).toBe(true);
    h.workers[0]!.lose();
    run(h.session, "a");
    await flush();
    h.workers[1]!.becomeReady();
    await flush();
    expect(h.workers[1]!.paused.has(client)).toBe(true);
    h.session.backpressure.resume(client);
    expect(h.workers[1]!.paused.size).toBe(0);
  });
});
