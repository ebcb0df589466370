import { ErrorCodes, TetherError, errnoCode, errorMessage, findInvalidText, isErrorCode, type ErrorCode } from "@tether/shared";

/**
 * The orchestrator's one error registry: every error it raises on purpose is a
 * TetherError carrying a stable code and the HTTP status it ends a request with.
 */
export { ErrorCodes, TetherError, errnoCode, errorMessage };
export type { ErrorCode };

/**
 * The HTTP status of every code: exhaustive, so a new code without a status
 * does not compile. Codes that travel only on websockets or to workers get
 * the status they would have if a REST call ever carried them.
 */
const statusByCode: Record<ErrorCode, number> = {
  [ErrorCodes.AUTH_MISSING]: 401,
  [ErrorCodes.AUTH_INVALID]: 401,
  [ErrorCodes.AUTH_EXPIRED]: 401,
  [ErrorCodes.AUTH_REVOKED]: 401,
  [ErrorCodes.AUTH_SCOPE]: 403,
  [ErrorCodes.AUTH_FORBIDDEN]: 403,
  // The identity provider is the orchestrator's upstream: the token may well be valid.
  [ErrorCodes.AUTH_UNAVAILABLE]: 503,
  [ErrorCodes.AUTH_TOKEN_NOT_FOUND]: 404,
  [ErrorCodes.REQUEST_INVALID]: 400,
  [ErrorCodes.REQUEST_MALFORMED_JSON]: 400,
  [ErrorCodes.REQUEST_TOO_LARGE]: 413,
  [ErrorCodes.REQUEST_UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCodes.REQUEST_INVALID_TEXT]: 400,
  [ErrorCodes.ROUTE_NOT_FOUND]: 404,
  [ErrorCodes.REQUEST_ORIGIN_NOT_ALLOWED]: 403,
  [ErrorCodes.SESSION_NOT_FOUND]: 404,
  [ErrorCodes.SESSION_NOT_READY]: 409,
  [ErrorCodes.SESSION_FAILED]: 409,
  [ErrorCodes.SESSION_STOPPED]: 409,
  [ErrorCodes.SESSION_START_TIMEOUT]: 504,
  [ErrorCodes.SESSION_START_FAILED]: 502,
  [ErrorCodes.SESSION_QUEUE_FULL]: 429,
  [ErrorCodes.SESSION_START_LIMIT]: 429,
  [ErrorCodes.SESSION_QUOTA_EXCEEDED]: 429,
  [ErrorCodes.PROFILE_UNKNOWN]: 400,
  [ErrorCodes.METRICS_FORBIDDEN]: 403,
  [ErrorCodes.PATH_INVALID]: 400,
  [ErrorCodes.PATH_ESCAPES_WORKSPACE]: 400,
  [ErrorCodes.FILE_NOT_FOUND]: 404,
  [ErrorCodes.FILE_IS_DIRECTORY]: 400,
  [ErrorCodes.FILE_TOO_LARGE]: 413,
  [ErrorCodes.FILE_IO]: 500,
  [ErrorCodes.PROTOCOL_MALFORMED_JSON]: 400,
  [ErrorCodes.PROTOCOL_UNKNOWN_TYPE]: 400,
  [ErrorCodes.PROTOCOL_INVALID_MESSAGE]: 400,
  [ErrorCodes.PROTOCOL_FRAME_TOO_LARGE]: 413,
  [ErrorCodes.PROTOCOL_BINARY_UNSUPPORTED]: 400,
  [ErrorCodes.PROTOCOL_VERSION_UNSUPPORTED]: 400,
  [ErrorCodes.PROTOCOL_HELLO_EXPECTED]: 400,
  [ErrorCodes.WORKER_TOKEN_INVALID]: 401,
  [ErrorCodes.WORKER_TOKEN_EXPIRED]: 401,
  [ErrorCodes.WORKER_TOKEN_REUSED]: 401,
  [ErrorCodes.WORKER_RESUME_REFUSED]: 401,
  [ErrorCodes.WORKER_LOST]: 502,
  [ErrorCodes.WORKER_CALL_TIMEOUT]: 504,
  [ErrorCodes.WORKER_TRANSFER_INTERRUPTED]: 503,
  [ErrorCodes.EXEC_DUPLICATE_REQUEST_ID]: 409,
  [ErrorCodes.EXEC_UNKNOWN_REQUEST]: 404,
  [ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT]: 409,
  [ErrorCodes.EXEC_STDIN_EXHAUSTED]: 400,
  [ErrorCodes.EXEC_ABORTED]: 409,
  [ErrorCodes.EXEC_TIMEOUT]: 504,
  [ErrorCodes.EXEC_CANCELLED]: 409,
  [ErrorCodes.EXEC_NO_REPLY]: 502,
  [ErrorCodes.OUTPUT_TOO_LARGE]: 413,
  [ErrorCodes.CLIENT_TOO_SLOW]: 429,
  [ErrorCodes.EVENTS_EXPIRED]: 410,
  [ErrorCodes.EXECUTION_EXPIRED]: 410,
  [ErrorCodes.KERNEL_DIED]: 502,
  [ErrorCodes.KERNEL_UNAVAILABLE]: 503,
  [ErrorCodes.KERNEL_RESTART_FAILED]: 502,
  // Launch errors are the orchestrator's upstream failing, not the client's request.
  [ErrorCodes.LAUNCH_FORBIDDEN]: 502,
  [ErrorCodes.LAUNCH_UNAUTHENTICATED]: 502,
  [ErrorCodes.LAUNCH_NOT_FOUND]: 502,
  [ErrorCodes.LAUNCH_THROTTLED]: 429,
  [ErrorCodes.LAUNCH_QUOTA]: 503,
  [ErrorCodes.LAUNCH_FAILED]: 502,
  // Gone for good (the files of the snapshot): not a retryable failure of the request.
  [ErrorCodes.SNAPSHOT_EXPIRED]: 410,
  [ErrorCodes.SNAPSHOT_MISSING]: 410,
  [ErrorCodes.SNAPSHOT_UNAVAILABLE]: 503,
  [ErrorCodes.STORE_UNAVAILABLE]: 503,
  [ErrorCodes.SESSION_OWNER_UNAVAILABLE]: 503,
  [ErrorCodes.SESSION_MOVED]: 503,
  [ErrorCodes.RUNTIME_PYTHON_NOT_FOUND]: 500,
  [ErrorCodes.RUNTIME_SANDBOX_UNAVAILABLE]: 500,
  [ErrorCodes.CONFIG_INVALID]: 500,
  [ErrorCodes.INTERNAL]: 500,
};

export function httpStatusFor(code: ErrorCode): number {
  return statusByCode[code];
}

/** Makes a TetherError from an error detail a worker sent (call_result, stream_end); an unknown code becomes INTERNAL. */
export function errorFromDetail(detail: { code: string; message: string }): TetherError {
  const code = isErrorCode(detail.code) ? detail.code : ErrorCodes.INTERNAL;
  return new TetherError(code, detail.message, { statusCode: httpStatusFor(code) });
}

/** Builds a TetherError whose HTTP status comes from the table above. */
export function tetherError(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown; retryAfterS?: number } = {}): TetherError {
  return new TetherError(code, message, { ...options, statusCode: httpStatusFor(code) });
}

export function sessionNotFound(sessionId: string): TetherError {
  return tetherError(ErrorCodes.SESSION_NOT_FOUND, `Session '${sessionId}' does not exist.`, {
    hint: "Create a session with POST /v1/sessions; sessions belong to the API key's tenant that created them.",
  });
}

export function configInvalid(message: string, hint?: string): TetherError {
  return tetherError(ErrorCodes.CONFIG_INVALID, message, hint ? { hint } : {});
}

/** 413 for an upload over TETHER_MAX_UPLOAD_BYTES: refused from Content-Length up front, or once the streamed bytes pass it. */
export function uploadTooLarge(maxBytes: number): TetherError {
  return tetherError(ErrorCodes.FILE_TOO_LARGE, `The upload is larger than the limit of ${maxBytes} bytes.`, {
    hint: "Raise TETHER_MAX_UPLOAD_BYTES on the orchestrator.",
  });
}

/** 400 REQUEST_INVALID_TEXT for a text field a kernel cannot take (a NUL byte, a lone surrogate); undefined when it is fine. */
export function invalidTextError(field: string, text: string): TetherError | undefined {
  const invalid = findInvalidText(text);
  if (!invalid) return undefined;
  return tetherError(ErrorCodes.REQUEST_INVALID_TEXT, `\`${field}\` contains ${invalid.what} at character ${invalid.index}.`, {
    hint: "Jupyter kernels cannot take NUL bytes or unpaired UTF-16 surrogates: remove the character, or build it inside the code (e.g. chr(0)).",
  });
}
