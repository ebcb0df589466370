import type { ExecuteResponse, ExecutionEvent, StdinMode } from "@tether/shared";
import { ExecutionResultFold } from "../../sessions/execution-result.js";
import type { ExecutionRequest, ExecutionSink, Session } from "../../sessions/session.js";

export interface RunExecutionOptions {
  requestId: string;
  code: string;
  timeoutMs: number;
  stdin: StdinMode;
  /** TETHER_MAX_OUTPUT_BYTES: stdout/stderr kept per stream. */
  maxOutputBytes: number;
  /** Every event as it arrives (progress, input requests), before it is folded. */
  onEvent?(event: ExecutionEvent): void;
}

/**
 * Runs one execution through `submit` (Session.execute, cluster-aware) and folds its events the way
 * REST does (ExecutionResultFold); resolves at its done, which always comes.
 * Rejects only when the session refuses the execution (deleted, queue full).
 */
export function runExecution(session: Session, options: RunExecutionOptions, submit: Submit): Promise<ExecuteResponse> {
  const fold = new ExecutionResultFold(options.requestId, options.maxOutputBytes);
  return new Promise<ExecuteResponse>((resolve, reject) => {
    submit(
      session,
      { requestId: options.requestId, code: options.code, timeoutMs: options.timeoutMs, stdin: options.stdin },
      {
        deliver(event) {
          fold.apply(event);
          options.onEvent?.(event);
          if (event.type === "done") resolve(fold.toResponse());
        },
        resumed() {
          fold.markResumed();
        },
      },
    ).catch(reject);
  });
}

/** Queues an execution: Session.execute, or (in a cluster) once the store has it (SlotHooks.submit). */
export type Submit = (session: Session, request: ExecutionRequest, sink: ExecutionSink) => Promise<void>;
