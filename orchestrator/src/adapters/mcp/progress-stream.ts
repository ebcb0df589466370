/** How long output is gathered before it goes out as one progress notification. */
export const PROGRESS_FLUSH_MS = 100;
/** Largest message one progress notification carries; more waits for the next flush. */
export const PROGRESS_MAX_CHARS = 8192;

export interface ProgressSender {
  (params: { progress: number; message: string }): Promise<void>;
}

/**
 * Streams an execution's output to the MCP client as progress notifications
 * (`notifications/progress` with the caller's progressToken): text is
 * gathered for PROGRESS_FLUSH_MS so a tight print loop makes a few
 * notifications, not thousands; `progress` counts notifications (there is no
 * total: nobody knows how long code runs).
 */
export class ProgressStream {
  private pending = "";
  private timer: NodeJS.Timeout | undefined;
  private sent = 0;
  private closed = false;

  constructor(private readonly send: ProgressSender) {}

  push(text: string): void {
    if (this.closed || text === "") return;
    this.pending += text;
    this.timer ??= setTimeout(() => this.flush(), PROGRESS_FLUSH_MS);
  }

  /** Sends what is pending now (at most PROGRESS_MAX_CHARS; the rest follows on the next tick). */
  flush(): void {
    this.timer = undefined;
    if (this.pending === "") return;
    const message = this.pending.slice(0, PROGRESS_MAX_CHARS);
    this.pending = this.pending.slice(message.length);
    this.sent += 1;
    // Notifications never throw for a gone client (the SDK skips them); a failure is not the execution's.
    this.send({ progress: this.sent, message }).catch(() => undefined);
    if (this.pending !== "") this.timer = setTimeout(() => this.flush(), 0);
  }

  /** Flushes the rest and stops: notifications after the result would arrive after the response. */
  close(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    while (this.pending !== "") this.flush();
    clearTimeout(this.timer);
    this.closed = true;
  }
}
