import path from "node:path";
import { configInvalid } from "./errors.js";
import { isSecretVariableName } from "./secret-names.js";

type Env = Readonly<Record<string, string | undefined>>;

/** What the `local` launcher's bubblewrap sandbox allows one session (TETHER_SANDBOX_*). */
export interface SandboxLimits {
  /** TETHER_SANDBOX_MEMORY_MB, default 2048: resident memory of all the session's processes together; over it the largest is killed. */
  memoryMb: number;
  /** TETHER_SANDBOX_MAX_PROCESSES, default 256: processes and threads of the session (RLIMIT_NPROC in its own user namespace). */
  maxProcesses: number;
  /** TETHER_SANDBOX_CPU_SECONDS, default 3600: CPU time each process may use (RLIMIT_CPU, SIGXCPU); 0: no limit. */
  cpuSeconds: number;
}

export interface SandboxOn extends SandboxLimits {
  mode: "on";
  /** TETHER_SANDBOX_NETWORK=on: keep the host's network (egress, and the orchestrator's port too); default off: loopback only. */
  network: boolean;
  /** TETHER_SANDBOX_PASS_ENV: names of orchestrator variables copied into the sandbox (none by default). */
  passEnv: readonly string[];
  /** TETHER_SANDBOX_RO_BINDS: extra absolute host paths bound read-only at the same place (e.g. a venv for TETHER_PYTHON). */
  readOnlyBinds: readonly string[];
}

/** TETHER_SANDBOX: `on` (default) runs each local worker in bubblewrap; `off` runs it as a plain child process. */
export type SandboxSetting = SandboxOn | { mode: "off" };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads TETHER_SANDBOX*; only the local launcher uses the result. */
export function readSandboxConfig(env: Env): SandboxSetting {
  const mode = onOff(env, "TETHER_SANDBOX", "on");
  if (mode === "off") return { mode: "off" };
  return {
    mode: "on",
    network: onOff(env, "TETHER_SANDBOX_NETWORK", "off") === "on",
    memoryMb: integer(env, "TETHER_SANDBOX_MEMORY_MB", 2048, 256),
    maxProcesses: integer(env, "TETHER_SANDBOX_MAX_PROCESSES", 256, 32),
    cpuSeconds: integer(env, "TETHER_SANDBOX_CPU_SECONDS", 3600, 0),
    passEnv: readPassEnv(env.TETHER_SANDBOX_PASS_ENV),
    readOnlyBinds: readBinds(env.TETHER_SANDBOX_RO_BINDS),
  };
}

function onOff(env: Env, name: string, fallback: "on" | "off"): "on" | "off" {
  const value = env[name]?.trim().toLowerCase() || fallback;
  if (value !== "on" && value !== "off") throw configInvalid(`${name} must be 'on' or 'off', got '${value}'.`);
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw)) throw configInvalid(`${name} must be a whole number, got '${raw}'.`);
  const value = Number(raw);
  // 0 switches the CPU limit off; any other limit below the minimum would not even start a kernel.
  if (value < min && !(name === "TETHER_SANDBOX_CPU_SECONDS" && value === 0)) throw configInvalid(`${name} must be at least ${min}, got ${value}.`);
  return value;
}

function readPassEnv(raw: string | undefined): string[] {
  const names = (raw ?? "").split(",").map((name) => name.trim()).filter(Boolean);
  for (const name of names) {
    if (!NAME.test(name)) throw configInvalid(`TETHER_SANDBOX_PASS_ENV: '${name}' is not a variable name.`);
    // Same rule as the unsandboxed launcher: kernels never get what looks like a secret.
    if (isSecretVariableName(name)) {
      throw configInvalid(`TETHER_SANDBOX_PASS_ENV: '${name}' looks like a secret, which kernels never get.`, "Pass it under another name, or in a file in the session's workspace.");
    }
  }
  return names;
}

function readBinds(raw: string | undefined): string[] {
  const paths = (raw ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  for (const p of paths) {
    if (!path.isAbsolute(p)) throw configInvalid(`TETHER_SANDBOX_RO_BINDS: '${p}' is not an absolute path.`);
  }
  return paths.map((p) => path.normalize(p).replace(/(.)\/+$/, "$1"));
}
