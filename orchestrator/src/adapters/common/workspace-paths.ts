import { checkWorkspacePath } from "@tether/shared";
import { tetherError } from "../../errors.js";

/**
 * Where code written for Azure dynamic sessions (and many agent prompts)
 * expects files. Sandboxed and container launchers mount the workspace there;
 * the file APIs of the adapters accept the prefix whatever the launcher.
 */
export const MNT_DATA = "/mnt/data";

/** `/mnt/data/a.csv`, `./a.csv` and `a.csv` all name the workspace file `a.csv`; `/mnt/data` alone is the workspace (""). */
export function stripDataPrefix(raw: string): string {
  let path = raw.trim();
  if (path === MNT_DATA || path === `${MNT_DATA}/`) return "";
  if (path.startsWith(`${MNT_DATA}/`)) path = path.slice(MNT_DATA.length + 1);
  while (path.startsWith("./")) path = path.slice(2);
  return path;
}

/** A workspace-relative file path from an agent's path, or 400 PATH_INVALID / PATH_ESCAPES_WORKSPACE. */
export function toWorkspacePath(raw: string): string {
  const check = checkWorkspacePath(stripDataPrefix(raw));
  if (!check.ok) {
    throw tetherError(check.code, check.message, { hint: `Give a path relative to the workspace (e.g. 'data.csv'), or under ${MNT_DATA}/.` });
  }
  return check.path;
}

/** A workspace-relative directory ("" for the workspace itself), same rules. */
export function toWorkspaceDirectory(raw: string | undefined): string {
  const stripped = stripDataPrefix(raw ?? "").replace(/\/+$/, "");
  return stripped === "" || stripped === "." ? "" : toWorkspacePath(stripped);
}
