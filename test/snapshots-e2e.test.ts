import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { startTestAzurite, type TestAzurite } from "./helpers/azurite.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { expectStatus } from "./helpers/rest.js";
import { StreamClient } from "./helpers/ws.js";

/** Writes a text file and 3 MiB of random bytes; prints the binary's sha256. */
const WRITE_FILES = [
  "import hashlib, os",
  "os.makedirs('data/raw', exist_ok=True)",
  "open('data/notes.txt', 'w').write('kept across the stop')",
  "blob = os.urandom(3 * 1024 * 1024)",
  "open('data/raw/blob.bin', 'wb').write(blob)",
  "print(hashlib.sha256(blob).hexdigest())",
].join("\n");
const READ_FILES = "import hashlib\nprint(open('data/notes.txt').read())\nprint(hashlib.sha256(open('data/raw/blob.bin', 'rb').read()).hexdigest())";

async function createSession(orchestrator: TestOrchestrator, idleTimeoutS: number): Promise<SessionInfo> {
  return expectStatus<SessionInfo>(await orchestrator.alice.request("POST", "/v1/sessions", { json: { idleTimeoutS } }), 201, "POST /v1/sessions");
}

/** Waits for the session's stream to say it is stopped (the event, no polling), then reads it. */
async function waitUntilStopped(orchestrator: TestOrchestrator, id: string): Promise<SessionInfo> {
  const stream = await StreamClient.open(orchestrator.url, id, orchestrator.keys.alice);
  try {
    const hello = await stream.nextMessage((m) => m.type === "hello");
    if (!(hello.type === "hello" && hello.phase === "stopped")) {
      await stream.nextMessage((m) => m.type === "session_status" && m.phase === "stopped", 30_000);
    }
  } finally {
    await stream.close();
  }
  return orchestrator.alice.getSession(id);
}

describe("scale to zero into Azure Blob Storage (azurite), real workers", () => {
  let azurite: TestAzurite;
  let orchestrator: TestOrchestrator;
  let secrets: string;

  beforeAll(async () => {
    azurite = await startTestAzurite();
    // The connection string reaches the orchestrator as a file, never through argv or a log line.
    secrets = await mkdtemp(join(tmpdir(), "tether-secrets-"));
    await writeFile(join(secrets, "blob"), `${azurite.connectionString}\n`, { mode: 0o600 });
    orchestrator = await startTestOrchestrator({
      TETHER_SNAPSHOT_STORE: "azure-blob",
      TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE: join(secrets, "blob"),
      TETHER_SNAPSHOT_BLOB_CONTAINER: "e2e-snapshots",
    });
  });

  afterAll(async () => {
    await orchestrator?.close();
    await azurite?.close();
    if (secrets) await rm(secrets, { recursive: true, force: true });
  });

  it("saves the workspace as blobs under <session>/<generation>/<path> with a manifest, and a resume reads every byte back", async () => {
    const session = await createSession(orchestrator, 1);
    const wrote = await orchestrator.alice.execute(session.id, { code: WRITE_FILES });
    expect(wrote.status).toBe("ok");
    const digest = wrote.stdout.trim();

    const stopped = await waitUntilStopped(orchestrator, session.id);
    expect(stopped.snapshot).toMatchObject({ files: 2, bytes: 3 * 1024 * 1024 + "kept across the stop".length });
    expect(Date.parse(stopped.snapshot!.expiresAt!) - Date.parse(stopped.snapshot!.savedAt)).toBe(7 * 24 * 3600 * 1000);
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient("e2e-snapshots");
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: `${session.id}/` })) names.push(blob.name);
    expect(names.sort()).toEqual([
      expect.stringMatching(new RegExp(`^${session.id}/g-[a-z0-9]+-[a-f0-9]+/data/notes\\.txt$`)),
      expect.stringMatching(new RegExp(`^${session.id}/g-[a-z0-9]+-[a-f0-9]+/data/raw/blob\\.bin$`)),
      `${session.id}/manifest.json`,
    ]);

    const resumed = await orchestrator.alice.execute(session.id, { code: READ_FILES });
    expect(resumed).toMatchObject({ status: "ok", resumed: true, stateLost: true });
    expect(resumed.stdout).toBe(`kept across the stop\n${digest}\n`);

    await orchestrator.alice.deleteSession(session.id);
    const left: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: `${session.id}/` })) left.push(blob.name);
    expect(left).toEqual([]);
  });
});

describe("a snapshot directory shared by two orchestrators", () => {
  let shared: string;
  let first: TestOrchestrator | undefined;
  let second: TestOrchestrator | undefined;

  beforeAll(async () => {
    shared = await mkdtemp(join(tmpdir(), "tether-shared-snapshots-"));
  });

  afterAll(async () => {
    await first?.close();
    await second?.close();
    await rm(shared, { recursive: true, force: true });
  });

  it("keeps snapshots over a shutdown (idle sessions are snapshotted on the way out) and the other orchestrator reads what the first saved", async () => {
    first = await startTestOrchestrator({ TETHER_SNAPSHOT_DIR: shared });
    // One session scaled to zero before the shutdown, one still ready when it comes.
    const scaled = await createSession(first, 1);
    expect((await first.alice.execute(scaled.id, { code: "open('early.txt', 'w').write('saved by the idle stop')" })).status).toBe("ok");
    await waitUntilStopped(first, scaled.id);
    const ready = await createSession(first, 600);
    expect((await first.alice.execute(ready.id, { code: WRITE_FILES })).status).toBe("ok");
    await first.close();
    first = undefined;

    second = await startTestOrchestrator({ TETHER_SNAPSHOT_DIR: shared });
    const store = second.app.tether.snapshots;
    // The second orchestrator's start-up sweep ran; nothing it may keep was removed.
    await store.sweep();
    const read = async (id: string): Promise<Record<string, number>> => {
      const lookup = await store.open(id);
      if (lookup.kind !== "found") throw new Error(`no snapshot of ${id}: ${lookup.kind}`);
      const sizes: Record<string, number> = {};
      for await (const file of lookup.files) {
        let bytes = 0;
        for await (const chunk of file.stream) bytes += chunk.byteLength;
        sizes[file.path] = bytes;
      }
      return sizes;
    };
    expect(await read(scaled.id)).toEqual({ "early.txt": "saved by the idle stop".length });
    expect(await read(ready.id)).toEqual({ "data/notes.txt": "kept across the stop".length, "data/raw/blob.bin": 3 * 1024 * 1024 });
  });
});

describe("a session whose snapshot expired", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_SNAPSHOT_TTL_S: "1", TETHER_SNAPSHOT_SWEEP_INTERVAL_S: "1" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("says so: 410 SNAPSHOT_EXPIRED on the call that would resume it and snapshot.lost, then resumes with an empty workspace", async () => {
    const session = await createSession(orchestrator, 1);
    expect((await orchestrator.alice.execute(session.id, { code: "open('precious.txt', 'w').write('x')" })).status).toBe("ok");
    const stopped = await waitUntilStopped(orchestrator, session.id);
    expect(stopped.snapshot).toMatchObject({ files: 1 });
    // The sweep runs every second; the snapshot is a second old soon after.
    const store = orchestrator.app.tether.snapshots;
    const deadline = Date.now() + 15_000;
    while ((await store.open(session.id)).kind !== "expired") {
      if (Date.now() > deadline) throw new Error("the sweep did not expire the snapshot within 15 s");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const refused = await orchestrator.alice.request("GET", `/v1/sessions/${session.id}/files`);
    expect(refused.status).toBe(410);
    expect(refused.errorCode()).toBe(ErrorCodes.SNAPSHOT_EXPIRED);
    expect(await orchestrator.alice.getSession(session.id)).toMatchObject({
      status: "stopped",
      stopReason: { kind: "resume_failed" },
      snapshot: { files: 1, lost: "expired" },
    });

    const next = await orchestrator.alice.execute(session.id, { code: "import os\nprint(sorted(os.listdir('.')))" });
    expect(next).toMatchObject({ status: "ok", resumed: true, stdout: "[]\n" });
    await orchestrator.alice.deleteSession(session.id);
  });
});
