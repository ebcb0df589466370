import { ErrorCodes, type ErrorCode, type TetherError } from "./errors.js";

/**
 * The hint every error body carries when the code that raised it gave none:
 * one sentence an agent (or a person) can act on. Exhaustive, like the status
 * table: a new code without a hint does not compile.
 */
const defaultHintByCode: Record<ErrorCode, string> = {
  [ErrorCodes.AUTH_MISSING]: "Send 'Authorization: Bearer <key>'.",
  [ErrorCodes.AUTH_INVALID]: "Check TETHER_API_KEYS or <dataDir>/api-key on the orchestrator.",
  [ErrorCodes.AUTH_EXPIRED]: "Get a new token (session tokens: ask the backend holding the API key to mint one).",
  [ErrorCodes.AUTH_REVOKED]: "The token was revoked (or its session deleted): get a new one.",
  [ErrorCodes.AUTH_SCOPE]: "A session token reaches only its own session's execute, stream and files: use the API key for anything else.",
  [ErrorCodes.AUTH_FORBIDDEN]: "The identity lacks the role, scope or tenant claim the orchestrator requires (TETHER_OIDC_*).",
  [ErrorCodes.AUTH_UNAVAILABLE]: "Retry later: the identity provider's signing keys could not be fetched.",
  [ErrorCodes.AUTH_TOKEN_NOT_FOUND]: "Revoke by the tokenId a mint returned, or all of a session's tokens with DELETE /v1/sessions/:id/tokens.",
  [ErrorCodes.REQUEST_INVALID]: "Compare the request with its schema in GET /openapi.json (or docs/api.md).",
  [ErrorCodes.REQUEST_MALFORMED_JSON]: "Send a valid JSON document as the body.",
  [ErrorCodes.REQUEST_TOO_LARGE]: "The limit is TETHER_MAX_REQUEST_BYTES; upload large data as a file (PUT /v1/sessions/:id/files/<path>).",
  [ErrorCodes.REQUEST_UNSUPPORTED_MEDIA_TYPE]: "Send JSON bodies with 'Content-Type: application/json'.",
  [ErrorCodes.REQUEST_INVALID_TEXT]: "Remove NUL bytes and lone surrogates from the text (a kernel cannot take them); send binary data as a file.",
  [ErrorCodes.ROUTE_NOT_FOUND]: "Every route is listed in GET /openapi.json and on the /docs page.",
  [ErrorCodes.REQUEST_ORIGIN_NOT_ALLOWED]: "Add the page's origin (scheme://host[:port]) to the orchestrator's allow-list: TETHER_CORS_ORIGINS for the stream, TETHER_MCP_ALLOWED_ORIGINS for /mcp.",
  [ErrorCodes.SESSION_NOT_FOUND]: "Create a session with POST /v1/sessions; sessions belong to the tenant whose key created them.",
  [ErrorCodes.SESSION_NOT_READY]: "Wait until the session's status is 'ready' (GET /v1/sessions/:id) and retry.",
  [ErrorCodes.SESSION_FAILED]: "Delete the session and create a new one; its 'failure' says why the start failed.",
  [ErrorCodes.SESSION_STOPPED]: "The session was deleted: create a new one with POST /v1/sessions.",
  [ErrorCodes.SESSION_START_TIMEOUT]: "Retry; if it keeps happening raise TETHER_START_TIMEOUT_MS or check the orchestrator's log for the worker's output.",
  [ErrorCodes.SESSION_START_FAILED]: "Retry; if it keeps happening the message has the worker's last log lines.",
  [ErrorCodes.SESSION_QUEUE_FULL]: "Wait for queued executions to finish, or interrupt them.",
  [ErrorCodes.SESSION_START_LIMIT]: "Retry after the Retry-After header's seconds.",
  [ErrorCodes.SESSION_QUOTA_EXCEEDED]: "Delete sessions you no longer need (DELETE /v1/sessions/:id).",
  [ErrorCodes.SESSION_MOVED]: "Retry: the request reaches the session's new owner (read a running execution's result with GET /v1/sessions/:id/executions/:requestId).",
  [ErrorCodes.SESSION_OWNER_UNAVAILABLE]: "Retry after the Retry-After header's seconds: the replica owning the session may be failing over.",
  [ErrorCodes.PATH_INVALID]: "Use a relative path of at most 1024 characters without empty segments or NUL.",
  [ErrorCodes.PATH_ESCAPES_WORKSPACE]: "Use a path relative to the workspace, without '..' (a leading /mnt/data/ is accepted by the dynamic-sessions and MCP file APIs).",
  [ErrorCodes.FILE_NOT_FOUND]: "List the workspace files (GET /v1/sessions/:id/files) to see what exists.",
  [ErrorCodes.FILE_IS_DIRECTORY]: "Name a file, not a directory; list the files to see the paths inside it.",
  [ErrorCodes.FILE_TOO_LARGE]: "Raise TETHER_MAX_UPLOAD_BYTES on the orchestrator, or split the file.",
  [ErrorCodes.FILE_IO]: "Retry; if it keeps happening the worker's disk may be full.",
  [ErrorCodes.PROTOCOL_MALFORMED_JSON]: "Send each websocket message as one JSON text frame.",
  [ErrorCodes.PROTOCOL_UNKNOWN_TYPE]: "Use a message type listed in docs/api.md (The websocket stream).",
  [ErrorCodes.PROTOCOL_INVALID_MESSAGE]: "Compare the message with its schema in docs/api.md (The websocket stream).",
  [ErrorCodes.PROTOCOL_FRAME_TOO_LARGE]: "Keep frames under TETHER_MAX_CLIENT_FRAME_BYTES; upload large data as a file.",
  [ErrorCodes.PROTOCOL_BINARY_UNSUPPORTED]: "Send JSON text frames; upload bytes through the file routes.",
  [ErrorCodes.PROTOCOL_VERSION_UNSUPPORTED]: "Run a worker and orchestrator of compatible versions.",
  [ErrorCodes.PROTOCOL_HELLO_EXPECTED]: "A worker's first frame must be hello (or resume).",
  [ErrorCodes.WORKER_TOKEN_INVALID]: "Join tokens are single-use and bound to one launch; the launcher mints them.",
  [ErrorCodes.WORKER_TOKEN_EXPIRED]: "Raise TETHER_JOIN_TOKEN_TTL_MS if workers take longer to dial back.",
  [ErrorCodes.WORKER_TOKEN_REUSED]: "Join tokens are single-use; the launcher mints a new one per launch.",
  [ErrorCodes.WORKER_LOST]: "Retry: the next call resumes the session on a new worker (files come back, variables do not).",
  [ErrorCodes.WORKER_CALL_TIMEOUT]: "Retry; the worker may be overloaded.",
  [ErrorCodes.WORKER_RESUME_REFUSED]: "The worker exits; the session resumes on a new worker at the next call.",
  [ErrorCodes.WORKER_TRANSFER_INTERRUPTED]: "Retry the file transfer.",
  [ErrorCodes.EXEC_DUPLICATE_REQUEST_ID]: "Use a new requestId for each execution.",
  [ErrorCodes.EXEC_UNKNOWN_REQUEST]: "The execution is not in flight (it finished, or never existed); check the requestId.",
  [ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT]: "Send input_reply only after an input_request for that requestId.",
  [ErrorCodes.EXEC_STDIN_EXHAUSTED]: "Pass one `stdin` line per input() call.",
  [ErrorCodes.EXEC_ABORTED]: "Run the code again.",
  [ErrorCodes.EXEC_TIMEOUT]: "Pass a larger `timeoutMs` (up to TETHER_MAX_EXEC_TIMEOUT_MS), or make the code faster.",
  [ErrorCodes.EXEC_CANCELLED]: "Run the code again if you still need its result.",
  [ErrorCodes.EXEC_NO_REPLY]: "Run the code again; if it keeps happening, restart the kernel.",
  [ErrorCodes.OUTPUT_TOO_LARGE]: "Save large outputs (images, tables) to a file and download it instead of displaying them.",
  [ErrorCodes.EVENTS_EXPIRED]: "Reconnect without ?after= (or with a newer seq) and read finished results with GET /v1/sessions/:id/executions/:requestId.",
  [ErrorCodes.EXECUTION_EXPIRED]: "Results are kept TETHER_EXECUTION_RETENTION_S after they end: read them sooner, or run the code again.",
  [ErrorCodes.CLIENT_TOO_SLOW]: "Read the stream faster, or reconnect with ?after=<last seq> to continue where it stopped.",
  [ErrorCodes.KERNEL_DIED]: "The kernel was replaced: re-run the code that set up variables and imports (files stay).",
  [ErrorCodes.KERNEL_UNAVAILABLE]: "Retry in a few seconds.",
  [ErrorCodes.KERNEL_RESTART_FAILED]: "Delete the session and create a new one.",
  [ErrorCodes.LAUNCH_FORBIDDEN]: "Grant the orchestrator's identity 'Container Apps Jobs Operator' on the job.",
  [ErrorCodes.LAUNCH_UNAUTHENTICATED]: "Give the orchestrator an Azure identity (managed identity, or az login for development).",
  [ErrorCodes.LAUNCH_NOT_FOUND]: "Check TETHER_AZURE_SUBSCRIPTION_ID, TETHER_AZURE_RESOURCE_GROUP and TETHER_AZURE_JOB_NAME.",
  [ErrorCodes.LAUNCH_THROTTLED]: "Retry after the Retry-After header's seconds.",
  [ErrorCodes.LAUNCH_QUOTA]: "Free or raise the cloud quota, then retry.",
  [ErrorCodes.LAUNCH_FAILED]: "Retry; the message carries the cloud's reason.",
  [ErrorCodes.RUNTIME_SANDBOX_UNAVAILABLE]: "Install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces, or set TETHER_SANDBOX=off (no isolation).",
  [ErrorCodes.RUNTIME_PYTHON_NOT_FOUND]: "Install python3-jupyter-server and python3-ipykernel, or set TETHER_PYTHON.",
  [ErrorCodes.CONFIG_INVALID]: "Fix the TETHER_* variable the message names.",
  [ErrorCodes.PROFILE_UNKNOWN]: "Use one of the profile names in TETHER_PROFILES (or omit `profile` for the default).",
  [ErrorCodes.METRICS_FORBIDDEN]: "Send 'Authorization: Bearer <TETHER_METRICS_TOKEN>', or scrape from loopback without a proxy.",
  [ErrorCodes.STORE_UNAVAILABLE]: "Retry after the Retry-After header's seconds; check TETHER_REDIS_URL and that Redis is up.",
  [ErrorCodes.SNAPSHOT_EXPIRED]: "The files are gone; the next call resumes the session with an empty workspace. Raise TETHER_SNAPSHOT_TTL_S to keep snapshots longer.",
  [ErrorCodes.SNAPSHOT_MISSING]: "The snapshot was removed outside Tether (check storage lifecycle rules); the next call resumes with an empty workspace.",
  [ErrorCodes.SNAPSHOT_UNAVAILABLE]: "Retry later; check TETHER_SNAPSHOT_DIR or the Azure Blob container (TETHER_SNAPSHOT_STORE) is reachable. The snapshot is kept.",
  [ErrorCodes.INTERNAL]: "This is a bug: report it with the orchestrator's log line of the same request.",
};

/** The hint for an error body: the error's own, else the code's default. */
export function hintFor(code: ErrorCode, own: string | undefined): string {
  return own ?? defaultHintByCode[code];
}

/** The JSON body of an error response: code, message, and always a hint. */
export function errorBody(error: TetherError): { error: { code: ErrorCode; message: string; hint: string } } {
  return { error: { code: error.code, message: error.message, hint: hintFor(error.code, error.hint) } };
}
