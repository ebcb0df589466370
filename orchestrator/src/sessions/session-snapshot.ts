import type { SessionInfo } from "@tether/shared";
import { ErrorCodes, tetherError } from "../errors.js";
import type { RestoredFile, SnapshotLookup, SnapshotSummary } from "../snapshots/snapshot-store.js";

type Loss = "expired" | "missing";

/**
 * What a session knows of its workspace snapshot, and the rule for a resume
 * that finds it gone: losing a user's files is never silent. The first
 * resume that finds the snapshot expired (or missing) fails with 410
 * TETHER_ERR_SNAPSHOT_EXPIRED (or _MISSING) and `snapshot.lost` says so; once
 * that was told, the next resume goes on with an empty workspace.
 */
export class SessionSnapshot {
  private summary: SnapshotSummary | undefined;
  private lost: Loss | undefined;
  private lossReported = false;

  constructor(private readonly sessionId: string) {}

  /** Continues what another replica knew (its record's `snapshot`), a loss it already told included. */
  adopt(info: SessionInfo["snapshot"]): void {
    if (!info) return;
    const { lost, ...summary } = info;
    this.summary = summary;
    this.lost = lost;
    this.lossReported = lost !== undefined;
  }

  /** A scale to zero saved the workspace. */
  taken(summary: SnapshotSummary): void {
    this.summary = summary;
    this.lost = undefined;
    this.lossReported = false;
  }

  /**
   * The files a resume restores: the snapshot found, else nothing for a
   * session that never had one (or whose loss was already told). Throws
   * SNAPSHOT_EXPIRED / SNAPSHOT_MISSING the first time the files are gone.
   */
  filesToRestore(lookup: SnapshotLookup, now = Date.now()): AsyncIterable<RestoredFile> | undefined {
    switch (lookup.kind) {
      case "found":
        this.summary = lookup.summary;
        return lookup.files;
      case "expired":
        this.summary ??= { files: 0, bytes: 0, savedAt: lookup.savedAt };
        return this.gone("expired", `expired at ${lookup.expiredAt} (saved ${lookup.savedAt}; TETHER_SNAPSHOT_TTL_S)`);
      case "none": {
        if (!this.summary) return undefined;
        const expiresAt = this.summary.expiresAt ? Date.parse(this.summary.expiresAt) : undefined;
        // Past its expiry the sweep (or a storage lifecycle rule) may have removed even the expiry marker.
        if (expiresAt !== undefined && expiresAt <= now) return this.gone("expired", `expired at ${this.summary.expiresAt} (TETHER_SNAPSHOT_TTL_S)`);
        return this.gone("missing", `saved at ${this.summary.savedAt}, is no longer in the snapshot store`);
      }
      default: {
        const unreachable: never = lookup;
        return unreachable;
      }
    }
  }

  /** SessionInfo.snapshot. */
  info(): SessionInfo["snapshot"] {
    return this.summary ? { ...this.summary, ...(this.lost ? { lost: this.lost } : {}) } : undefined;
  }

  private gone(loss: Loss, detail: string): undefined {
    this.lost = loss;
    if (this.lossReported) return undefined;
    this.lossReported = true;
    const code = loss === "expired" ? ErrorCodes.SNAPSHOT_EXPIRED : ErrorCodes.SNAPSHOT_MISSING;
    throw tetherError(code, `The workspace files of session '${this.sessionId}' are gone: its snapshot ${detail}.`, {
      hint: "Variables and files of this session are lost. The next call resumes it with an empty workspace; or delete it and create a new session.",
    });
  }
}
