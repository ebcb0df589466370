import type { Readable } from "node:stream";

/** One workspace file on its way into or out of a snapshot. */
export interface SnapshotFile {
  /** Workspace-relative, '/'-separated (checked with checkWorkspacePath). */
  path: string;
  stream: AsyncIterable<Buffer | Uint8Array> | Readable;
}

/** A file read back from a snapshot; its size is known before its bytes. */
export interface RestoredFile extends SnapshotFile {
  size: number;
}

export interface SnapshotSummary {
  files: number;
  bytes: number;
  /** ISO 8601. */
  savedAt: string;
  /** ISO 8601: when the expiry sweep deletes it (TETHER_SNAPSHOT_TTL_S); absent when snapshots never expire. */
  expiresAt?: string;
}

/** What a store holds for a session. */
export type SnapshotLookup =
  | { kind: "none" }
  /** The sweep deleted it after TETHER_SNAPSHOT_TTL_S: its files are gone, and the store remembers that they were. */
  | { kind: "expired"; savedAt: string; expiredAt: string }
  /** `files` streams each file lazily, in the order they were saved. */
  | { kind: "found"; summary: SnapshotSummary; files: AsyncIterable<RestoredFile> };

/** What one expiry sweep did. */
export interface SweepResult {
  /** Snapshots older than the TTL whose files were deleted (an expiry marker is kept). */
  expired: number;
  /** Leftovers removed: stale staging generations of crashed saves, old expiry markers. */
  removed: number;
}

/**
 * Where a stopped session's workspace files wait for its resume, readable by
 * every replica that shares the store (a shared directory, a blob
 * container). Files stream through: nothing holds a whole file. A save is
 * atomic: a generation of files is written first and a small manifest naming
 * it last; readers only ever follow the manifest.
 */
export interface SnapshotStore {
  /** `local` (a directory) or `azure-blob`; for logs and docs. */
  readonly kind: "local" | "azure-blob";
  /** Checks the store can be reached (and creates what it may); called once at start. Throws SNAPSHOT_UNAVAILABLE. */
  init(): Promise<void>;
  /**
   * Replaces the session's snapshot with `files`, atomically: if saving fails
   * part way, the previous snapshot stays as it was.
   */
  save(sessionId: string, files: AsyncIterable<SnapshotFile>): Promise<SnapshotSummary>;
  /** The session's last snapshot, if it has one. Throws SNAPSHOT_UNAVAILABLE when the store cannot be read. */
  open(sessionId: string): Promise<SnapshotLookup>;
  /** Forgets the session's snapshot, expiry marker included (the session was deleted). */
  delete(sessionId: string): Promise<void>;
  /** Expires snapshots older than the TTL and removes leftovers of crashed saves. Safe to run on several replicas at once. */
  sweep(): Promise<SweepResult>;
}
