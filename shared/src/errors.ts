/**
 * Stable error codes shared by every package. Tests and clients match on the
 * code, never on the message. Format: TETHER_ERR_<AREA>_<WHAT>.
 */
export const ErrorCodes = {
  AUTH_MISSING: "TETHER_ERR_AUTH_MISSING",
  AUTH_INVALID: "TETHER_ERR_AUTH_INVALID",
  /** A session token or an OIDC JWT past its expiry: get a new one. */
  AUTH_EXPIRED: "TETHER_ERR_AUTH_EXPIRED",
  /** A session token that was revoked (DELETE …/tokens, or its session was deleted). */
  AUTH_REVOKED: "TETHER_ERR_AUTH_REVOKED",
  /** A session token used outside its session, or on a route session tokens may not use. */
  AUTH_SCOPE: "TETHER_ERR_AUTH_SCOPE",
  /** A valid OIDC token without the required role or scope, or without the tenant claim. */
  AUTH_FORBIDDEN: "TETHER_ERR_AUTH_FORBIDDEN",
  /** The OIDC provider's signing keys (discovery document, JWKS) could not be fetched: retry later. */
  AUTH_UNAVAILABLE: "TETHER_ERR_AUTH_UNAVAILABLE",
  /** No session token with this id in this session (DELETE …/tokens/:tokenId). */
  AUTH_TOKEN_NOT_FOUND: "TETHER_ERR_AUTH_TOKEN_NOT_FOUND",

  REQUEST_INVALID: "TETHER_ERR_REQUEST_INVALID",
  REQUEST_MALFORMED_JSON: "TETHER_ERR_REQUEST_MALFORMED_JSON",
  REQUEST_TOO_LARGE: "TETHER_ERR_REQUEST_TOO_LARGE",
  REQUEST_UNSUPPORTED_MEDIA_TYPE: "TETHER_ERR_REQUEST_UNSUPPORTED_MEDIA_TYPE",
  /** A text field (code, stdin, an input reply) holds a NUL byte or a lone surrogate, which a kernel cannot take. */
  REQUEST_INVALID_TEXT: "TETHER_ERR_REQUEST_INVALID_TEXT",
  ROUTE_NOT_FOUND: "TETHER_ERR_ROUTE_NOT_FOUND",
  /** A browser Origin a route does not accept: a websocket upgrade whose Origin is not in TETHER_CORS_ORIGINS, or /mcp called from an origin that is neither the orchestrator's own nor in TETHER_MCP_ALLOWED_ORIGINS. */
  REQUEST_ORIGIN_NOT_ALLOWED: "TETHER_ERR_REQUEST_ORIGIN_NOT_ALLOWED",

  SESSION_NOT_FOUND: "TETHER_ERR_SESSION_NOT_FOUND",
  SESSION_NOT_READY: "TETHER_ERR_SESSION_NOT_READY",
  SESSION_FAILED: "TETHER_ERR_SESSION_FAILED",
  SESSION_STOPPED: "TETHER_ERR_SESSION_STOPPED",
  SESSION_START_TIMEOUT: "TETHER_ERR_SESSION_START_TIMEOUT",
  SESSION_START_FAILED: "TETHER_ERR_SESSION_START_FAILED",
  SESSION_QUEUE_FULL: "TETHER_ERR_SESSION_QUEUE_FULL",
  /** TETHER_MAX_CONCURRENT_STARTS workers are already starting; retry after `Retry-After`. */
  SESSION_START_LIMIT: "TETHER_ERR_SESSION_START_LIMIT",
  /** The tenant holds TETHER_MAX_SESSIONS_PER_TENANT sessions already. */
  SESSION_QUOTA_EXCEEDED: "TETHER_ERR_SESSION_QUOTA_EXCEEDED",

  /** POST /v1/sessions named a worker profile the orchestrator is not configured with (TETHER_PROFILES). */
  PROFILE_UNKNOWN: "TETHER_ERR_PROFILE_UNKNOWN",
  /** `/metrics` without TETHER_METRICS_TOKEN answers loopback clients only. */
  METRICS_FORBIDDEN: "TETHER_ERR_METRICS_FORBIDDEN",

  PATH_INVALID: "TETHER_ERR_PATH_INVALID",
  PATH_ESCAPES_WORKSPACE: "TETHER_ERR_PATH_ESCAPES_WORKSPACE",
  FILE_NOT_FOUND: "TETHER_ERR_FILE_NOT_FOUND",
  FILE_IS_DIRECTORY: "TETHER_ERR_FILE_IS_DIRECTORY",
  FILE_TOO_LARGE: "TETHER_ERR_FILE_TOO_LARGE",
  FILE_IO: "TETHER_ERR_FILE_IO",

  PROTOCOL_MALFORMED_JSON: "TETHER_ERR_PROTOCOL_MALFORMED_JSON",
  PROTOCOL_UNKNOWN_TYPE: "TETHER_ERR_PROTOCOL_UNKNOWN_TYPE",
  PROTOCOL_INVALID_MESSAGE: "TETHER_ERR_PROTOCOL_INVALID_MESSAGE",
  PROTOCOL_FRAME_TOO_LARGE: "TETHER_ERR_PROTOCOL_FRAME_TOO_LARGE",
  PROTOCOL_BINARY_UNSUPPORTED: "TETHER_ERR_PROTOCOL_BINARY_UNSUPPORTED",
  PROTOCOL_VERSION_UNSUPPORTED: "TETHER_ERR_PROTOCOL_VERSION_UNSUPPORTED",
  PROTOCOL_HELLO_EXPECTED: "TETHER_ERR_PROTOCOL_HELLO_EXPECTED",

  WORKER_TOKEN_INVALID: "TETHER_ERR_WORKER_TOKEN_INVALID",
  WORKER_TOKEN_EXPIRED: "TETHER_ERR_WORKER_TOKEN_EXPIRED",
  WORKER_TOKEN_REUSED: "TETHER_ERR_WORKER_TOKEN_REUSED",
  WORKER_LOST: "TETHER_ERR_WORKER_LOST",
  WORKER_CALL_TIMEOUT: "TETHER_ERR_WORKER_CALL_TIMEOUT",
  /** A resume with an unknown or wrong resume token, or for a worker the orchestrator no longer holds. */
  WORKER_RESUME_REFUSED: "TETHER_ERR_WORKER_RESUME_REFUSED",
  /** A file transfer was cut by a worker reconnect; byte streams do not survive one. Retry the transfer. */
  WORKER_TRANSFER_INTERRUPTED: "TETHER_ERR_WORKER_TRANSFER_INTERRUPTED",

  EXEC_DUPLICATE_REQUEST_ID: "TETHER_ERR_EXEC_DUPLICATE_REQUEST_ID",
  EXEC_UNKNOWN_REQUEST: "TETHER_ERR_EXEC_UNKNOWN_REQUEST",
  EXEC_NOT_WAITING_FOR_INPUT: "TETHER_ERR_EXEC_NOT_WAITING_FOR_INPUT",
  EXEC_STDIN_EXHAUSTED: "TETHER_ERR_EXEC_STDIN_EXHAUSTED",
  EXEC_ABORTED: "TETHER_ERR_EXEC_ABORTED",
  /** The execution ran past its timeoutMs and was interrupted (or the kernel restarted). */
  EXEC_TIMEOUT: "TETHER_ERR_EXEC_TIMEOUT",
  /** The execution was ended by a kernel restart someone asked for. */
  EXEC_CANCELLED: "TETHER_ERR_EXEC_CANCELLED",
  /** The kernel went idle without answering the execution (it refused or lost the request). */
  EXEC_NO_REPLY: "TETHER_ERR_EXEC_NO_REPLY",
  /** One rich output (a display or result) was larger than MAX_RICH_OUTPUT_BYTES and was replaced by a notice. */
  OUTPUT_TOO_LARGE: "TETHER_ERR_OUTPUT_TOO_LARGE",
  /** `?after=` names a seq older than the oldest message the session still keeps (retention: time, bytes). */
  EVENTS_EXPIRED: "TETHER_ERR_EVENTS_EXPIRED",
  /** The execution ended long enough ago (or the session ran enough since) that its record was dropped. */
  EXECUTION_EXPIRED: "TETHER_ERR_EXECUTION_EXPIRED",
  /** A websocket client stayed backed up past TETHER_SLOW_CLIENT_TIMEOUT_MS and was disconnected (close 1013); reconnect with ?after=. */
  CLIENT_TOO_SLOW: "TETHER_ERR_CLIENT_TOO_SLOW",

  KERNEL_DIED: "TETHER_ERR_KERNEL_DIED",
  KERNEL_UNAVAILABLE: "TETHER_ERR_KERNEL_UNAVAILABLE",
  KERNEL_RESTART_FAILED: "TETHER_ERR_KERNEL_RESTART_FAILED",

  /** The cloud launcher's identity may not start or read job executions (Azure 403). */
  LAUNCH_FORBIDDEN: "TETHER_ERR_LAUNCH_FORBIDDEN",
  /** The cloud launcher has no usable credential, or its token was refused (Azure 401). */
  LAUNCH_UNAUTHENTICATED: "TETHER_ERR_LAUNCH_UNAUTHENTICATED",
  /** The job (or its resource group or subscription) does not exist (Azure 404). */
  LAUNCH_NOT_FOUND: "TETHER_ERR_LAUNCH_NOT_FOUND",
  /** The cloud API throttled the launch (Azure 429); `retryAfterS` says when to try again. */
  LAUNCH_THROTTLED: "TETHER_ERR_LAUNCH_THROTTLED",
  /** A cloud quota (executions, cores, memory) is used up. */
  LAUNCH_QUOTA: "TETHER_ERR_LAUNCH_QUOTA",
  /** The cloud refused or failed the launch for another reason; the message carries it. */
  LAUNCH_FAILED: "TETHER_ERR_LAUNCH_FAILED",

  /** The session's workspace snapshot was older than TETHER_SNAPSHOT_TTL_S and was deleted: its files are gone. Said once, by the resume that found it; the next call resumes with an empty workspace. */
  SNAPSHOT_EXPIRED: "TETHER_ERR_SNAPSHOT_EXPIRED",
  /** The session had a workspace snapshot and the store no longer holds it (deleted outside Tether, a lifecycle rule): its files are gone. Said once, like SNAPSHOT_EXPIRED. */
  SNAPSHOT_MISSING: "TETHER_ERR_SNAPSHOT_MISSING",
  /** The snapshot store (directory, Azure Blob container) cannot be read or written right now; the snapshot is kept. Retry later. */
  SNAPSHOT_UNAVAILABLE: "TETHER_ERR_SNAPSHOT_UNAVAILABLE",

  /** The session store (Redis, TETHER_REDIS_URL) is unreachable; retry after Retry-After. */
  STORE_UNAVAILABLE: "TETHER_ERR_STORE_UNAVAILABLE",
  /** The session belongs to another replica that cannot be reached right now (it may be failing over); retry after Retry-After. */
  SESSION_OWNER_UNAVAILABLE: "TETHER_ERR_SESSION_OWNER_UNAVAILABLE",
  /** The session moved to another replica while this request waited (a hand-over); its execution goes on there. */
  SESSION_MOVED: "TETHER_ERR_SESSION_MOVED",
  RUNTIME_PYTHON_NOT_FOUND: "TETHER_ERR_RUNTIME_PYTHON_NOT_FOUND",
  /** TETHER_SANDBOX is on but bubblewrap is missing or cannot create namespaces here: the local launcher refuses to start. */
  RUNTIME_SANDBOX_UNAVAILABLE: "TETHER_ERR_RUNTIME_SANDBOX_UNAVAILABLE",
  CONFIG_INVALID: "TETHER_ERR_CONFIG_INVALID",
  INTERNAL: "TETHER_ERR_INTERNAL",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCodes));

/** True for a string that is one of the stable codes above. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && knownCodes.has(value);
}

export interface TetherErrorOptions {
  /** HTTP status when this error ends a REST request. */
  statusCode?: number;
  /** A sentence telling the user how to fix it. */
  hint?: string;
  cause?: unknown;
  /** Seconds a client should wait before retrying (sent as `Retry-After`). */
  retryAfterS?: number;
}

/**
 * Base class of every error Tether raises on purpose. Carries a stable `code`
 * and, where it ends an HTTP request, the status to answer with.
 */
export class TetherError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly hint: string | undefined;
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, options: TetherErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TetherError";
    this.code = code;
    this.statusCode = options.statusCode ?? 500;
    this.hint = options.hint;
    this.retryAfterS = options.retryAfterS;
  }

  /** The JSON body a REST error response carries. */
  toBody(): { error: { code: ErrorCode; message: string; hint?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) } };
  }
}
