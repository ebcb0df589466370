import { ErrorCodes, TetherError, type ErrorCode, type ErrorDetail } from "@tether/shared";

/** Process exit codes of the worker (docs/internals.md). */
export const ExitCodes = {
  ok: 0,
  failure: 1,
  joinRefused: 2,
  noPython: 3,
} as const;
export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];

/** An error the worker raises on purpose; its code travels to the orchestrator unchanged. */
export class WorkerError extends TetherError {
  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = "WorkerError";
  }
}

/** The `{code, message}` a call_result or worker_failed carries for any thrown value. */
export function toErrorDetail(error: unknown): ErrorDetail {
  if (error instanceof TetherError) {
    return { code: error.code, message: error.hint ? `${error.message} ${error.hint}` : error.message };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCodes.INTERNAL, message };
}
