import { isRecord, stringField } from "@tether/shared";
import {
  AuthenticationError,
  ClientErrorCodes,
  ConflictError,
  ConnectionError,
  EventsExpiredError,
  InvalidRequestError,
  NotFoundError,
  PermissionError,
  ProtocolError,
  RateLimitError,
  ServerError,
  type TetherError,
  type TetherErrorClass,
} from "./errors.js";

/** Every way a call to the orchestrator can fail on the way there or back. */
export type TransportFailure =
  | "network"
  | "timeout"
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "gone"
  | "rate_limited"
  | "server_error"
  | "unavailable"
  | "bad_response";

interface TransportMapping {
  ErrorClass: TetherErrorClass;
  /** Used when the server sent no `error.code` (a proxy's answer, or no answer). */
  code: string;
  /** Used when the server sent no hint. */
  hint: string;
  /** Worth trying again as it is (the stream reconnects on these). */
  retryable: boolean;
}

/**
 * The one table from transport failures to SDK errors. A `Record` over the
 * union: a failure kind without a row does not compile.
 */
export const TRANSPORT_ERRORS: Record<TransportFailure, TransportMapping> = {
  network: {
    ErrorClass: ConnectionError,
    code: ClientErrorCodes.NETWORK,
    hint: "Check baseUrl and that the orchestrator is running; in a browser, the page's origin must be listed in the orchestrator's TETHER_CORS_ORIGINS.",
    retryable: true,
  },
  timeout: {
    ErrorClass: ConnectionError,
    code: ClientErrorCodes.TIMEOUT,
    hint: "The orchestrator did not answer within requestTimeoutMs; raise it (per call or on the client) or check the orchestrator's load.",
    retryable: true,
  },
  bad_request: {
    ErrorClass: InvalidRequestError,
    code: "TETHER_ERR_REQUEST_INVALID",
    hint: "The request does not match the API (docs/api.md): check paths, sizes and fields.",
    retryable: false,
  },
  unauthorized: {
    ErrorClass: AuthenticationError,
    code: "TETHER_ERR_AUTH_INVALID",
    hint: "Pass a valid apiKey, or a session token (token); session tokens expire: ask your backend for a new one.",
    retryable: false,
  },
  forbidden: {
    ErrorClass: PermissionError,
    code: "TETHER_ERR_AUTH_SCOPE",
    hint: "A session token reaches its own session only and cannot create, list or delete sessions; do that on your backend with the API key.",
    retryable: false,
  },
  not_found: {
    ErrorClass: NotFoundError,
    code: "TETHER_ERR_SESSION_NOT_FOUND",
    hint: "The session (or file, or execution) does not exist for this credential: it was deleted, or belongs to another tenant.",
    retryable: false,
  },
  conflict: {
    ErrorClass: ConflictError,
    code: "TETHER_ERR_SESSION_NOT_READY",
    hint: "The session cannot do this in its current state; wait until it is ready (session.waitUntilReady()), or create a new one if it failed.",
    retryable: false,
  },
  gone: {
    ErrorClass: EventsExpiredError,
    code: "TETHER_ERR_EVENTS_EXPIRED",
    hint: "The session no longer keeps those messages; results of executions are read from GET /v1/sessions/:id/executions/:requestId.",
    retryable: false,
  },
  rate_limited: {
    ErrorClass: RateLimitError,
    code: "TETHER_ERR_SESSION_START_LIMIT",
    hint: "Too many starts, sessions or queued executions: retry after retryAfterMs.",
    retryable: false,
  },
  server_error: {
    ErrorClass: ServerError,
    code: "TETHER_ERR_INTERNAL",
    hint: "The orchestrator failed; retry, and report it with the time and session id if it persists.",
    retryable: false,
  },
  unavailable: {
    ErrorClass: ServerError,
    code: ClientErrorCodes.HTTP,
    hint: "The orchestrator (or a proxy in front of it) is unavailable or restarting; retry shortly.",
    retryable: true,
  },
  bad_response: {
    ErrorClass: ProtocolError,
    code: ClientErrorCodes.BAD_RESPONSE,
    hint: "The server's answer does not match this SDK's protocol: is baseUrl a Tether orchestrator of a compatible version?",
    retryable: false,
  },
};

/** The failure kind of an HTTP error status. */
export function classifyStatus(status: number): TransportFailure {
  switch (status) {
    case 400:
    case 413:
    case 415:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 410:
      return "gone";
    case 429:
      return "rate_limited";
    case 502:
    case 503:
    case 504:
      return "unavailable";
    default:
      return status >= 500 ? "server_error" : "bad_request";
  }
}

/** The SDK error for an HTTP error answer: the server's code, message and hint when its body has them. */
export function errorFromResponse(status: number, body: unknown, retryAfter: string | null, context: string): TetherError {
  const failure = classifyStatus(status);
  const mapping = TRANSPORT_ERRORS[failure];
  const error = isRecord(body) ? body.error : undefined;
  const serverCode = stringField(error, "code");
  return new mapping.ErrorClass({
    code: serverCode ?? (failure === "unavailable" || failure === "server_error" ? ClientErrorCodes.HTTP : mapping.code),
    message: stringField(error, "message") ?? `${context} answered HTTP ${status}.`,
    hint: stringField(error, "hint") ?? mapping.hint,
    status,
    retryAfterMs: retryAfterMs(retryAfter),
  });
}

/** The SDK error for a failure without an HTTP answer. */
export function transportError(failure: "network" | "timeout" | "bad_response", message: string, cause?: unknown): TetherError {
  const mapping = TRANSPORT_ERRORS[failure];
  return new mapping.ErrorClass({ code: mapping.code, message, hint: mapping.hint, cause });
}

/** True for errors the stream retries by reconnecting (network, timeouts, 502-504). */
export function isRetryable(error: TetherError): boolean {
  if (error.status !== undefined) return TRANSPORT_ERRORS[classifyStatus(error.status)].retryable;
  return error.code === ClientErrorCodes.NETWORK || error.code === ClientErrorCodes.TIMEOUT;
}

/** `Retry-After` (seconds, or an HTTP date) in milliseconds; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
