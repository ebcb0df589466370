import type { Readable } from "node:stream";

/** One workspace file on its way into or out of a snapshot. */
export interface SnapshotFile {
  /** Workspace-relative, '/'-separated (checked with checkWorkspacePath). */
  path: string;
  stream: AsyncIterable<Buffer | Uint8Array> | Readable;
}

export interface SnapshotSummary {
  files: number;
  bytes: number;
  /** ISO 8601. */
  savedAt: string;
}

/**
 * Where a stopped session's workspace files wait for its resume. The local
 * implementation keeps a directory per session; a blob store can implement the
 * same three calls. Files stream through: nothing holds a whole file.
 */
export interface SnapshotStore {
  /**
   * Replaces the session's snapshot with `files`, atomically: if saving fails
   * part way, the previous snapshot stays as it was.
   */
  save(sessionId: string, files: AsyncIterable<SnapshotFile>): Promise<SnapshotSummary>;
  /** The files of the session's last snapshot; nothing when it has none. */
  restore(sessionId: string): AsyncIterable<SnapshotFile & { size: number }>;
  /** Forgets the session's snapshot (the session was deleted). */
  delete(sessionId: string): Promise<void>;
}
