import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { checkWorkspacePath } from "@tether/shared";
import { ErrorCodes, errnoCode, tetherError } from "../errors.js";
import type { SnapshotFile, SnapshotStore, SnapshotSummary } from "./snapshot-store.js";

/** `<root>/<sessionId>/<workspace path>`; a save is written beside it and renamed into place. */
export class LocalDirectorySnapshotStore implements SnapshotStore {
  constructor(readonly root: string) {}

  async save(sessionId: string, files: AsyncIterable<SnapshotFile>): Promise<SnapshotSummary> {
    const final = this.dirOf(sessionId);
    const staging = `${final}.saving-${randomBytes(6).toString("hex")}`;
    // Snapshots hold users' files: private to this user.
    await mkdir(staging, { recursive: true, mode: 0o700 });
    let count = 0;
    let bytes = 0;
    try {
      for await (const file of files) {
        const check = checkWorkspacePath(file.path);
        if (!check.ok) throw tetherError(check.code, check.message);
        const target = path.join(staging, ...check.segments);
        await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
        const sink = createWriteStream(target, { flags: "wx", mode: 0o600 });
        await pipeline(file.stream, sink);
        count += 1;
        bytes += sink.bytesWritten;
      }
      const previous = `${final}.old-${randomBytes(6).toString("hex")}`;
      await rename(final, previous).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
      });
      await rename(staging, final);
      await rm(previous, { recursive: true, force: true });
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    return { files: count, bytes, savedAt: new Date().toISOString() };
  }

  async *restore(sessionId: string): AsyncGenerator<SnapshotFile & { size: number }> {
    const root = this.dirOf(sessionId);
    const pending: string[] = [""];
    while (pending.length > 0) {
      const relative = pending.shift()!;
      let entries;
      try {
        entries = await readdir(path.join(root, relative), { withFileTypes: true });
      } catch (error) {
        if (errnoCode(error) === "ENOENT") return;
        throw error;
      }
      for (const entry of entries) {
        const child = relative ? `${relative}/${entry.name}` : entry.name;
        if (entry.isDirectory()) pending.push(child);
        else if (entry.isFile()) {
          const absolute = path.join(root, child);
          yield { path: child, size: (await stat(absolute)).size, stream: createReadStream(absolute) };
        }
      }
    }
  }

  async delete(sessionId: string): Promise<void> {
    await rm(this.dirOf(sessionId), { recursive: true, force: true });
  }

  private dirOf(sessionId: string): string {
    // Ids are minted by the registry; refuse anything that could leave the root all the same.
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(sessionId)) throw tetherError(ErrorCodes.INTERNAL, `Invalid session id for a snapshot: '${sessionId}'.`);
    return path.join(this.root, sessionId);
  }
}
