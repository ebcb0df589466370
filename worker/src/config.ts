import { ErrorCodes } from "@tether/shared";
import { WorkerError } from "./errors.js";

/** Worker settings, read once from the environment (docs/internals.md). */
export interface WorkerConfig {
  /** Websocket URL of the orchestrator's worker gateway. */
  orchestratorUrl: string;
  /** Single-use join token; sent in hello, never logged, never inherited by Jupyter. */
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

/** Validates TETHER_* variables; throws a WorkerError (TETHER_ERR_CONFIG_INVALID) naming the bad one. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv, cwd: string = process.cwd()): WorkerConfig {
  const orchestratorUrl = required(env, "TETHER_ORCHESTRATOR_URL");
  if (!/^wss?:\/\//.test(orchestratorUrl)) invalid("TETHER_ORCHESTRATOR_URL", `must start with ws:// or wss://, got '${orchestratorUrl}'`);
  const joinToken = required(env, "TETHER_JOIN_TOKEN");
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
