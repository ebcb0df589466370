import { createHash, randomBytes } from "node:crypto";
import { ErrorCodes, type ErrorCode } from "../errors.js";

export interface JoinTokenBinding {
  launchId: string;
  /** null for a warm-pool worker. */
  sessionId: string | null;
  /** Epoch ms. */
  expiresAt: number;
}

export type JoinTokenCheck =
  | { ok: true; binding: JoinTokenBinding }
  | { ok: false; code: ErrorCode; message: string };

interface Entry extends JoinTokenBinding {
  spent: boolean;
}

/**
 * Single-use join tokens, one per launch. Only sha256(token) is kept; the
 * lookup is by digest, so timing reveals nothing about the token. Spent
 * digests are remembered until they would have expired, so a replay is told
 * apart from a forgery.
 */
export class JoinTokenStore {
  private readonly entries = new Map<string, Entry>();
  private readonly digestByLaunch = new Map<string, string>();
  private lastSweepAt = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  mint(launchId: string, sessionId: string | null): string {
    this.sweep();
    const token = randomBytes(32).toString("base64url");
    const digest = hash(token);
    this.entries.set(digest, { launchId, sessionId, expiresAt: this.now() + this.ttlMs, spent: false });
    this.digestByLaunch.set(launchId, digest);
    return token;
  }

  /** Checks and spends a token: a second call with the same token is refused. */
  consume(token: string): JoinTokenCheck {
    this.sweep();
    const entry = this.entries.get(hash(token));
    if (!entry) return { ok: false, code: ErrorCodes.WORKER_TOKEN_INVALID, message: "The join token is not valid." };
    if (entry.spent) return { ok: false, code: ErrorCodes.WORKER_TOKEN_REUSED, message: "The join token was already used; tokens are single-use." };
    if (this.now() >= entry.expiresAt) {
      return { ok: false, code: ErrorCodes.WORKER_TOKEN_EXPIRED, message: "The join token has expired; the worker started too late." };
    }
    entry.spent = true;
    return { ok: true, binding: { launchId: entry.launchId, sessionId: entry.sessionId, expiresAt: entry.expiresAt } };
  }

  /** Makes a launch's token unusable (its session ended before the worker joined). */
  revoke(launchId: string): void {
    const digest = this.digestByLaunch.get(launchId);
    if (digest === undefined) return;
    this.digestByLaunch.delete(launchId);
    const entry = this.entries.get(digest);
    if (entry) entry.spent = true;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Forgets entries past expiry: by then an expired token and an unknown one are refused alike anyway. */
  private sweep(): void {
    const now = this.now();
    // Throttled: with thousands of sessions a full pass per mint adds up.
    if (now - this.lastSweepAt < 1000) return;
    this.lastSweepAt = now;
    for (const [digest, entry] of this.entries) {
      if (now >= entry.expiresAt + this.ttlMs) {
        this.entries.delete(digest);
        if (this.digestByLaunch.get(entry.launchId) === digest) this.digestByLaunch.delete(entry.launchId);
      }
    }
  }
}

function hash(token: string): string {
  return createHash("sha256").update(token).digest("base64");
}
