/**
 * Errors the SDK throws. Every one is a `TetherError` carrying a stable `code`:
 * the server's own (`TETHER_ERR_…`, see docs/api.md) when the server answered,
 * or one of `ClientErrorCodes` when it could not (network, timeout, abort).
 * Match on the class or on `code`, never on the message.
 */

/** Codes of failures the SDK detects itself (the server's codes come through as they are). */
export const ClientErrorCodes = {
  /** The orchestrator could not be reached (refused, reset, DNS, or a browser's CORS refusal). */
  NETWORK: "TETHER_ERR_CLIENT_NETWORK",
  /** A request took longer than its `requestTimeoutMs`. */
  TIMEOUT: "TETHER_ERR_CLIENT_TIMEOUT",
  /** The caller's AbortSignal fired. */
  ABORTED: "TETHER_ERR_CLIENT_ABORTED",
  /** The server answered something that is not what the API promises. */
  BAD_RESPONSE: "TETHER_ERR_CLIENT_BAD_RESPONSE",
  /** An HTTP error without a Tether error body (a proxy, a load balancer). */
  HTTP: "TETHER_ERR_CLIENT_HTTP",
  /** The session object was closed (`session.close()`), or its stream gave up reconnecting. */
  CLOSED: "TETHER_ERR_CLIENT_CLOSED",
  /** The SDK was configured wrongly (no base URL, both an API key and a token, …). */
  CONFIG: "TETHER_ERR_CLIENT_CONFIG",
  /** The orchestrator is too old for a feature the call needs. */
  FEATURE_UNSUPPORTED: "TETHER_ERR_CLIENT_FEATURE_UNSUPPORTED",
} as const;
export type ClientErrorCode = (typeof ClientErrorCodes)[keyof typeof ClientErrorCodes];

export interface TetherErrorInit {
  /** The server's `error.code`, or a `ClientErrorCodes` value. */
  code: string;
  message: string;
  /** A sentence on how to fix it: the server's hint, else the SDK's. */
  hint?: string | undefined;
  /** HTTP status, when an HTTP answer caused it. */
  status?: number | undefined;
  /** How long to wait before retrying (from `Retry-After`), when the server said. */
  retryAfterMs?: number | undefined;
  /** The execution it concerns, when there is one. */
  requestId?: string | undefined;
  cause?: unknown;
}

/** Base class of every error the SDK throws. */
export class TetherError extends Error {
  override name = "TetherError";
  readonly code: string;
  readonly hint: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly requestId: string | undefined;

  constructor(init: TetherErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.hint = init.hint;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
    this.requestId = init.requestId;
  }
}

/** The orchestrator could not be reached, or did not answer in time. Usually worth a retry. */
export class ConnectionError extends TetherError {
  override name = "ConnectionError";
}
/** 401: no credential, a wrong one, or an expired or revoked session token. */
export class AuthenticationError extends TetherError {
  override name = "AuthenticationError";
}
/** 403: the credential may not do this (a session token outside its session), or the page's origin is not allowed. */
export class PermissionError extends TetherError {
  override name = "PermissionError";
}
/** 404: no such session (also another tenant's), file, execution or route. */
export class NotFoundError extends TetherError {
  override name = "NotFoundError";
}
/** 409: the session's state forbids it now (starting, failed, deleted). */
export class ConflictError extends TetherError {
  override name = "ConflictError";
}
/** 400, 413, 415: the request itself is wrong (a bad path, a body too large). */
export class InvalidRequestError extends TetherError {
  override name = "InvalidRequestError";
}
/** 429: too many starts, sessions or queued executions; `retryAfterMs` says when to retry. */
export class RateLimitError extends TetherError {
  override name = "RateLimitError";
}
/** 5xx: the orchestrator or the worker failed. */
export class ServerError extends TetherError {
  override name = "ServerError";
}
/**
 * 410: the stream no longer holds the messages a reconnect asked for. Execute
 * still resolves (its result is read from `GET …/executions/:requestId`), but
 * some callbacks did not fire: this is what `onEventsExpired` and the session's
 * `events_expired` event report.
 */
export class EventsExpiredError extends TetherError {
  override name = "EventsExpiredError";
}
/** The server refused a stream frame (`protocol_error`), or answered outside the protocol. */
export class ProtocolError extends TetherError {
  override name = "ProtocolError";
}
/** The session failed to start (or its stream closed because it failed). */
export class SessionStartError extends TetherError {
  override name = "SessionStartError";
}
/** The caller's AbortSignal fired before the call was made or answered. */
export class AbortError extends TetherError {
  override name = "AbortError";
}

/** The class for each kind of failure; `transport-errors.ts` picks one per HTTP status. */
export type TetherErrorClass = new (init: TetherErrorInit) => TetherError;
