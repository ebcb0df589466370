import { ErrorCodes } from "@tether/shared";
import { WorkerError } from "./errors.js";

/** Worker settings, read once from the environment (docs/internals.md). */
export interface WorkerConfig {
  /** Websocket URL of the orchestrator's worker gateway. */
  orchestratorUrl: string;
  /** Single-use join token (TETHER_JOIN_TOKEN, or the first stdin line with TETHER_JOIN_TOKEN_STDIN=1); sent in hello, never logged, never inherited by Jupyter. */
  joinToken: string;
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
}

const LOG_LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

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

/**
 * Validates TETHER_* variables; throws a WorkerError (TETHER_ERR_CONFIG_INVALID) naming the bad one.
 * `stdinToken`: the first stdin line, read by main.ts when joinTokenOnStdin(env); it wins over TETHER_JOIN_TOKEN.
 */
export function loadWorkerConfig(env: NodeJS.ProcessEnv, cwd: string = process.cwd(), stdinToken?: string): WorkerConfig {
  const orchestratorUrl = required(env, "TETHER_ORCHESTRATOR_URL");
  // ws+unix:/path/to.sock:/v1/workers/connect dials over a unix socket (the docker launcher's relay, no network).
  if (!/^(wss?:\/\/|ws\+unix:)/.test(orchestratorUrl)) invalid("TETHER_ORCHESTRATOR_URL", `must start with ws://, wss:// or ws+unix:, got '${orchestratorUrl}'`);
  let joinToken: string;
  if (joinTokenOnStdin(env)) {
    joinToken = stdinToken?.trim() ?? "";
    if (!joinToken) invalid("TETHER_JOIN_TOKEN_STDIN", "is 1 but stdin's first line is empty");
  } else {
    joinToken = required(env, "TETHER_JOIN_TOKEN");
  }
  const logLevel = env.TETHER_LOG_LEVEL?.trim() || "info";
  if (!LOG_LEVELS.has(logLevel)) invalid("TETHER_LOG_LEVEL", `must be one of ${[...LOG_LEVELS].join(", ")}`);
  return {
    orchestratorUrl,
    joinToken,
    launchId: env.TETHER_LAUNCH_ID?.trim() || undefined,
    workspace: env.TETHER_WORKSPACE?.trim() || cwd,
    python: env.TETHER_PYTHON?.trim() || undefined,
    interruptGraceMs: integer(env, "TETHER_INTERRUPT_GRACE_MS", 2000),
    logLevel,
  };
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
