import { constants, createReadStream, type ReadStream } from "node:fs";
import { lstat, mkdir, open, readdir, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { ErrorCodes, FILE_CHUNK_BYTES, checkWorkspacePath, errnoCode, errorMessage, type FileEntry } from "@tether/shared";
import { WorkerError } from "./errors.js";

/** files_list stops after this many files and says `truncated`. */
export const MAX_LISTED_FILES = 10_000;

/**
 * The session workspace on disk. Every path from the orchestrator is checked
 * for syntax (shared checkWorkspacePath), then against the disk: no existing
 * component may be a symlink leading outside, and the final file is opened
 * with O_NOFOLLOW.
 */
export class Workspace {
  private constructor(readonly root: string) {}

  /** Resolves the workspace's realpath once, so later comparisons are between real paths. */
  static async open(dir: string): Promise<Workspace> {
    const root = await realpath(dir);
    if (!(await stat(root)).isDirectory()) throw new WorkerError(ErrorCodes.CONFIG_INVALID, `TETHER_WORKSPACE '${dir}' is not a directory.`);
    return new Workspace(root);
  }

  /** Absolute path for a workspace-relative one, or a WorkerError with a PATH_* code. */
  async resolve(raw: string): Promise<string> {
    const check = checkWorkspacePath(raw);
    if (!check.ok) throw new WorkerError(check.code, check.message);
    const absolute = path.join(this.root, ...check.segments);
    // The deepest existing ancestor (or the path itself), followed through any symlinks, must stay inside.
    let existing = absolute;
    for (;;) {
      try {
        const real = await realpath(existing);
        if (!this.contains(real)) {
          throw new WorkerError(ErrorCodes.PATH_ESCAPES_WORKSPACE, `The file path '${raw}' leads outside the session workspace through a symbolic link.`);
        }
        break;
      } catch (error) {
        if (error instanceof WorkerError) throw error;
        const code = errnoCode(error);
        if (code !== "ENOENT" && code !== "ENOTDIR") throw fileError(raw, error);
        // A dangling symlink has no realpath but is not "missing": refuse it rather than write through it.
        if (await isSymlink(existing)) {
          throw new WorkerError(ErrorCodes.PATH_ESCAPES_WORKSPACE, `The file path '${raw}' goes through a dangling symbolic link.`);
        }
        const parent = path.dirname(existing);
        if (parent === existing) break;
        existing = parent;
      }
    }
    return absolute;
  }

  /** Every regular file, recursively, symlinks skipped, at most MAX_LISTED_FILES. */
  async list(maxFiles: number = MAX_LISTED_FILES): Promise<{ files: FileEntry[]; truncated: boolean }> {
    const files: FileEntry[] = [];
    const pending: string[] = [""];
    while (pending.length > 0) {
      const relDir = pending.shift() ?? "";
      let entries;
      try {
        entries = await readdir(path.join(this.root, relDir), { withFileTypes: true });
      } catch {
        continue; // removed while listing, or unreadable: list what we can
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
        if (entry.isDirectory()) pending.push(rel);
        else if (entry.isFile()) {
          if (files.length >= maxFiles) return { files, truncated: true };
          try {
            const info = await lstat(path.join(this.root, rel));
            files.push({ path: rel, size: info.size, modifiedAt: info.mtime.toISOString() });
          } catch {
            // Deleted between readdir and lstat.
          }
        }
      }
    }
    return { files, truncated: false };
  }

  async delete(raw: string): Promise<void> {
    // The directory holding it must stay inside; the entry itself may be a symlink pointing anywhere:
    // unlink removes the link, never its target.
    const check = checkWorkspacePath(raw);
    if (!check.ok) throw new WorkerError(check.code, check.message);
    const parent = check.segments.length > 1 ? await this.resolve(check.segments.slice(0, -1).join("/")) : this.root;
    const absolute = path.join(parent, check.segments.at(-1) ?? "");
    try {
      const info = await lstat(absolute);
      if (info.isDirectory()) throw new WorkerError(ErrorCodes.FILE_IS_DIRECTORY, `'${raw}' is a directory.`);
      await unlink(absolute);
    } catch (error) {
      throw fileError(raw, error);
    }
  }

  /** Opens a file for download (O_NOFOLLOW): its size and a stream of FILE_CHUNK_BYTES chunks. */
  async openRead(raw: string): Promise<{ size: number; stream: ReadStream }> {
    const absolute = await this.resolve(raw);
    let handle: FileHandle | undefined;
    try {
      handle = await open(absolute, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const info = await handle.stat();
      if (info.isDirectory()) throw new WorkerError(ErrorCodes.FILE_IS_DIRECTORY, `'${raw}' is a directory.`);
      if (!info.isFile()) throw new WorkerError(ErrorCodes.FILE_IO, `'${raw}' is not a regular file.`);
      const stream = createReadStream("", { fd: handle.fd, highWaterMark: FILE_CHUNK_BYTES, autoClose: true });
      const owned = handle;
      handle = undefined;
      stream.once("close", () => void owned.close().catch(() => undefined));
      return { size: info.size, stream };
    } catch (error) {
      await handle?.close().catch(() => undefined);
      throw fileError(raw, error);
    }
  }

  /**
   * Prepares an upload: creates parent directories, opens a temp file beside
   * the target (O_EXCL|O_NOFOLLOW). `commit` renames it into place.
   */
  async openWrite(raw: string): Promise<{ handle: FileHandle; commit(): Promise<void>; discard(): Promise<void> }> {
    const absolute = await this.resolve(raw);
    const dir = path.dirname(absolute);
    try {
      await mkdir(dir, { recursive: true }).catch((error: unknown) => {
        const code = errnoCode(error);
        if (code === "EEXIST" || code === "ENOTDIR") {
          throw new WorkerError(ErrorCodes.PATH_INVALID, `A part of '${raw}' is a file, not a directory.`, { hint: "Delete that file first, or choose another path." });
        }
        throw error;
      });
      // mkdir may have raced with a symlink swap: check the directory again.
      if (!this.contains(await realpath(dir))) {
        throw new WorkerError(ErrorCodes.PATH_ESCAPES_WORKSPACE, `The file path '${raw}' leads outside the session workspace through a symbolic link.`);
      }
      const existing = await lstat(absolute).catch(() => undefined);
      if (existing?.isDirectory()) throw new WorkerError(ErrorCodes.FILE_IS_DIRECTORY, `'${raw}' is a directory.`);
      // A short name of its own: the target's name plus a suffix would pass NAME_MAX for a legal 230-255 byte name.
      const temp = path.join(dir, `.tether-upload-${randomBytes(6).toString("hex")}`);
      const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      return {
        handle,
        commit: async () => {
          await handle.close();
          await rename(temp, absolute);
        },
        discard: async () => {
          await handle.close().catch(() => undefined);
          await unlink(temp).catch(() => undefined);
        },
      };
    } catch (error) {
      throw fileError(raw, error);
    }
  }

  private contains(real: string): boolean {
    return real === this.root || real.startsWith(this.root + path.sep);
  }
}

async function isSymlink(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isSymbolicLink();
  } catch {
    return false;
  }
}

function fileError(raw: string, error: unknown): WorkerError {
  if (error instanceof WorkerError) return error;
  switch (errnoCode(error)) {
    case "ENOENT":
    case "ENOTDIR":
      return new WorkerError(ErrorCodes.FILE_NOT_FOUND, `No file '${raw}' in the session workspace.`, { cause: error });
    case "EISDIR":
      return new WorkerError(ErrorCodes.FILE_IS_DIRECTORY, `'${raw}' is a directory.`, { cause: error });
    case "ELOOP":
      return new WorkerError(ErrorCodes.PATH_INVALID, `'${raw}' is a symbolic link (or a loop of them); give the path of the file itself.`, { cause: error });
    case "ENAMETOOLONG":
      return new WorkerError(ErrorCodes.PATH_INVALID, `'${raw}' has a name longer than the file system allows (255 bytes per name).`, { cause: error });
    default:
      return ioError(raw, error);
  }
}

function ioError(raw: string, error: unknown): WorkerError {
  return new WorkerError(ErrorCodes.FILE_IO, `File operation on '${raw}' failed: ${errorMessage(error)}`, { cause: error });
}
