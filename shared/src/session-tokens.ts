import { Type, type Static } from "@sinclair/typebox";

/**
 * Session-scoped tokens: a backend holding an API key (or an OIDC token) mints
 * one for a session and hands it to a browser, which may then use that one
 * session (its stream and its REST routes) and nothing else.
 */

/** Prefix of every session token: tells it apart from API keys and JWTs. */
export const SESSION_TOKEN_PREFIX = "tst_";

/** `POST /v1/sessions/:id/tokens` (the body may be empty). */
export const CreateSessionTokenBody = Type.Object(
  {
    /** Lifetime in seconds; default TETHER_SESSION_TOKEN_TTL_S (900), at most TETHER_SESSION_TOKEN_MAX_TTL_S. */
    ttlS: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type CreateSessionTokenBody = Static<typeof CreateSessionTokenBody>;

export const SessionTokenInfo = Type.Object({
  /** The secret (`tst_…`): shown once, kept by the orchestrator only as a SHA-256 digest. */
  token: Type.String(),
  /** Names the token in `DELETE /v1/sessions/:id/tokens/:tokenId`; not a secret. */
  tokenId: Type.String(),
  sessionId: Type.String(),
  /** ISO 8601. */
  expiresAt: Type.String(),
});
export type SessionTokenInfo = Static<typeof SessionTokenInfo>;

/** `DELETE /v1/sessions/:id/tokens`: how many live tokens were revoked. */
export const RevokedSessionTokens = Type.Object({ revoked: Type.Integer() });
export type RevokedSessionTokens = Static<typeof RevokedSessionTokens>;
