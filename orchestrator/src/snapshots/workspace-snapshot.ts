import { ErrorCodes, TetherError } from "../errors.js";
import type { WorkerHandle } from "../workers/worker-handle.js";
import type { SnapshotFile, SnapshotStore, SnapshotSummary } from "./snapshot-store.js";

const CALL_TIMEOUT_MS = 30_000;

/** Streams every workspace file of a live worker into the store (one file at a time, with the usual credit flow). */
export async function snapshotWorkspace(store: SnapshotStore, sessionId: string, worker: WorkerHandle): Promise<SnapshotSummary> {
  const { files: entries } = await worker.call("files_list", {}, CALL_TIMEOUT_MS);
  async function* files(): AsyncGenerator<SnapshotFile> {
    for (const entry of entries) {
      let opened;
      try {
        opened = await worker.download(entry.path, CALL_TIMEOUT_MS);
      } catch (error) {
        // Deleted by the code between the listing and now: not part of the workspace any more.
        if (error instanceof TetherError && error.code === ErrorCodes.FILE_NOT_FOUND) continue;
        throw error;
      }
      yield { path: entry.path, stream: opened.stream };
    }
  }
  return store.save(sessionId, files());
}

/** Copies the session's last snapshot into a new worker's workspace; returns how many files came back. */
export async function restoreWorkspace(store: SnapshotStore, sessionId: string, worker: WorkerHandle): Promise<number> {
  let restored = 0;
  for await (const file of store.restore(sessionId)) {
    try {
      await worker.upload(file.path, file.stream, Number.MAX_SAFE_INTEGER);
    } finally {
      // An upload refused part way leaves the file open otherwise.
      if ("destroy" in file.stream) file.stream.destroy();
    }
    restored += 1;
  }
  return restored;
}
