import { open, rm, stat } from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { errnoCode } from "../errors.js";
import { unavailable } from "./snapshot-errors.js";

export const LOCK_NAME = "commit.lock";

/** A lock older than this belongs to a process that died holding it (the sections it guards take milliseconds). */
const STALE_LOCK_MS = 30_000;
const RETRY_MS = 20;
const MAX_WAIT_MS = 10_000;

/**
 * Runs `section` holding `<dir>/commit.lock`, created with O_EXCL, which
 * also excludes other processes sharing the directory (another replica on
 * the same volume). Guards the manifest swaps of saves and of the expiry
 * sweep, so a sweep never marks expired a snapshot that a save has just
 * replaced.
 */
export async function withSnapshotLock<T>(dir: string, section: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, LOCK_NAME);
  const deadline = Date.now() + MAX_WAIT_MS;
  for (;;) {
    try {
      await (await open(lock, "wx", 0o600)).close();
      break;
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") throw error;
      const held = await stat(lock).catch(() => undefined);
      if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw unavailable(`The snapshot lock '${lock}' has been held for over ${MAX_WAIT_MS} ms.`);
      await delay(RETRY_MS);
    }
  }
  try {
    return await section();
  } finally {
    await rm(lock, { force: true });
  }
}
