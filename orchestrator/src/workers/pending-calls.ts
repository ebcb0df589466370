import { checkWorkerCallResult, type WorkerCallParams, type WorkerCallResult, type WorkerCallType } from "@tether/shared";
import { ErrorCodes, TetherError, errorFromDetail, tetherError } from "../errors.js";

interface PendingCall {
  type: WorkerCallType;
  settle(outcome: { ok: true; value: unknown } | { ok: false; error: TetherError }): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Calls to one worker, correlated by callId. Each result is checked against
 * its call's schema where it arrives (shared/worker-calls.ts), so callers get
 * typed values; every pending call is settled with a specific code when the
 * worker is gone.
 */
export class PendingCalls {
  private nextCallId = 1;
  private readonly pending = new Map<string, PendingCall>();

  /**
   * Registers a call and hands its JSON (the caller's fields, its type and
   * callId) to `send`; resolves with the worker's validated value.
   * `timeoutMs` 0 = no timeout. `failure` is the error to reject with at once
   * when `send` reports the worker is gone.
   */
  start<T extends WorkerCallType>(
    type: T,
    params: WorkerCallParams<T>,
    timeoutMs: number,
    send: (json: string) => boolean,
    failure: () => TetherError,
  ): { callId: string; result: Promise<WorkerCallResult<T>> } {
    const callId = String(this.nextCallId++);
    const result = new Promise<WorkerCallResult<T>>((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(callId);
              reject(tetherError(ErrorCodes.WORKER_CALL_TIMEOUT, `The worker did not answer '${type}' within ${timeoutMs} ms.`));
            }, timeoutMs)
          : undefined;
      this.pending.set(callId, {
        type,
        timer,
        settle: (outcome) => {
          if (!outcome.ok) return reject(outcome.error);
          const checked = checkWorkerCallResult(type, outcome.value);
          if (checked.ok) resolve(checked.value);
          else reject(tetherError(ErrorCodes.INTERNAL, checked.message));
        },
      });
      if (!send(JSON.stringify({ ...params, type, callId }))) this.fail(callId, failure());
    });
    return { callId, result };
  }

  /** A call_result arrived; one for no pending call (timed out, forgotten) is ignored. */
  answer(callId: string, outcome: { ok: true; value: unknown } | { ok: false; error: { code: string; message: string } }): void {
    const call = this.take(callId);
    call?.settle(outcome.ok ? outcome : { ok: false, error: errorFromDetail(outcome.error) });
  }

  /** Settles one call ourselves (its answer, should it still come, is ignored). */
  fail(callId: string, error: TetherError): void {
    this.take(callId)?.settle({ ok: false, error });
  }

  /** The worker is gone: every pending call fails with `error`. */
  failAll(error: TetherError): void {
    for (const callId of [...this.pending.keys()]) this.fail(callId, error);
  }

  private take(callId: string): PendingCall | undefined {
    const call = this.pending.get(callId);
    if (!call) return undefined;
    this.pending.delete(callId);
    if (call.timer) clearTimeout(call.timer);
    return call;
  }
}
