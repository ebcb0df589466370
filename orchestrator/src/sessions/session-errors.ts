import { ErrorCodes, tetherError, type TetherError } from "../errors.js";

/** The errors a session answers calls with, one place for their codes and hints. */
export const sessionErrors = {
  deleted: (id: string): TetherError => tetherError(ErrorCodes.SESSION_STOPPED, `Session '${id}' was deleted.`),
  failed: (id: string, reason: string | undefined): TetherError =>
    tetherError(ErrorCodes.SESSION_FAILED, `Session '${id}' failed: ${reason ?? "unknown reason"}`, { hint: "Delete it and create a new session." }),
  notReady: (id: string): TetherError => tetherError(ErrorCodes.SESSION_NOT_READY, `Session '${id}' is still starting.`),
  workerNotConnected: (): TetherError => tetherError(ErrorCodes.WORKER_LOST, "The session's worker is not connected."),
};
