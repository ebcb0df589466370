import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { ErrorCodes, errnoCode, errorMessage, tetherError } from "./errors.js";

export interface ApiKeyFile {
  key: string;
  path: string;
  /** True when this start generated the key: the only time it may be printed. */
  created: boolean;
}

/**
 * The key used when TETHER_API_KEYS is unset: generated once, then kept in
 * `<dataDir>/api-key` (mode 600) and reused on later starts.
 */
export async function ensureApiKeyFile(dataDir: string): Promise<ApiKeyFile> {
  const file = path.join(dataDir, "api-key");
  // Private: the key, workspaces and snapshots live here.
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  try {
    const key = (await readFile(file, "utf8")).trim();
    if (key) {
      // Tighten permissions a hand-edited file may have lost.
      await chmod(file, 0o600);
      return { key, path: file, created: false };
    }
  } catch (error) {
    if (errnoCode(error) !== "ENOENT") {
      throw tetherError(ErrorCodes.CONFIG_INVALID, `Cannot read the API key file ${file}: ${errorMessage(error)}`, { cause: error });
    }
  }
  const key = `tk_${randomBytes(24).toString("base64url")}`;
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return { key, path: file, created: true };
}
