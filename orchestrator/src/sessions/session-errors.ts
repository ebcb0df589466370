import { ErrorCodes, invalidTextError, tetherError, type TetherError } from "../errors.js";
import type { ExecutionRequest } from "./execution-queue.js";

/** The errors a session answers calls with, one place for their codes and hints. */
export const sessionErrors = {
  deleted: (id: string): TetherError => tetherError(ErrorCodes.SESSION_STOPPED, `Session '${id}' was deleted.`),
  failed: (id: string, reason: string | undefined): TetherError =>
    tetherError(ErrorCodes.SESSION_FAILED, `Session '${id}' failed: ${reason ?? "unknown reason"}`, { hint: "Delete it and create a new session." }),
  notReady: (id: string): TetherError => tetherError(ErrorCodes.SESSION_NOT_READY, `Session '${id}' is still starting.`),
  workerNotConnected: (): TetherError => tetherError(ErrorCodes.WORKER_LOST, "The session's worker is not connected."),
  requestIdTaken: (id: string, requestId: string, status: string): TetherError =>
    tetherError(ErrorCodes.EXEC_DUPLICATE_REQUEST_ID, `The session already has an execution with requestId '${requestId}' (status ${status}).`, {
      hint: `Read its result with GET /v1/sessions/${id}/executions/${encodeURIComponent(requestId)}; send a new requestId to run code again.`,
    }),
};

/** The text fields of an execution a kernel will read: its code and any stdin lines. */
export function textFieldsOf(request: ExecutionRequest): [string, string][] {
  const fields: [string, string][] = [["code", request.code]];
  if (request.stdin.mode === "lines") request.stdin.lines.forEach((line, index) => fields.push([`stdin[${index}]`, line]));
  return fields;
}

/** Refuses text a kernel cannot take (400 REQUEST_INVALID_TEXT), naming the field and the position. */
export function assertKernelText(fields: [string, string][]): void {
  for (const [field, text] of fields) {
    const invalid = invalidTextError(field, text);
    if (invalid) throw invalid;
  }
}
