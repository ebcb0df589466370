import { randomBytes } from "node:crypto";
import { SESSION_TOKEN_PREFIX, type SessionTokenInfo } from "@tether/shared";
import { ErrorCodes, tetherError } from "../errors.js";
import { secretDigest } from "./digest.js";
import type { Principal } from "./principal.js";
import type { SessionTokenStore } from "./session-token-store.js";

export interface SessionTokensOptions {
  /** TETHER_SESSION_TOKEN_TTL_S: lifetime when a mint names none. */
  defaultTtlS: number;
  /** TETHER_SESSION_TOKEN_MAX_TTL_S. */
  maxTtlS: number;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number;
}

/** 32 random bytes: as strong as the generated API keys. */
const TOKEN_BYTES = 32;

/**
 * Mints, checks and revokes session tokens: opaque random strings (`tst_…`)
 * bound to one tenant's session, kept only as digests in a SessionTokenStore.
 */
export class SessionTokens {
  private readonly now: () => number;

  constructor(
    private readonly store: SessionTokenStore,
    private readonly options: SessionTokensOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** A new token for the session; 400 TETHER_ERR_REQUEST_INVALID for a ttlS above the maximum. */
  async mint(tenant: string, sessionId: string, ttlS: number | undefined): Promise<SessionTokenInfo> {
    const lifetimeS = ttlS ?? this.options.defaultTtlS;
    if (lifetimeS > this.options.maxTtlS) {
      throw tetherError(ErrorCodes.REQUEST_INVALID, `ttlS ${lifetimeS} is above the maximum of ${this.options.maxTtlS} s.`, {
        hint: "Ask for a shorter token and mint a new one when it expires, or raise TETHER_SESSION_TOKEN_MAX_TTL_S.",
      });
    }
    const token = `${SESSION_TOKEN_PREFIX}${randomBytes(TOKEN_BYTES).toString("base64url")}`;
    const tokenId = `stk_${randomBytes(12).toString("hex")}`;
    const createdAtMs = this.now();
    const expiresAtMs = createdAtMs + lifetimeS * 1000;
    await this.store.put({ tokenId, digest: secretDigest(token), tenant, sessionId, createdAtMs, expiresAtMs });
    return { token, tokenId, sessionId, expiresAt: new Date(expiresAtMs).toISOString() };
  }

  /** The principal of a live token; 401 _AUTH_INVALID (unknown), _AUTH_REVOKED or _AUTH_EXPIRED otherwise. */
  async verify(token: string): Promise<Extract<Principal, { kind: "session-token" }>> {
    const record = await this.store.findByDigest(secretDigest(token));
    if (!record) {
      throw tetherError(ErrorCodes.AUTH_INVALID, "The session token is not valid.", {
        hint: "Mint a session token with POST /v1/sessions/:id/tokens; tokens do not survive an orchestrator restart with the memory store.",
      });
    }
    if (record.revokedAtMs !== undefined) {
      throw tetherError(ErrorCodes.AUTH_REVOKED, `Session token ${record.tokenId} was revoked.`, {
        hint: "It was revoked with DELETE /v1/sessions/:id/tokens, or its session was deleted; ask the backend for a new one.",
      });
    }
    if (record.expiresAtMs <= this.now()) {
      throw tetherError(ErrorCodes.AUTH_EXPIRED, `Session token ${record.tokenId} expired at ${new Date(record.expiresAtMs).toISOString()}.`, {
        hint: "Ask the backend for a new session token (POST /v1/sessions/:id/tokens).",
      });
    }
    return { kind: "session-token", tenant: record.tenant, sessionId: record.sessionId, tokenId: record.tokenId };
  }

  /** Revokes one token of the session; 404 TETHER_ERR_AUTH_TOKEN_NOT_FOUND when it has none with that id. */
  async revoke(sessionId: string, tokenId: string): Promise<void> {
    if (!(await this.store.revokeOne(sessionId, tokenId, this.now()))) {
      throw tetherError(ErrorCodes.AUTH_TOKEN_NOT_FOUND, `Session ${sessionId} has no token ${tokenId}.`, {
        hint: "Use the tokenId that POST /v1/sessions/:id/tokens answered, with the same session id.",
      });
    }
  }

  /** Revokes every token of the session (on DELETE …/tokens, and when the session goes away); returns how many were live. */
  revokeSession(sessionId: string): Promise<number> {
    return this.store.revokeSession(sessionId, this.now());
  }
}
