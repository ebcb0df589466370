import { randomBytes } from "node:crypto";
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { SnapshotSummary } from "./snapshot-store.js";

/**
 * The small document that makes a snapshot exist, written last by a save
 * (`saved`: which generation holds the files) or by the expiry sweep
 * (`expired`: the files are gone; kept so a resume can say so). Both stores
 * keep it at `<session id>/manifest.json`, beside the generations.
 */
export const SnapshotManifest = Type.Union([
  Type.Object({
    version: Type.Literal(1),
    state: Type.Literal("saved"),
    generation: Type.String({ pattern: "^g-[a-z0-9]+-[a-f0-9]+$" }),
    savedAt: Type.String(),
    bytes: Type.Integer({ minimum: 0 }),
    files: Type.Array(Type.Object({ path: Type.String(), size: Type.Integer({ minimum: 0 }) })),
  }),
  Type.Object({
    version: Type.Literal(1),
    state: Type.Literal("expired"),
    savedAt: Type.String(),
    expiredAt: Type.String(),
  }),
]);
export type SnapshotManifest = Static<typeof SnapshotManifest>;
export type SavedManifest = Extract<SnapshotManifest, { state: "saved" }>;

export const MANIFEST_NAME = "manifest.json";

const check = TypeCompiler.Compile(SnapshotManifest);

/** The manifest in `text`, or undefined when it is not one (callers report that as an error, never as "no snapshot"). */
export function parseManifest(text: string): SnapshotManifest | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return check.Check(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A new generation name: sortable by time, unique across replicas. */
export function newGeneration(now = Date.now()): string {
  return `g-${now.toString(36)}-${randomBytes(6).toString("hex")}`;
}

/** True for a name newGeneration() could have made. */
export function isGeneration(name: string): boolean {
  return /^g-[a-z0-9]+-[a-f0-9]+$/.test(name);
}

/**
 * How long snapshots live (TETHER_SNAPSHOT_TTL_S; 0 = forever). An expiry
 * marker is kept as long again, then removed too; a session that still
 * knows its snapshot's `expiresAt` reports the expiry itself after that.
 */
export class SnapshotExpiry {
  constructor(readonly ttlMs: number) {}

  expiresAt(savedAt: string): string | undefined {
    return this.ttlMs > 0 ? new Date(Date.parse(savedAt) + this.ttlMs).toISOString() : undefined;
  }

  isExpired(savedAt: string, now = Date.now()): boolean {
    return this.ttlMs > 0 && Date.parse(savedAt) + this.ttlMs <= now;
  }

  /** An expiry marker past this is removed. */
  markerIsStale(expiredAt: string, now = Date.now()): boolean {
    return this.ttlMs > 0 && Date.parse(expiredAt) + this.ttlMs <= now;
  }

  summaryOf(manifest: SavedManifest): SnapshotSummary {
    const expiresAt = this.expiresAt(manifest.savedAt);
    return { files: manifest.files.length, bytes: manifest.bytes, savedAt: manifest.savedAt, ...(expiresAt ? { expiresAt } : {}) };
  }
}

/**
 * A generation no manifest names is a save in progress or the leftover of a
 * crashed one; after this long without a write it is removed. 6 h: a blob
 * shows only once its upload committed, so the upload of one huge file must
 * fit well within it (local saves touch their generation after each file).
 */
export const STALE_GENERATION_MS = 6 * 60 * 60 * 1000;
