import { createHash, randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { ErrorCodes, type ErrorCode } from "../errors.js";
import type { ClusterStore } from "../store/cluster-store.js";

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

/**
 * Single-use join tokens, one per launch, kept in the cluster store (memory,
 * or Redis so a worker may dial any replica and a replay against another
 * replica is refused too). Only sha256(token) is kept; the lookup is by
 * digest, so timing reveals nothing about the token. Spent digests are
 * remembered past expiry, so a replay is told apart from a forgery.
 */
export class JoinTokens {
  constructor(
    private readonly store: ClusterStore,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    /** In a cluster: record which replica launched it, so the worker's dial-back through any replica reaches it. */
    private readonly routeLaunches?: { replicaId: string; ttlMs: number },
  ) {}

  async mint(launchId: string, sessionId: string | null): Promise<string> {
    const token = randomBytes(32).toString("base64url");
    const route = this.routeLaunches;
    await Promise.all([
      this.store.mintJoinToken(hash(token), { launchId, sessionId, expiresAt: this.now() + this.ttlMs }, this.ttlMs),
      route ? this.store.putLaunch(launchId, { sessionId, replicaId: route.replicaId }, route.ttlMs) : undefined,
    ]);
    return token;
  }

  /** Checks and spends a token: a second call with the same token is refused, on every replica. */
  async consume(token: string): Promise<JoinTokenCheck> {
    const spent = await this.store.consumeJoinToken(hash(token), this.now());
    if (spent.ok) return { ok: true, binding: spent.record };
    switch (spent.reason) {
      case "invalid":
        return { ok: false, code: ErrorCodes.WORKER_TOKEN_INVALID, message: "The join token is not valid." };
      case "reused":
        return { ok: false, code: ErrorCodes.WORKER_TOKEN_REUSED, message: "The join token was already used; tokens are single-use." };
      case "expired":
        return { ok: false, code: ErrorCodes.WORKER_TOKEN_EXPIRED, message: "The join token has expired; the worker started too late." };
    }
  }

  /** Makes a launch's token unusable (its session ended before the worker joined). */
  revoke(launchId: string): void {
    this.store.revokeJoinToken(launchId).catch((error: unknown) => this.logger.warn({ err: error, launchId }, "could not revoke a join token; it expires by itself"));
  }
}

function hash(token: string): string {
  return createHash("sha256").update(token).digest("base64");
}
