import { Readable } from "node:stream";
import type { Logger } from "pino";
import { RestError, type ContainerClient } from "@azure/storage-blob";
import { checkWorkspacePath } from "@tether/shared";
import { ErrorCodes, TetherError, errnoCode, errorMessage, tetherError } from "../errors.js";
import { MANIFEST_NAME, STALE_GENERATION_MS, newGeneration, parseManifest, type SavedManifest, type SnapshotExpiry, type SnapshotManifest } from "./snapshot-manifest.js";
import { checkSessionId, unavailable } from "./snapshot-errors.js";
import type { RestoredFile, SnapshotFile, SnapshotLookup, SnapshotStore, SnapshotSummary, SweepResult } from "./snapshot-store.js";

export interface AzureBlobSnapshotStoreOptions {
  /** The container (TETHER_SNAPSHOT_BLOB_URL or the connection string's account + TETHER_SNAPSHOT_BLOB_CONTAINER). */
  container: ContainerClient;
  expiry: SnapshotExpiry;
  logger: Logger;
  /** Tests shorten it; see STALE_GENERATION_MS. */
  staleGenerationMs?: number;
}

/** An upload holds at most this many bytes per block in memory, with UPLOAD_CONCURRENCY blocks in flight. */
const UPLOAD_BLOCK_BYTES = 4 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 2;
const DELETE_CONCURRENCY = 8;

/**
 * Snapshots in an Azure Blob Storage container: one block blob per file at
 * `<session id>/<generation>/<workspace path>` (see blobPathOf), and `<session id>/manifest.json`
 * written last, so a save is atomic (a reader follows the manifest; a
 * failed save leaves the previous manifest and generation as they were).
 * The replaced generation is deleted once the new manifest landed. Files
 * stream both ways (blocks of 4 MiB, two in flight); nothing holds a file.
 * The expiry sweep swaps a manifest only if its ETag is unchanged, so it
 * never marks expired a snapshot that a save on another replica just replaced.
 */
export class AzureBlobSnapshotStore implements SnapshotStore {
  readonly kind = "azure-blob";
  private readonly container: ContainerClient;
  private readonly staleGenerationMs: number;

  constructor(private readonly options: AzureBlobSnapshotStoreOptions) {
    this.container = options.container;
    this.staleGenerationMs = options.staleGenerationMs ?? STALE_GENERATION_MS;
  }

  async init(): Promise<void> {
    try {
      if (!(await this.container.exists())) await this.container.createIfNotExists();
    } catch (error) {
      throw unavailable(
        `The snapshot container '${this.container.url}' cannot be used: ${describe(error)}`,
        error,
        "Check TETHER_SNAPSHOT_BLOB_URL (or the connection string and TETHER_SNAPSHOT_BLOB_CONTAINER), and that the orchestrator's identity holds " +
          "'Storage Blob Data Contributor' on the container (create the container up front if the identity may not).",
      );
    }
  }

  async save(sessionId: string, files: AsyncIterable<SnapshotFile>): Promise<SnapshotSummary> {
    const prefix = prefixOf(sessionId);
    const generation = newGeneration();
    const listed: SavedManifest["files"] = [];
    let bytes = 0;
    try {
      for await (const file of files) {
        const check = checkWorkspacePath(file.path);
        if (!check.ok) throw tetherError(check.code, check.message);
        let size = 0;
        const counted = Readable.from(
          (async function* () {
            for await (const chunk of file.stream) {
              size += chunk.byteLength;
              yield chunk;
            }
          })(),
          { objectMode: false },
        );
        await this.container.getBlockBlobClient(`${prefix}${generation}/${blobPathOf(check.path)}`).uploadStream(counted, UPLOAD_BLOCK_BYTES, UPLOAD_CONCURRENCY);
        listed.push({ path: check.path, size });
        bytes += size;
      }
    } catch (error) {
      await this.deleteGeneration(sessionId, generation);
      throw storeError(error, `saving the snapshot of session '${sessionId}'`);
    }
    const manifest: SavedManifest = { version: 1, state: "saved", generation, savedAt: new Date().toISOString(), bytes, files: listed };
    const previous = await this.readManifest(sessionId).catch(() => undefined);
    try {
      await this.writeManifest(sessionId, manifest);
    } catch (error) {
      await this.deleteGeneration(sessionId, generation);
      throw storeError(error, `saving the snapshot manifest of session '${sessionId}'`);
    }
    if (previous?.manifest.state === "saved" && previous.manifest.generation !== generation) await this.deleteGeneration(sessionId, previous.manifest.generation);
    return this.options.expiry.summaryOf(manifest);
  }

  async open(sessionId: string): Promise<SnapshotLookup> {
    const read = await this.readManifest(sessionId);
    if (!read) return { kind: "none" };
    const { manifest } = read;
    if (manifest.state === "expired") return { kind: "expired", savedAt: manifest.savedAt, expiredAt: manifest.expiredAt };
    const saved: SavedManifest = manifest;
    const container = this.container;
    const prefix = `${prefixOf(sessionId)}${saved.generation}/`;
    async function* files(): AsyncGenerator<RestoredFile> {
      for (const file of saved.files) {
        const check = checkWorkspacePath(file.path);
        if (!check.ok) throw unavailable(`The snapshot of session '${sessionId}' names an invalid path: ${check.message}`);
        let body;
        try {
          body = (await container.getBlobClient(`${prefix}${blobPathOf(check.path)}`).download()).readableStreamBody;
        } catch (error) {
          throw storeError(error, `reading '${check.path}' of the snapshot of session '${sessionId}'`);
        }
        if (!body) throw unavailable(`The blob of '${check.path}' came back without a body.`);
        yield { path: check.path, size: file.size, stream: body instanceof Readable ? body : Readable.from(body, { objectMode: false }) };
      }
    }
    return { kind: "found", summary: this.options.expiry.summaryOf(saved), files: files() };
  }

  async delete(sessionId: string): Promise<void> {
    await this.deleteAll(await this.namesUnder(prefixOf(sessionId)));
  }

  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { expired: 0, removed: 0 };
    const now = Date.now();
    const sessions: string[] = [];
    try {
      for await (const item of this.container.listBlobsByHierarchy("/")) {
        if (item.kind === "prefix" && checkSessionId(item.name.slice(0, -1))) sessions.push(item.name.slice(0, -1));
      }
    } catch (error) {
      throw storeError(error, "listing the snapshot container");
    }
    for (const sessionId of sessions) {
      try {
        await this.sweepSession(sessionId, now, result);
      } catch (error) {
        this.options.logger.warn({ err: error, sessionId }, "the snapshot sweep skipped a session");
      }
    }
    return result;
  }

  private async sweepSession(sessionId: string, now: number, result: SweepResult): Promise<void> {
    const { expiry } = this.options;
    const read = await this.readManifest(sessionId);
    let current = read?.manifest;
    if (read && current?.state === "saved" && expiry.isExpired(current.savedAt, now)) {
      const marker: SnapshotManifest = { version: 1, state: "expired", savedAt: current.savedAt, expiredAt: new Date(now).toISOString() };
      // Only over the manifest just read: a save that landed since is fresh (412, left alone).
      if (await this.writeManifest(sessionId, marker, read.etag).then(() => true, (error: unknown) => ifPreconditionFailed(error, false))) {
        await this.deleteGeneration(sessionId, current.generation);
        result.expired += 1;
        current = marker;
      } else {
        return;
      }
    } else if (read && current?.state === "expired" && expiry.markerIsStale(current.expiredAt, now)) {
      const removed = await this.manifestBlob(sessionId)
        .deleteIfExists({ conditions: { ifMatch: read.etag } })
        .then(() => true, (error: unknown) => ifPreconditionFailed(error, false));
      if (!removed) return;
      result.removed += 1;
      current = undefined;
    }
    const keep = current?.state === "saved" ? current.generation : undefined;
    // Generations no manifest names: saves in progress (recent blobs) or leftovers of failed ones.
    const stale = new Map<string, { names: string[]; newestMs: number }>();
    for await (const item of this.container.listBlobsFlat({ prefix: prefixOf(sessionId) })) {
      const generation = item.name.slice(prefixOf(sessionId).length).split("/")[0] ?? "";
      if (item.name === `${prefixOf(sessionId)}${MANIFEST_NAME}` || generation === keep) continue;
      const entry = stale.get(generation) ?? { names: [], newestMs: 0 };
      entry.names.push(item.name);
      entry.newestMs = Math.max(entry.newestMs, item.properties.lastModified.getTime());
      stale.set(generation, entry);
    }
    for (const { names, newestMs } of stale.values()) {
      if (now - newestMs < this.staleGenerationMs) continue;
      await this.deleteAll(names);
      result.removed += 1;
    }
  }

  private manifestBlob(sessionId: string) {
    return this.container.getBlockBlobClient(`${prefixOf(sessionId)}${MANIFEST_NAME}`);
  }

  /** The manifest and its ETag, undefined when there is none; one that does not parse is an error, never "no snapshot". */
  private async readManifest(sessionId: string): Promise<{ manifest: SnapshotManifest; etag: string } | undefined> {
    let text: string;
    let etag: string | undefined;
    try {
      const response = await this.manifestBlob(sessionId).download();
      etag = response.etag;
      const chunks: Buffer[] = [];
      for await (const chunk of response.readableStreamBody ?? []) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      text = Buffer.concat(chunks).toString("utf8");
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 404) return undefined;
      throw storeError(error, `reading the snapshot manifest of session '${sessionId}'`);
    }
    const manifest = parseManifest(text);
    if (!manifest || !etag) throw unavailable(`The snapshot manifest of session '${sessionId}' is not valid.`);
    return { manifest, etag };
  }

  private async writeManifest(sessionId: string, manifest: SnapshotManifest, ifMatch?: string): Promise<void> {
    const body = Buffer.from(JSON.stringify(manifest));
    await this.manifestBlob(sessionId).upload(body, body.byteLength, {
      blobHTTPHeaders: { blobContentType: "application/json" },
      ...(ifMatch ? { conditions: { ifMatch } } : {}),
    });
  }

  /** Best effort: what is left is removed by a later sweep. */
  private async deleteGeneration(sessionId: string, generation: string): Promise<void> {
    try {
      await this.deleteAll(await this.namesUnder(`${prefixOf(sessionId)}${generation}/`));
    } catch (error) {
      this.options.logger.warn({ err: error, sessionId, generation }, "could not delete a snapshot generation; the sweep will");
    }
  }

  private async namesUnder(prefix: string): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const item of this.container.listBlobsFlat({ prefix })) names.push(item.name);
    } catch (error) {
      throw storeError(error, `listing '${prefix}'`);
    }
    return names;
  }

  private async deleteAll(names: readonly string[]): Promise<void> {
    const queue = [...names];
    const worker = async (): Promise<void> => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        try {
          await this.container.getBlobClient(name).deleteIfExists();
        } catch (error) {
          throw storeError(error, `deleting '${name}'`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, queue.length) }, worker));
  }
}

/**
 * The blob name of a workspace path: the path itself, except that a segment
 * ending in '.' gets it escaped (`%2E`; '%' itself becomes `%25` so no two
 * paths share a name). Azure advises against names ending in a dot: URL
 * canonicalization may drop it. The manifest keeps the real path.
 */
export function blobPathOf(path: string): string {
  return path
    .split("/")
    .map((segment) => segment.replaceAll("%", "%25").replace(/\.$/, "%2E"))
    .join("/");
}

function prefixOf(sessionId: string): string {
  if (!checkSessionId(sessionId)) throw tetherError(ErrorCodes.INTERNAL, `Invalid session id for a snapshot: '${sessionId}'.`);
  return `${sessionId}/`;
}

function ifPreconditionFailed<T>(error: unknown, value: T): T {
  if (error instanceof RestError && (error.statusCode === 412 || error.statusCode === 404)) return value;
  throw storeError(error, "updating a snapshot manifest");
}

/** Storage failures become SNAPSHOT_UNAVAILABLE; anything else (the worker's stream failing, a bad path) stays what it is. */
function storeError(error: unknown, doing: string): unknown {
  if (error instanceof TetherError || !(error instanceof RestError || isNetworkError(error))) return error;
  return unavailable(`Azure Blob Storage failed ${doing}: ${describe(error)}`, error);
}

function isNetworkError(error: unknown): boolean {
  return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EPIPE)$/.test(errnoCode(error) ?? "");
}

/** Status and code (the message when there is no status); never the request, whose URL may carry a SAS. */
function describe(error: unknown): string {
  if (error instanceof RestError && error.statusCode !== undefined) return `HTTP ${error.statusCode}${error.code ? ` ${error.code}` : ""}`;
  return errorMessage(error);
}
