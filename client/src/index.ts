export { Tether } from "./tether.js";
export type { CreateSessionOptions } from "./tether.js";
export { Session } from "./session.js";
export type { SessionEvents, SessionStatusUpdate, WaitUntilReadyOptions, SessionHandleOptions } from "./session.js";
export { SessionFiles } from "./files.js";
export type { StreamState } from "./session-stream.js";
export type { ExecuteOptions, ExecutionCallbacks, DisplayOutput, ResultOutput, ExecutionError, InputPrompt } from "./pending-execution.js";
export type { TetherOptions, ReconnectOptions } from "./config.js";
export { DEFAULT_BASE_URL, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_RECONNECT } from "./config.js";
export type { CallOptions } from "./http.js";
export {
  TetherError,
  ClientErrorCodes,
  ConnectionError,
  AuthenticationError,
  PermissionError,
  NotFoundError,
  ConflictError,
  InvalidRequestError,
  RateLimitError,
  ServerError,
  EventsExpiredError,
  ProtocolError,
  SessionStartError,
  AbortError,
} from "./errors.js";
export type { ClientErrorCode, TetherErrorInit } from "./errors.js";
export { TRANSPORT_ERRORS, classifyStatus } from "./transport-errors.js";
export type { TransportFailure } from "./transport-errors.js";
export type { ExecuteResponse, OutputItem, SessionInfo, FileEntry, FileListResponse, SessionTokenInfo, SessionStatus, SessionPhase, SessionStopReason } from "@tether/shared";
