import { ErrorCodes, TetherError } from "../errors.js";
import type { WorkerHandle } from "../workers/worker-handle.js";
import type { RestoredFile, SnapshotFile, SnapshotStore, SnapshotSummary } from "./snapshot-store.js";

const CALL_TIMEOUT_MS = 30_000;
/**
 * Files uploaded to a new worker at once. Each upload waits a round trip for
 * its result; small files are latency-bound, so a few in flight cut a
 * restore of many files (big ones are bandwidth-bound either way).
 */
const RESTORE_CONCURRENCY = 4;

/** Streams every workspace file of a live worker into the store (one file at a time, with the usual credit flow). */
export async function snapshotWorkspace(store: SnapshotStore, sessionId: string, worker: WorkerHandle): Promise<SnapshotSummary & { truncated: boolean }> {
  const { files: entries, truncated } = await worker.call("files_list", {}, CALL_TIMEOUT_MS);
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
  return { ...(await store.save(sessionId, files())), truncated };
}

/**
 * Copies snapshot files into a new worker's workspace, RESTORE_CONCURRENCY at
 * a time; returns how many. The first failure (the store, the worker, a
 * refused file) rejects: a resume never goes on with part of the files.
 */
export async function restoreWorkspace(files: AsyncIterable<RestoredFile>, worker: WorkerHandle): Promise<number> {
  const iterator = files[Symbol.asyncIterator]();
  let restored = 0;
  let failed = false;
  const uploader = async (): Promise<void> => {
    while (!failed) {
      const next = await iterator.next();
      if (next.done) return;
      const file = next.value;
      try {
        await worker.upload(file.path, file.stream, Number.MAX_SAFE_INTEGER);
        restored += 1;
      } catch (error) {
        failed = true;
        throw error;
      } finally {
        // An upload refused part way leaves the file open otherwise.
        if ("destroy" in file.stream) file.stream.destroy();
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: RESTORE_CONCURRENCY }, uploader));
  const rejected = results.find((result) => result.status === "rejected");
  if (rejected) {
    await iterator.return?.(undefined);
    throw rejected.reason;
  }
  return restored;
}
