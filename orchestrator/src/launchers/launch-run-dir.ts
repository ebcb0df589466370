import { chmod, chown, mkdir, rm, unlink, writeFile } from "node:fs/promises";
import path from "node:path";

/** Uid and gid of a sandbox's processes when they are not the orchestrator's. */
export interface Identity {
  uid: number;
  gid: number;
}

export const JOIN_TOKEN_NAME = "join-token";

/**
 * `<dataDir>/run/<launchId>/`: what one local launch needs on the host
 * besides its workspace (the join token file of an unsandboxed worker; the
 * gateway socket and the limit-kill record of a sandboxed one). Removed when
 * the launch stops.
 */
export class LaunchRunDir {
  private constructor(readonly path: string) {}

  /**
   * Creates the dir. `mode` 0700 for an unsandboxed worker (only our uid
   * reads the token); 0711 when a sandbox uid other than ours must reach the
   * socket inside (it may enter, not list: bwrap binds the dir read-only).
   */
  static async create(runRoot: string, launchId: string, mode: 0o700 | 0o711): Promise<LaunchRunDir> {
    await mkdir(runRoot, { recursive: true, mode });
    await chmod(runRoot, mode);
    const dir = path.join(runRoot, launchId);
    await mkdir(dir, { mode });
    await chmod(dir, mode);
    return new LaunchRunDir(dir);
  }

  file(name: string): string {
    return path.join(this.path, name);
  }

  /** Writes the join token 0600 (owned by `owner` when given) and returns its path. */
  async writeJoinToken(token: string, owner?: Identity): Promise<string> {
    const file = this.file(JOIN_TOKEN_NAME);
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: "wx" });
    if (owner) await chown(file, owner.uid, owner.gid);
    return file;
  }

  /** Removes the token file if the worker has not (it does right after reading it). */
  async removeJoinToken(): Promise<void> {
    await unlink(this.file(JOIN_TOKEN_NAME)).catch(() => undefined);
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}
