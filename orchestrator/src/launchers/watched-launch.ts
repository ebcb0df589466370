import type { Logger } from "pino";
import type { LaunchExit, LaunchHandle } from "./launcher.js";

/** `watching` until the worker dials back, then `joined`; `stopping` once asked to stop; `exited` when known gone. */
export type WatchedLaunchState = "watching" | "joined" | "stopping" | "exited";

/** A read of the launch's status that failed, as the log should say it. */
export interface WatchFailure {
  message: string;
  code: string;
  hint?: string;
}

/** What a watched launch calls things in its log lines. */
export interface WatchedLaunchWords {
  started: string;
  ended: string;
  /** Logged (debug) when the worker dialed back and watching stops. */
  joined: string;
  /** Logged (warn, once per distinct failure) when a status read fails. */
  readFailed: string;
}

/**
 * A launch the orchestrator cannot see exit (a cloud job, a Kubernetes Job):
 * until the worker dials back it asks the platform every `pollIntervalMs`,
 * so a launch that fails first (bad image, crash at start, a quota) settles
 * `exited` with the platform's reason within one interval instead of leaving
 * the session to time out. From `joined` on, the worker's connection is the
 * only signal. Subclasses say how to look and how to stop.
 */
export abstract class WatchedLaunch implements LaunchHandle {
  readonly exited: Promise<LaunchExit>;
  protected state: WatchedLaunchState = "watching";
  protected readonly settle: (exit: LaunchExit) => void;
  private timer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  /** The last thing warned about while watching: each distinct one is logged once. */
  private lastWarning: string | undefined;
  private warnedThisLook = false;

  constructor(
    readonly launchId: string,
    protected readonly logger: Logger,
    private readonly pollIntervalMs: number,
    private readonly words: WatchedLaunchWords,
  ) {
    let resolveExit!: (exit: LaunchExit) => void;
    this.exited = new Promise<LaunchExit>((resolve) => (resolveExit = resolve));
    this.settle = (exit) => {
      if (this.state === "exited") return;
      this.state = "exited";
      this.clearTimer();
      this.logger.info({ code: exit.code, reason: exit.reason }, words.ended);
      resolveExit(exit);
    };
    this.logger.info(words.started);
  }

  /** Starts watching the launch. */
  watch(): void {
    this.schedulePoll();
  }

  joined(): void {
    if (this.state !== "watching") return;
    this.state = "joined";
    this.clearTimer();
    this.logger.debug(this.words.joined);
    this.onJoined();
  }

  stop(reason: string): Promise<void> {
    this.stopping ??= this.stopLaunch(reason);
    return this.stopping;
  }

  /** One look at the launch: its exit once it ended, undefined while it runs. A throw is a failed read: logged, watching goes on. */
  protected abstract look(): Promise<LaunchExit | undefined>;
  /** Ends the launch on the platform (settling `exited` once it is gone). */
  protected abstract stopLaunch(reason: string): Promise<void>;
  /** How a failed read reads in the log. */
  protected abstract describeFailure(error: unknown): WatchFailure;
  protected onJoined(): void {}

  /** Logs `message` once until something else is warned about (or a look finds nothing to say). */
  protected warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    this.warnedThisLook = true;
    if (key !== this.lastWarning) this.logger.warn(fields, message);
    this.lastWarning = key;
  }

  protected clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedulePoll(): void {
    if (this.state !== "watching") return;
    this.timer = setTimeout(() => void this.poll(), this.pollIntervalMs);
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    this.warnedThisLook = false;
    try {
      const exit = await this.look();
      if (this.state !== "watching") return;
      if (exit) {
        this.settle(exit);
        return;
      }
    } catch (error) {
      const failure = this.describeFailure(error);
      this.warnOnce(failure.message, { code: failure.code, err: error, hint: failure.hint }, this.words.readFailed);
    }
    if (!this.warnedThisLook) this.lastWarning = undefined;
    this.schedulePoll();
  }
}
