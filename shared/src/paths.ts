import { ErrorCodes, type ErrorCode } from "./errors.js";
import { findInvalidText } from "./text-check.js";

/** Longest workspace-relative path accepted, in bytes of UTF-16 code units. */
export const MAX_WORKSPACE_PATH_LENGTH = 1024;

export type WorkspacePathCheck =
  | { ok: true; path: string; segments: string[] }
  | { ok: false; code: ErrorCode; message: string };

/**
 * Checks the syntax of a path relative to a session workspace, without
 * touching the disk. Refuses absolute paths, `..` segments, empty segments,
 * NUL bytes and backslashes. Symlinks are the worker's job: only it can see
 * the disk.
 */
export function checkWorkspacePath(raw: string): WorkspacePathCheck {
  if (raw.length === 0) return { ok: false, code: ErrorCodes.PATH_INVALID, message: "The file path is empty." };
  if (raw.length > MAX_WORKSPACE_PATH_LENGTH) {
    return { ok: false, code: ErrorCodes.PATH_INVALID, message: `The file path is longer than ${MAX_WORKSPACE_PATH_LENGTH} characters.` };
  }
  const invalid = findInvalidText(raw);
  if (invalid) return { ok: false, code: ErrorCodes.PATH_INVALID, message: `The file path contains ${invalid.what} at character ${invalid.index}.` };
  if (raw.includes("\\")) {
    return { ok: false, code: ErrorCodes.PATH_INVALID, message: "The file path contains a backslash; use '/' between directories." };
  }
  if (raw.startsWith("/") || /^[A-Za-z]:/.test(raw)) {
    return {
      ok: false,
      code: ErrorCodes.PATH_ESCAPES_WORKSPACE,
      message: `The file path '${raw}' is absolute; give a path relative to the session workspace.`,
    };
  }
  const segments = raw.split("/").filter((segment, index, all) => !(segment === "" && index === all.length - 1));
  for (const segment of segments) {
    if (segment === "..") {
      return { ok: false, code: ErrorCodes.PATH_ESCAPES_WORKSPACE, message: `The file path '${raw}' leaves the session workspace ('..').` };
    }
    if (segment === "" || segment === ".") {
      return { ok: false, code: ErrorCodes.PATH_INVALID, message: `The file path '${raw}' has an empty or '.' segment.` };
    }
  }
  return { ok: true, path: segments.join("/"), segments };
}
