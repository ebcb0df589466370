import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm, rmdir, stat, utimes } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import { checkWorkspacePath } from "@tether/shared";
import { ErrorCodes, errnoCode, errorMessage, tetherError } from "../errors.js";
import { withSnapshotLock, LOCK_NAME } from "./local-snapshot-lock.js";
import {
  MANIFEST_NAME,
  STALE_GENERATION_MS,
  newGeneration,
  parseManifest,
  type SavedManifest,
  type SnapshotExpiry,
  type SnapshotManifest,
} from "./snapshot-manifest.js";
import { checkSessionId, unavailable } from "./snapshot-errors.js";
import type { RestoredFile, SnapshotFile, SnapshotLookup, SnapshotStore, SnapshotSummary, SweepResult } from "./snapshot-store.js";

export interface LocalSnapshotStoreOptions {
  /** TETHER_SNAPSHOT_DIR: may be shared by several orchestrators (a compose volume, a Kubernetes PVC). */
  root: string;
  expiry: SnapshotExpiry;
  logger: Logger;
  /** Tests shorten it; see STALE_GENERATION_MS. */
  staleGenerationMs?: number;
}

/** Leftovers of the layout before generations (`<id>.saving-<hex>`, `<id>.old-<hex>` beside `<id>`). */
const LEGACY_LEFTOVER = /\.(saving|old)-[0-9a-f]+$/;

/**
 * A directory per session, `<root>/<session id>/`: `manifest.json` names the
 * generation directory (`g-…/<workspace path>`) that holds the files. A save
 * writes a new generation, then swaps the manifest (written beside and
 * renamed over, under a lock file so a sweep on another replica cannot
 * interleave), then deletes the generation it replaced. Readers follow the
 * manifest only: a half-written or abandoned generation is never restored,
 * and the sweep removes it once nobody has written to it for STALE_GENERATION_MS.
 */
export class LocalDirectorySnapshotStore implements SnapshotStore {
  readonly kind = "local";
  readonly root: string;
  private readonly staleGenerationMs: number;

  constructor(private readonly options: LocalSnapshotStoreOptions) {
    this.root = options.root;
    this.staleGenerationMs = options.staleGenerationMs ?? STALE_GENERATION_MS;
  }

  async init(): Promise<void> {
    try {
      // Snapshots hold users' files: private to this user.
      await mkdir(this.root, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw unavailable(`The snapshot directory '${this.root}' cannot be created: ${errorMessage(error)}`, error, "Set TETHER_SNAPSHOT_DIR to a writable directory.");
    }
  }

  async save(sessionId: string, files: AsyncIterable<SnapshotFile>): Promise<SnapshotSummary> {
    const dir = this.dirOf(sessionId);
    const generation = newGeneration();
    const generationDir = path.join(dir, generation);
    await mkdir(generationDir, { recursive: true, mode: 0o700 });
    const listed: SavedManifest["files"] = [];
    let bytes = 0;
    try {
      for await (const file of files) {
        const check = checkWorkspacePath(file.path);
        if (!check.ok) throw tetherError(check.code, check.message);
        const target = path.join(generationDir, ...check.segments);
        await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
        const sink = createWriteStream(target, { flags: "wx", mode: 0o600 });
        await pipeline(file.stream, sink);
        listed.push({ path: check.path, size: sink.bytesWritten });
        bytes += sink.bytesWritten;
        // A live save looks fresh to the stale-generation sweep.
        const now = new Date();
        await utimes(generationDir, now, now);
      }
    } catch (error) {
      await rm(generationDir, { recursive: true, force: true });
      throw error;
    }
    const manifest: SavedManifest = { version: 1, state: "saved", generation, savedAt: new Date().toISOString(), bytes, files: listed };
    let replaced: SnapshotManifest | undefined;
    try {
      replaced = await withSnapshotLock(dir, async () => {
        const previous = await this.readManifest(dir).catch(() => undefined);
        await this.writeManifest(dir, manifest);
        return previous;
      });
    } catch (error) {
      await rm(generationDir, { recursive: true, force: true });
      throw error;
    }
    if (replaced?.state === "saved" && replaced.generation !== generation) {
      await rm(path.join(dir, replaced.generation), { recursive: true, force: true }).catch((error: unknown) =>
        this.options.logger.warn({ err: error, sessionId }, "could not remove the replaced snapshot generation; the sweep will"),
      );
    }
    return this.options.expiry.summaryOf(manifest);
  }

  async open(sessionId: string): Promise<SnapshotLookup> {
    const dir = this.dirOf(sessionId);
    const manifest = await this.readManifest(dir);
    if (!manifest) return { kind: "none" };
    if (manifest.state === "expired") return { kind: "expired", savedAt: manifest.savedAt, expiredAt: manifest.expiredAt };
    const saved: SavedManifest = manifest;
    const generationDir = path.join(dir, saved.generation);
    async function* files(): AsyncGenerator<RestoredFile> {
      for (const file of saved.files) {
        const check = checkWorkspacePath(file.path);
        if (!check.ok) throw unavailable(`The snapshot of session '${sessionId}' names an invalid path: ${check.message}`);
        yield { path: check.path, size: file.size, stream: createReadStream(path.join(generationDir, ...check.segments)) };
      }
    }
    return { kind: "found", summary: this.options.expiry.summaryOf(saved), files: files() };
  }

  async delete(sessionId: string): Promise<void> {
    await rm(this.dirOf(sessionId), { recursive: true, force: true });
  }

  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { expired: 0, removed: 0 };
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return result;
      throw error;
    }
    const now = Date.now();
    for (const entry of entries) {
      const full = path.join(this.root, entry.name);
      try {
        if (LEGACY_LEFTOVER.test(entry.name)) {
          // `.old-` was garbage the moment it was renamed; `.saving-` is a save that never finished.
          if (entry.name.includes(".old-") || (await this.isStale(full, now))) {
            await rm(full, { recursive: true, force: true });
            result.removed += 1;
          }
        } else if (entry.isDirectory() && checkSessionId(entry.name)) {
          await this.sweepSession(full, now, result);
        }
      } catch (error) {
        this.options.logger.warn({ err: error, entry: entry.name }, "the snapshot sweep skipped an entry");
      }
    }
    return result;
  }

  private async sweepSession(dir: string, now: number, result: SweepResult): Promise<void> {
    const { expiry } = this.options;
    let manifest = await this.readManifest(dir);
    if (manifest?.state === "saved" && expiry.isExpired(manifest.savedAt, now)) {
      const generation = manifest.generation;
      const marked = await withSnapshotLock(dir, async () => {
        const current = await this.readManifest(dir);
        // A save landed since: it is fresh, leave it.
        if (current?.state !== "saved" || current.generation !== generation) return current;
        const marker: SnapshotManifest = { version: 1, state: "expired", savedAt: current.savedAt, expiredAt: new Date(now).toISOString() };
        await this.writeManifest(dir, marker);
        return marker;
      });
      if (marked?.state === "expired") {
        await rm(path.join(dir, generation), { recursive: true, force: true });
        result.expired += 1;
      }
      manifest = marked;
    } else if (manifest?.state === "expired" && expiry.markerIsStale(manifest.expiredAt, now)) {
      const expiredAt = manifest.expiredAt;
      manifest = await withSnapshotLock(dir, async () => {
        const current = await this.readManifest(dir);
        if (current?.state !== "expired" || current.expiredAt !== expiredAt) return current;
        await rm(path.join(dir, MANIFEST_NAME), { force: true });
        result.removed += 1;
        return undefined;
      });
    }
    const current = manifest?.state === "saved" ? manifest.generation : undefined;
    for (const name of await readdir(dir)) {
      if (name === MANIFEST_NAME || name === LOCK_NAME || name === current) continue;
      const full = path.join(dir, name);
      // Other generations are saves in progress (fresh) or abandoned (stale); anything else is a torn manifest write or the old layout.
      if (await this.isStale(full, now)) {
        await rm(full, { recursive: true, force: true });
        result.removed += 1;
      }
    }
    // Empty: forget the directory (a save racing with this recreates it, or fails and keeps nothing it had not).
    await rmdir(dir).catch(() => undefined);
  }

  private async isStale(full: string, now: number): Promise<boolean> {
    const info = await stat(full).catch(() => undefined);
    return info !== undefined && now - info.mtimeMs >= this.staleGenerationMs;
  }

  /** The manifest, undefined when there is none; a manifest that does not parse is an error, never "no snapshot". */
  private async readManifest(dir: string): Promise<SnapshotManifest | undefined> {
    let text: string;
    try {
      text = await readFile(path.join(dir, MANIFEST_NAME), "utf8");
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return undefined;
      throw unavailable(`The snapshot manifest in '${dir}' cannot be read: ${errorMessage(error)}`, error);
    }
    const manifest = parseManifest(text);
    if (!manifest) throw unavailable(`The snapshot manifest in '${dir}' is not valid.`);
    return manifest;
  }

  /** Written beside and renamed over: readers see the old manifest or the new one, never a torn one. */
  private async writeManifest(dir: string, manifest: SnapshotManifest): Promise<void> {
    const temporary = path.join(dir, `${MANIFEST_NAME}.${randomBytes(6).toString("hex")}.tmp`);
    const handle = await open(temporary, "wx", 0o600);
    try {
      await handle.writeFile(JSON.stringify(manifest));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path.join(dir, MANIFEST_NAME));
  }

  private dirOf(sessionId: string): string {
    // Ids are minted by the registry; refuse anything that could leave the root all the same.
    if (!checkSessionId(sessionId)) throw tetherError(ErrorCodes.INTERNAL, `Invalid session id for a snapshot: '${sessionId}'.`);
    return path.join(this.root, sessionId);
  }
}
