import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { BlobServiceClient, type ContainerClient } from "@azure/storage-blob";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { AzureBlobSnapshotStore } from "../orchestrator/src/snapshots/azure-blob-snapshot-store.js";
import { LocalDirectorySnapshotStore } from "../orchestrator/src/snapshots/local-snapshot-store.js";
import { SnapshotExpiry } from "../orchestrator/src/snapshots/snapshot-manifest.js";
import type { SnapshotFile, SnapshotLookup, SnapshotStore } from "../orchestrator/src/snapshots/snapshot-store.js";
import { startTestAzurite, type TestAzurite } from "./helpers/azurite.js";

const logger = pino({ level: "silent" });
const MiB = 1024 * 1024;

/** What a store must do, whatever holds the bytes; `backend` lets a test look underneath. */
interface StoreUnderTest {
  /** A store over the shared backend (each call: another replica's view of it). */
  make(options?: { ttlMs?: number; staleGenerationMs?: number }): SnapshotStore;
  /** Every object (file or blob) the backend holds for a session, relative to its prefix. */
  objectsOf(sessionId: string): Promise<string[]>;
  /** Leaves a generation as a crashed save would: files, no manifest naming them. */
  plantCrashedGeneration(sessionId: string, generation: string): Promise<void>;
}

function filesOf(entries: Record<string, Buffer>): AsyncIterable<SnapshotFile> {
  return (async function* () {
    for (const [path, bytes] of Object.entries(entries)) {
      // In pieces, like a worker download.
      const pieces = bytes.byteLength === 0 ? [] : [bytes.subarray(0, Math.ceil(bytes.byteLength / 3)), bytes.subarray(Math.ceil(bytes.byteLength / 3))];
      yield { path, stream: Readable.from(pieces) };
    }
  })();
}

async function readAll(lookup: SnapshotLookup): Promise<Record<string, Buffer>> {
  if (lookup.kind !== "found") throw new Error(`expected a snapshot, got ${lookup.kind}`);
  const out: Record<string, Buffer> = {};
  for await (const file of lookup.files) {
    const chunks: Buffer[] = [];
    for await (const chunk of file.stream) chunks.push(Buffer.from(chunk));
    out[file.path] = Buffer.concat(chunks);
    expect(out[file.path]!.byteLength).toBe(file.size);
  }
  return out;
}

const sha = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
let sessionCounter = 0;
const newSessionId = (): string => `ses_${Date.now().toString(36)}${(sessionCounter += 1)}`;

function contract(name: string, setup: () => Promise<{ subject: StoreUnderTest; teardown(): Promise<void> }>): void {
  describe(`the ${name} snapshot store`, () => {
    let subject: StoreUnderTest;
    let teardown: () => Promise<void>;

    beforeAll(async () => {
      ({ subject, teardown } = await setup());
      await subject.make().init();
    });
    afterAll(async () => {
      await teardown?.();
    });

    it("saves files and gives them back byte for byte, with a summary that says when it expires", async () => {
      const store = subject.make({ ttlMs: 3_600_000 });
      const id = newSessionId();
      const big = randomBytes(6 * MiB);
      // Names a URL or a blob name could mangle: spaces, '#', '?', '%', a trailing dot, non-ASCII.
      const odd = "odd dir/a #b?c%20d.ünï.";
      const summary = await store.save(id, filesOf({ "a.txt": Buffer.from("alpha"), "deep/er/b.bin": big, "empty.txt": Buffer.alloc(0), [odd]: Buffer.from("odd") }));
      expect(summary).toMatchObject({ files: 4, bytes: 5 + 6 * MiB + 3 });
      expect(Date.parse(summary.expiresAt!) - Date.parse(summary.savedAt)).toBe(3_600_000);
      const lookup = await store.open(id);
      expect(lookup).toMatchObject({ kind: "found", summary: { files: 4, savedAt: summary.savedAt } });
      const back = await readAll(lookup);
      expect(Object.keys(back).sort()).toEqual(["a.txt", "deep/er/b.bin", "empty.txt", odd].sort());
      expect(back[odd]!.toString()).toBe("odd");
      expect(back["a.txt"]!.toString()).toBe("alpha");
      expect(sha(back["deep/er/b.bin"]!)).toBe(sha(big));
      expect(back["empty.txt"]!.byteLength).toBe(0);
    });

    it("has nothing for a session that never saved", async () => {
      expect(await subject.make().open(newSessionId())).toEqual({ kind: "none" });
    });

    it("replaces a snapshot atomically and deletes the generation it replaced", async () => {
      const store = subject.make();
      const id = newSessionId();
      await store.save(id, filesOf({ "old.txt": Buffer.from("old"), "both.txt": Buffer.from("v1") }));
      await store.save(id, filesOf({ "new.txt": Buffer.from("new"), "both.txt": Buffer.from("v2") }));
      const back = await readAll(await store.open(id));
      expect(Object.fromEntries(Object.entries(back).map(([k, v]) => [k, v.toString()]))).toEqual({ "new.txt": "new", "both.txt": "v2" });
      const objects = await subject.objectsOf(id);
      // One generation (two files) and the manifest: the first generation is gone.
      expect(objects.filter((o) => o !== "manifest.json").map((o) => o.split("/")[0])).toEqual(expect.arrayContaining([expect.stringMatching(/^g-/)]));
      expect(new Set(objects.filter((o) => o !== "manifest.json").map((o) => o.split("/")[0])).size).toBe(1);
      expect(objects).toContain("manifest.json");
    });

    it("keeps the previous snapshot when a save fails part way, and leaves nothing of the failed one", async () => {
      const store = subject.make();
      const id = newSessionId();
      await store.save(id, filesOf({ "kept.txt": Buffer.from("the good copy") }));
      const before = await subject.objectsOf(id);
      const failing = (async function* (): AsyncGenerator<SnapshotFile> {
        yield { path: "first.txt", stream: Readable.from([Buffer.from("written")]) };
        yield {
          path: "second.bin",
          stream: (async function* () {
            yield Buffer.alloc(1024, 1);
            throw new Error("the worker went away mid-file");
          })(),
        };
      })();
      await expect(store.save(id, failing)).rejects.toThrow(/went away/);
      const back = await readAll(await store.open(id));
      expect(Object.keys(back)).toEqual(["kept.txt"]);
      expect(back["kept.txt"]!.toString()).toBe("the good copy");
      expect((await subject.objectsOf(id)).sort()).toEqual(before.sort());
    });

    it("refuses a path that leaves the workspace, keeping the previous snapshot", async () => {
      const store = subject.make();
      const id = newSessionId();
      await store.save(id, filesOf({ "ok.txt": Buffer.from("ok") }));
      await expect(store.save(id, filesOf({ "../escape.txt": Buffer.from("x") }))).rejects.toMatchObject({ code: ErrorCodes.PATH_ESCAPES_WORKSPACE });
      expect(Object.keys(await readAll(await store.open(id)))).toEqual(["ok.txt"]);
    });

    it("expires a snapshot older than the TTL (a marker says so), then drops the marker after as long again", async () => {
      const ttlMs = 400;
      const store = subject.make({ ttlMs });
      const id = newSessionId();
      const fresh = newSessionId();
      const summary = await store.save(id, filesOf({ "a.txt": Buffer.from("a"), "b/c.txt": Buffer.from("c") }));
      await delay(ttlMs + 50);
      await store.save(fresh, filesOf({ "new.txt": Buffer.from("n") }));
      const swept = await store.sweep();
      // Snapshots of earlier tests in the same backend are past this TTL too.
      expect(swept.expired).toBeGreaterThanOrEqual(1);
      const lookup = await store.open(id);
      expect(lookup).toMatchObject({ kind: "expired", savedAt: summary.savedAt });
      expect(await subject.objectsOf(id)).toEqual(["manifest.json"]);
      // The fresh one is untouched.
      expect(Object.keys(await readAll(await store.open(fresh)))).toEqual(["new.txt"]);
      await delay(ttlMs + 50);
      const second = await store.sweep();
      expect(second.removed).toBeGreaterThanOrEqual(1);
      expect(await store.open(id)).toEqual({ kind: "none" });
      expect(await subject.objectsOf(id)).toEqual([]);
    });

    it("never expires anything with a TTL of 0", async () => {
      const store = subject.make({ ttlMs: 0 });
      const id = newSessionId();
      const summary = await store.save(id, filesOf({ "a.txt": Buffer.from("a") }));
      expect(summary.expiresAt).toBeUndefined();
      await store.sweep();
      expect((await store.open(id)).kind).toBe("found");
    });

    it("sweeps a crashed save's generation once it is stale, never the current one and never a fresh one", async () => {
      // Blob listings give Last-Modified to the second: a threshold well above that.
      const store = subject.make({ staleGenerationMs: 2000 });
      const id = newSessionId();
      await store.save(id, filesOf({ "live.txt": Buffer.from("live") }));
      await subject.plantCrashedGeneration(id, "g-0-abcdef");
      await store.sweep();
      expect((await subject.objectsOf(id)).some((o) => o.startsWith("g-0-abcdef/"))).toBe(true);
      await delay(3000);
      await store.sweep();
      expect((await subject.objectsOf(id)).some((o) => o.startsWith("g-0-abcdef/"))).toBe(false);
      expect(Object.keys(await readAll(await store.open(id)))).toEqual(["live.txt"]);
    });

    it("deletes a session's snapshot and its expiry marker", async () => {
      const store = subject.make({ ttlMs: 200 });
      const id = newSessionId();
      await store.save(id, filesOf({ "a.txt": Buffer.from("a") }));
      await delay(250);
      await store.sweep();
      expect((await store.open(id)).kind).toBe("expired");
      await store.delete(id);
      expect(await store.open(id)).toEqual({ kind: "none" });
      expect(await subject.objectsOf(id)).toEqual([]);
    });

    it("is shared: another replica reads what one saved, and concurrent saves of one session leave one complete snapshot", async () => {
      const a = subject.make();
      const b = subject.make();
      const id = newSessionId();
      await a.save(id, filesOf({ "from-a.txt": Buffer.from("A") }));
      expect(Object.keys(await readAll(await b.open(id)))).toEqual(["from-a.txt"]);
      const setA = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`a/${i}.txt`, Buffer.from(`a${i}`)]));
      const setB = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`b/${i}.txt`, Buffer.from(`b${i}`)]));
      const results = await Promise.allSettled([a.save(id, filesOf(setA)), b.save(id, filesOf(setB))]);
      expect(results.some((r) => r.status === "fulfilled")).toBe(true);
      const back = Object.keys(await readAll(await a.open(id))).sort();
      expect([Object.keys(setA).sort(), Object.keys(setB).sort()]).toContainEqual(back);
    });
  });
}

contract("local directory", async () => {
  const root = await mkdtemp(join(tmpdir(), "tether-snapshots-"));
  const subject: StoreUnderTest = {
    make: (options = {}) => new LocalDirectorySnapshotStore({ root, expiry: new SnapshotExpiry(options.ttlMs ?? 3_600_000), logger, ...(options.staleGenerationMs === undefined ? {} : { staleGenerationMs: options.staleGenerationMs }) }),
    async objectsOf(sessionId) {
      const out: string[] = [];
      const walk = async (relative: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(join(root, sessionId, relative), { withFileTypes: true });
        } catch {
          return;
        }
        for (const entry of entries) {
          const child = relative ? `${relative}/${entry.name}` : entry.name;
          if (entry.isDirectory()) await walk(child);
          else out.push(child);
        }
      };
      await walk("");
      return out;
    },
    async plantCrashedGeneration(sessionId, generation) {
      await mkdir(join(root, sessionId, generation, "sub"), { recursive: true });
      await writeFile(join(root, sessionId, generation, "sub", "half.bin"), "half");
    },
  };
  return { subject, teardown: () => rm(root, { recursive: true, force: true }) };
});

let azurite: TestAzurite | undefined;
async function containerOf(name: string): Promise<ContainerClient> {
  azurite ??= await startTestAzurite();
  // One try per call: a test that stops the emulator wants the failure now, not after backoff.
  return BlobServiceClient.fromConnectionString(azurite.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(name);
}

contract("Azure Blob (azurite)", async () => {
  const container = await containerOf("contract");
  const subject: StoreUnderTest = {
    make: (options = {}) =>
      new AzureBlobSnapshotStore({ container, expiry: new SnapshotExpiry(options.ttlMs ?? 3_600_000), logger, ...(options.staleGenerationMs === undefined ? {} : { staleGenerationMs: options.staleGenerationMs }) }),
    async objectsOf(sessionId) {
      const out: string[] = [];
      for await (const blob of container.listBlobsFlat({ prefix: `${sessionId}/` })) out.push(blob.name.slice(sessionId.length + 1));
      return out;
    },
    async plantCrashedGeneration(sessionId, generation) {
      const body = Buffer.from("half");
      await container.getBlockBlobClient(`${sessionId}/${generation}/sub/half.bin`).upload(body, body.byteLength);
    },
  };
  return { subject, teardown: async () => undefined };
});

describe("the Azure Blob snapshot store when storage is down", () => {
  afterAll(async () => {
    await azurite?.close();
  });

  it("fails saves, reads and the start check with 503 SNAPSHOT_UNAVAILABLE while storage is down", async () => {
    const container = await containerOf("outage");
    const store = new AzureBlobSnapshotStore({ container, expiry: new SnapshotExpiry(3_600_000), logger });
    await store.init();
    const id = newSessionId();
    await store.save(id, filesOf({ "a.txt": Buffer.from("a") }));
    await azurite!.stop();
    await expect(store.open(id)).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_UNAVAILABLE, statusCode: 503 });
    await expect(store.save(id, filesOf({ "b.txt": Buffer.from("b") }))).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_UNAVAILABLE });
    await expect(store.init()).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_UNAVAILABLE });
  });
});

describe("the local snapshot store's leftovers", () => {
  it("sweeps the staging and replaced directories the previous layout left behind (<id>.saving-*, <id>.old-*) and never restores them", async () => {
    const root = await mkdtemp(join(tmpdir(), "tether-snapshots-"));
    try {
      const store = new LocalDirectorySnapshotStore({ root, expiry: new SnapshotExpiry(3_600_000), logger, staleGenerationMs: 60_000 });
      for (const name of ["ses_x.saving-0a1b2c", "ses_x.old-0a1b2c", "ses_y.saving-ffffff"]) {
        await mkdir(join(root, name), { recursive: true });
        await writeFile(join(root, name, "f.txt"), "leftover");
      }
      const past = new Date(Date.now() - 120_000);
      await utimes(join(root, "ses_x.saving-0a1b2c"), past, past);
      expect(await store.open("ses_x")).toEqual({ kind: "none" });
      const swept = await store.sweep();
      expect(swept.removed).toBe(2);
      // A fresh staging dir may be another process's save in progress: kept until stale.
      expect((await readdir(root)).sort()).toEqual(["ses_y.saving-ffffff"]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
