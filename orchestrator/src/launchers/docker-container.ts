import type Docker from "dockerode";
import type { Logger } from "pino";
import type { LaunchExit, LaunchHandle } from "./launcher.js";
import type { GatewayRelay } from "./docker-relay.js";

/** Lines of worker stderr kept for failure reasons (the container's log tail). */
const STDERR_TAIL_LINES = 40;
/** `docker stop` grace: SIGTERM (the worker shuts its kernel down), then SIGKILL. */
const STOP_GRACE_S = 5;
/** When the wait call itself fails (engine restarting), how often the container is inspected instead. */
const INSPECT_POLL_MS = 1000;
/** After stop(), longest wait for the exit and the cleanup before giving up on them. */
const STOP_WAIT_MS = 30_000;

type DockerLaunchState = "running" | "stopping" | "exited";

/**
 * One worker container: watches it with the Engine API's wait call, and once
 * it ends (however: exit, `docker kill`, OOM, removal) reads the tail of its
 * stderr, removes it and its relay socket, and settles `exited`.
 */
export class DockerLaunch implements LaunchHandle {
  readonly exited: Promise<LaunchExit>;
  private state: DockerLaunchState = "running";
  private stopping: Promise<void> | undefined;

  constructor(
    readonly launchId: string,
    private readonly container: Docker.Container,
    private readonly relay: GatewayRelay | undefined,
    private readonly logger: Logger,
  ) {
    this.exited = this.watch();
  }

  stop(reason: string): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    if (this.state === "running") {
      this.state = "stopping";
      this.logger.info({ reason }, "stopping worker container");
      // 304 (not running) and 404 (gone) are fine: the wait call sees the end either way.
      await this.container.stop({ t: STOP_GRACE_S }).catch((error: unknown) => {
        if (!isStatus(error, 304) && !isStatus(error, 404)) this.logger.warn({ err: error }, "could not stop the worker container; removing it");
        return this.container.remove({ force: true, v: true }).catch(() => undefined);
      });
    }
    await Promise.race([this.exited, delay(STOP_WAIT_MS)]);
  }

  private async watch(): Promise<LaunchExit> {
    const code = await this.waitForExit();
    this.state = "exited";
    const [details, stderrTail] = await Promise.all([this.inspectEnd(), this.stderrTail()]);
    await this.container.remove({ force: true, v: true }).catch((error: unknown) => {
      if (!isStatus(error, 404) && !isStatus(error, 409)) this.logger.warn({ err: error }, "could not remove the worker container");
    });
    await this.relay?.close().catch((error: unknown) => this.logger.warn({ err: error }, "could not close the relay socket"));
    const exitCode = details.exitCode ?? code;
    const reason = describeExit(exitCode, details.oomKilled, details.gone);
    this.logger.info({ code: exitCode, oomKilled: details.oomKilled }, "worker container ended");
    return { code: exitCode, signal: exitCode !== null && exitCode > 128 ? signalName(exitCode - 128) : null, reason, stderrTail };
  }

  /** The exit code from the wait call; null when the container disappeared without one. */
  private async waitForExit(): Promise<number | null> {
    for (;;) {
      try {
        const result = (await this.container.wait()) as { StatusCode?: number };
        return typeof result.StatusCode === "number" ? result.StatusCode : null;
      } catch (error) {
        if (isStatus(error, 404)) return null;
        // The engine restarted or the socket broke: look at the container itself.
        const running = await this.container.inspect().then(
          (info) => info.State.Running,
          (inspectError: unknown) => (isStatus(inspectError, 404) ? false : true),
        );
        if (!running) return null;
        await delay(INSPECT_POLL_MS);
      }
    }
  }

  private async inspectEnd(): Promise<{ exitCode: number | null; oomKilled: boolean; gone: boolean }> {
    try {
      const info = await this.container.inspect();
      return { exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled, gone: false };
    } catch {
      return { exitCode: null, oomKilled: false, gone: true };
    }
  }

  private async stderrTail(): Promise<string[]> {
    try {
      const raw = await this.container.logs({ stdout: false, stderr: true, follow: false, tail: STDERR_TAIL_LINES });
      return demuxLogText(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)))
        .split("\n")
        .filter((line) => line.trim() !== "")
        .slice(-STDERR_TAIL_LINES);
    } catch {
      return [];
    }
  }
}

/**
 * The text of a non-TTY container's log, without the Engine API's stream
 * framing (8-byte headers: stream type, 3 zero bytes, big-endian length).
 */
export function demuxLogText(raw: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const type = raw[offset];
    if (type !== 0 && type !== 1 && type !== 2) return raw.toString("utf8"); // not framed
    const size = raw.readUInt32BE(offset + 4);
    parts.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString("utf8");
}

function describeExit(code: number | null, oomKilled: boolean, gone: boolean): string {
  if (oomKilled) return "the worker container ran out of memory (TETHER_DOCKER_MEMORY) and was killed";
  if (gone && code === null) return "the worker container disappeared (removed from outside)";
  switch (code) {
    case 0:
      return "the worker exited";
    case 2:
      return "the worker exited with code 2 (join refused)";
    case 3:
      return "the worker exited with code 3 (no usable Python runtime in the image)";
    case 137:
      return "the worker container was killed (SIGKILL, exit code 137)";
    case 143:
      return "the worker container was terminated (SIGTERM, exit code 143)";
    default:
      return `the worker container exited with code ${String(code)}`;
  }
}

function signalName(signal: number): string | null {
  return { 9: "SIGKILL", 15: "SIGTERM", 2: "SIGINT", 6: "SIGABRT", 11: "SIGSEGV" }[signal] ?? null;
}

/** docker-modem errors carry the HTTP status of the Engine API's answer. */
export function isStatus(error: unknown, status: number): boolean {
  return typeof error === "object" && error !== null && (error as { statusCode?: unknown }).statusCode === status;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
