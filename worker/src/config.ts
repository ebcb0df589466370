import { readFileSync, unlinkSync } from "node:fs";
import { ErrorCodes, errnoCode, errorMessage } from "@tether/shared";
import { WorkerError } from "./errors.js";

/** Worker settings, read once from the environment (docs/internals.md). */
export interface WorkerConfig {
  /** Websocket URL of the orchestrator's worker gateway. */
  orchestratorUrl: string;
  /**
   * Single-use join token: TETHER_JOIN_TOKEN, the first stdin line with TETHER_JOIN_TOKEN_STDIN=1,
   * or the file TETHER_JOIN_TOKEN_FILE. Sent in hello, never logged, never inherited by Jupyter.
   */
  joinToken: string;
  /** TETHER_JOIN_TOKEN_FILE, when the token came from a file (removed after reading, where the mount allows). */
  joinTokenFile: string | undefined;
  /** Id of this launch, inherited by every child process so a launcher can sweep stragglers. */
  launchId: string | undefined;
  /** Jupyter's root dir and the kernel's cwd (default: cwd). Not yet realpath'd. */
  workspace: string;
  /** Interpreter with jupyter_server + ipykernel; undefined means probe. */
  python: string | undefined;
  /** After a timeout interrupt, how long before the kernel is restarted (default 2000). */
  interruptGraceMs: number;
  /** pino level (default info). */
  logLevel: string;
  /** TETHER_SANDBOX_LIMITS, set by the local launcher's sandbox: to say which limit killed a kernel. */
  sandboxLimits: SandboxLimits | undefined;
}

/** The sandbox's limits as the launcher set them (docs/internals.md, "Sandbox layout"). */
export interface SandboxLimits {
  memoryMb: number;
  maxProcesses: number;
  /** 0: none. */
  cpuSeconds: number;
  /** Where the orchestrator's memory watch leaves a record before it kills a process. */
  killRecord: string;
}

const LOG_LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

/** Where the join token may come from besides the environment. */
export interface JoinTokenSources {
  /** The first stdin line, read by main.ts when joinTokenOnStdin(env). */
  stdinToken?: string;
  /** Reads TETHER_JOIN_TOKEN_FILE (tests inject one). */
  readFile?: (path: string) => string;
}

/**
 * TETHER_JOIN_TOKEN_STDIN=1: the launcher writes the join token as the first line
 * of stdin instead of putting it in the environment (the docker launcher: a
 * container's env is readable by user code in /proc and by `docker inspect`).
 */
export function joinTokenOnStdin(env: NodeJS.ProcessEnv): boolean {
  const raw = env.TETHER_JOIN_TOKEN_STDIN?.trim() ?? "";
  if (raw !== "" && raw !== "0" && raw !== "1") invalid("TETHER_JOIN_TOKEN_STDIN", `must be 1 or 0, got '${raw}'`);
  return raw === "1";
}

/** Validates TETHER_* variables; throws a WorkerError (TETHER_ERR_CONFIG_INVALID) naming the bad one. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv, cwd: string = process.cwd(), sources: JoinTokenSources = {}): WorkerConfig {
  const orchestratorUrl = required(env, "TETHER_ORCHESTRATOR_URL");
  // ws+unix:/path/to.sock:/v1/workers/connect dials over a unix socket (a launcher's relay: no network for user code).
  if (!/^(wss?:\/\/|ws\+unix:\/[^:]+:\/)/.test(orchestratorUrl)) {
    invalid("TETHER_ORCHESTRATOR_URL", `must start with ws://, wss:// or ws+unix:<absolute socket path>:/, got '${orchestratorUrl}'`);
  }
  const { joinToken, joinTokenFile } = readJoinToken(env, sources);
  const logLevel = env.TETHER_LOG_LEVEL?.trim() || "info";
  if (!LOG_LEVELS.has(logLevel)) invalid("TETHER_LOG_LEVEL", `must be one of ${[...LOG_LEVELS].join(", ")}`);
  return {
    orchestratorUrl,
    joinToken,
    joinTokenFile,
    launchId: env.TETHER_LAUNCH_ID?.trim() || undefined,
    workspace: env.TETHER_WORKSPACE?.trim() || cwd,
    python: env.TETHER_PYTHON?.trim() || undefined,
    interruptGraceMs: integer(env, "TETHER_INTERRUPT_GRACE_MS", 2000),
    logLevel,
    sandboxLimits: readSandboxLimits(env.TETHER_SANDBOX_LIMITS),
  };
}

function readSandboxLimits(raw: string | undefined): SandboxLimits | undefined {
  if (!raw?.trim()) return undefined;
  let value: Partial<Record<keyof SandboxLimits, unknown>>;
  try {
    value = JSON.parse(raw) as typeof value;
  } catch {
    invalid("TETHER_SANDBOX_LIMITS", "is not JSON");
  }
  const { memoryMb, maxProcesses, cpuSeconds, killRecord } = value;
  if (typeof memoryMb !== "number" || typeof maxProcesses !== "number" || typeof cpuSeconds !== "number" || typeof killRecord !== "string") {
    invalid("TETHER_SANDBOX_LIMITS", "needs memoryMb, maxProcesses, cpuSeconds (numbers) and killRecord (a path)");
  }
  return { memoryMb, maxProcesses, cpuSeconds, killRecord };
}

/**
 * The join token from stdin (TETHER_JOIN_TOKEN_STDIN=1, which wins), the
 * file TETHER_JOIN_TOKEN_FILE names (a Kubernetes Secret mount, a local
 * launcher's 0600 file), or TETHER_JOIN_TOKEN. A token in the environment is
 * readable by user code through /proc: launchers use the other two.
 */
function readJoinToken(env: NodeJS.ProcessEnv, sources: JoinTokenSources): { joinToken: string; joinTokenFile: string | undefined } {
  if (joinTokenOnStdin(env)) {
    const joinToken = sources.stdinToken?.trim() ?? "";
    if (!joinToken) invalid("TETHER_JOIN_TOKEN_STDIN", "is 1 but stdin's first line is empty");
    return { joinToken, joinTokenFile: undefined };
  }
  const readFile = sources.readFile ?? readTokenFile;
  const file = env.TETHER_JOIN_TOKEN_FILE?.trim() || undefined;
  if (file === undefined) return { joinToken: required(env, "TETHER_JOIN_TOKEN"), joinTokenFile: undefined };
  if (env.TETHER_JOIN_TOKEN?.trim()) invalid("TETHER_JOIN_TOKEN_FILE", "cannot be set together with TETHER_JOIN_TOKEN");
  let token: string;
  try {
    token = readFile(file).trim();
  } catch (error) {
    invalid("TETHER_JOIN_TOKEN_FILE", `names a file that cannot be read (${errnoCode(error) ?? errorMessage(error)}): '${file}'`);
  }
  if (!token) invalid("TETHER_JOIN_TOKEN_FILE", `names an empty file: '${file}'`);
  return { joinToken: token, joinTokenFile: file };
}

function readTokenFile(path: string): string {
  return readFileSync(path, "utf8");
}

/**
 * Removes the join token file after it was read, so user code cannot find
 * it. A Kubernetes Secret volume is read-only (EROFS) and an unwritable
 * directory refuses (EACCES, EPERM): then the file stays, holding a token
 * that is spent before any user code runs. Returns what happened, for the log.
 */
export function removeJoinTokenFile(path: string, unlink: (path: string) => void = unlinkSync): "removed" | "gone" | "kept-read-only" {
  try {
    unlink(path);
    return "removed";
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") return "gone";
    if (code === "EROFS" || code === "EACCES" || code === "EPERM" || code === "EBUSY") return "kept-read-only";
    throw error;
  }
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) invalid(name, "is required");
  return value;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) invalid(name, `must be a non-negative integer, got '${raw}'`);
  return value;
}

function invalid(name: string, why: string): never {
  throw new WorkerError(ErrorCodes.CONFIG_INVALID, `${name} ${why}.`);
}
