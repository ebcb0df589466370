import type { FileEntry } from "@tether/shared";
import { ErrorCodes, tetherError } from "../../errors.js";
import { mimeTypeOf } from "../common/rich-output.js";
import { toWorkspaceDirectory, toWorkspacePath } from "../common/workspace-paths.js";
import type { FileResource, LegacyFileList } from "./ds-schemas.js";
import type { FormPart } from "./multipart.js";

/**
 * Files in the dynamic-sessions shapes. The service's files root is
 * /mnt/data: names arrive bare (`data.csv`), with the prefix
 * (`/mnt/data/data.csv`: Semantic Kernel Python, LlamaIndex), or as a name
 * plus a `path` directory (the newer API); all map to the workspace.
 */

/** 2024-02-02-preview list (and upload answer): `{value: [{properties: {filename, size, lastModifiedTime}}]}` with `$id`s as .NET writes them. */
export function legacyFileList(files: readonly FileEntry[]): LegacyFileList {
  let next = 2;
  return {
    $id: "1",
    value: files.map((file) => {
      const entry = { $id: String(next), properties: { $id: String(next + 1), filename: file.path, size: file.size, lastModifiedTime: file.modifiedAt } };
      next += 2;
      return entry;
    }),
  };
}

/** The newer API's file resource. `directory` is relative to /mnt/data ("" at its root). */
export function fileResource(file: FileEntry): FileResource {
  const slash = file.path.lastIndexOf("/");
  return {
    name: slash >= 0 ? file.path.slice(slash + 1) : file.path,
    directory: slash >= 0 ? file.path.slice(0, slash) : "",
    type: "File",
    contentType: mimeTypeOf(file.path),
    sizeInBytes: file.size,
    lastModifiedAt: file.modifiedAt,
  };
}

/**
 * A directory listing of the newer API: the files directly in `directory`
 * and its subdirectories (type Directory); with `recursive`, every file below
 * it. The workspace keeps files only, so directories are derived from paths.
 */
export function listDirectory(files: readonly FileEntry[], directory: string, recursive: boolean): FileResource[] {
  const prefix = directory === "" ? "" : `${directory}/`;
  const below = files.filter((file) => file.path.startsWith(prefix));
  if (recursive) return below.map(fileResource);
  const out: FileResource[] = [];
  const subdirectories = new Map<string, string>();
  for (const file of below) {
    const rest = file.path.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash < 0) {
      out.push(fileResource(file));
      continue;
    }
    const name = rest.slice(0, slash);
    const latest = subdirectories.get(name);
    if (latest === undefined || file.modifiedAt > latest) subdirectories.set(name, file.modifiedAt);
  }
  for (const [name, modifiedAt] of subdirectories) {
    out.push({ name, directory, type: "Directory", contentType: "application/octet-stream", sizeInBytes: 0, lastModifiedAt: modifiedAt });
  }
  return out;
}

/** The workspace path of a file named by `name` inside the `path` query directory (either may carry /mnt/data). */
export function filePathOf(name: string, directory: string | undefined): string {
  const base = toWorkspaceDirectory(directory);
  const file = toWorkspacePath(name);
  return base === "" ? file : toWorkspacePath(`${base}/${file}`);
}

/** The uploaded file of a multipart body: the part named `file` (or the only part with a filename), and where it goes. */
export function uploadedFile(parts: readonly FormPart[], directory: string | undefined): { path: string; data: Buffer } {
  const part = parts.find((candidate) => candidate.name === "file") ?? parts.find((candidate) => candidate.filename !== undefined);
  if (!part) {
    throw tetherError(ErrorCodes.REQUEST_INVALID, "The multipart body has no part named 'file'.", { hint: "Send the file's bytes in a form field named 'file' with a filename." });
  }
  const name = part.filename ?? part.name;
  if (!name) throw tetherError(ErrorCodes.PATH_INVALID, "The uploaded part has no filename.", { hint: "Give the 'file' part a filename." });
  return { path: filePathOf(name, directory), data: part.data };
}
