import { ErrorCodes, tetherError, type TetherError } from "../errors.js";

/** 503 TETHER_ERR_SNAPSHOT_UNAVAILABLE: the store cannot be read or written now; what it holds is not known to be lost. */
export function unavailable(message: string, cause?: unknown, hint?: string): TetherError {
  return tetherError(ErrorCodes.SNAPSHOT_UNAVAILABLE, message, {
    ...(cause === undefined ? {} : { cause }),
    hint: hint ?? "The snapshot store (TETHER_SNAPSHOT_STORE) could not be reached; the session stays stopped with its snapshot, retry later.",
  });
}

/** Session ids are minted by the registry (`ses_<hex>`); anything else must never become a path or a blob prefix. */
export function checkSessionId(sessionId: string): boolean {
  return /^[A-Za-z0-9_-]{1,128}$/.test(sessionId);
}
