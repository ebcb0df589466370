import type { WorkerHandle } from "../workers/worker-handle.js";

/**
 * Client backpressure on a session's worker: while any client (a websocket
 * stream that is backed up) holds it, the worker is not read. The pausers
 * are remembered, so a worker that replaces a lost one (or resumes a stopped
 * session) is held back too.
 */
export class WorkerBackpressure {
  private readonly pausers = new Set<object>();

  constructor(
    /** The worker serving the session now, if any. */
    private readonly serving: () => WorkerHandle | undefined,
    /** Called when the worker stops (true) or starts again (false) being held back. */
    private readonly onChange: (held: boolean) => void,
  ) {}

  get held(): boolean {
    return this.pausers.size > 0;
  }

  pause(pauser: object): void {
    this.pausers.add(pauser);
    this.serving()?.pause(pauser);
    this.onChange(true);
  }

  resume(pauser: object): void {
    this.pausers.delete(pauser);
    this.serving()?.resume(pauser);
    if (this.pausers.size === 0) this.onChange(false);
  }

  /** Holds a new worker back as the current one is. */
  applyTo(worker: WorkerHandle): void {
    for (const pauser of this.pausers) worker.pause(pauser);
  }
}
