import type { ExecuteResponse } from "@tether/shared";
import { ErrorCodes } from "../errors.js";

/** What an execution ran under, to say which limit ended it. */
export interface ExecutionLimits {
  /** The caller's timeoutMs, if it gave one. */
  requestedTimeoutMs: number | undefined;
  /** TETHER_DEFAULT_EXEC_TIMEOUT_MS. */
  defaultTimeoutMs: number;
  /** TETHER_MAX_EXEC_TIMEOUT_MS. */
  maxTimeoutMs: number;
  /** How this surface names its stdin input, e.g. "the `stdin` field (a list of lines, one per input() call)". */
  stdinName: string;
}

/** The name IPython gives input() when the frontend allows no stdin. */
const NO_STDIN_ERROR = "StdinNotImplementedError";

/**
 * Makes an execution's failure say what to change: input() without stdin
 * names the stdin input (the kernel only says "this frontend does not support
 * input requests"), and a timeout names the limit that applied and where it
 * came from (the caller's timeoutMs, the default, or the cap).
 */
export function explainExecution<T extends ExecuteResponse>(response: T, limits: ExecutionLimits): T {
  if (response.error?.name === NO_STDIN_ERROR && !response.failure) {
    return { ...response, failure: { code: ErrorCodes.EXEC_STDIN_EXHAUSTED, message: noStdinMessage(limits.stdinName) } };
  }
  if (response.failure?.code === ErrorCodes.EXEC_TIMEOUT) {
    return { ...response, failure: { ...response.failure, message: `${response.failure.message} ${timeoutNote(limits)}` } };
  }
  return response;
}

export function noStdinMessage(stdinName: string): string {
  return `input() was called but this execution had no stdin: pass ${stdinName}.`;
}

/** Which timeout applied and why: the caller's, the default, or the cap. */
export function timeoutNote(limits: Omit<ExecutionLimits, "stdinName">): string {
  const { requestedTimeoutMs, defaultTimeoutMs, maxTimeoutMs } = limits;
  if (requestedTimeoutMs === undefined) {
    const applied = Math.min(defaultTimeoutMs, maxTimeoutMs);
    return `No timeoutMs was given, so the default applied: TETHER_DEFAULT_EXEC_TIMEOUT_MS = ${applied} ms; pass timeoutMs (up to TETHER_MAX_EXEC_TIMEOUT_MS = ${maxTimeoutMs} ms) for longer.`;
  }
  if (requestedTimeoutMs > maxTimeoutMs) {
    return `The requested timeoutMs = ${requestedTimeoutMs} ms was capped at TETHER_MAX_EXEC_TIMEOUT_MS = ${maxTimeoutMs} ms (the orchestrator's limit).`;
  }
  return `The limit was the requested timeoutMs = ${requestedTimeoutMs} ms (at most TETHER_MAX_EXEC_TIMEOUT_MS = ${maxTimeoutMs} ms).`;
}
