import { readFileSync } from "node:fs";
import { constants } from "node:os";
import type { SandboxLimits } from "./config.js";

/** How the kernel process ended, as Jupyter Server (its parent) saw it; `returncode` < 0 is a signal. */
export interface KernelExit {
  pid: number;
  returncode: number | null;
}

/** What the orchestrator's memory watch leaves in the run dir before it kills a process (orchestrator's memory-watch.ts). */
interface LimitKillRecord {
  at: number;
  pid: number;
  explanation: string;
}

/** A record older than this is about an earlier death. */
const RECORD_FRESH_MS = 60_000;

/** The `tether_exit` the worker's Jupyter bootstrap adds to a `restarting`/`dead` status (jupyter-server.ts). */
export function kernelExitOf(content: unknown): KernelExit | undefined {
  const ended = (content as { tether_exit?: { pid?: unknown; returncode?: unknown } } | undefined)?.tether_exit;
  if (!ended || typeof ended.pid !== "number") return undefined;
  return { pid: ended.pid, returncode: typeof ended.returncode === "number" ? ended.returncode : null };
}

/**
 * The kernel_died reason: which sandbox limit killed the kernel when that can
 * be known (the memory watch's record names the process it killed; SIGXCPU
 * is RLIMIT_CPU's), else how the process ended, else `fallback`.
 */
export function explainKernelDeath(
  fallback: string,
  ended: KernelExit | undefined,
  limits: SandboxLimits | undefined,
  readRecord: (file: string) => string = (file) => readFileSync(file, "utf8"),
  now = Date.now(),
): string {
  if (!ended || ended.returncode === null) return fallback;
  const code = ended.returncode;
  if (code === 0) return "the kernel process exited";
  if (code > 0) return `the kernel process exited with code ${code}`;
  const signal = signalName(-code);
  if (limits && signal === "SIGKILL") {
    const record = killRecord(limits.killRecord, readRecord);
    if (record && record.pid === ended.pid && now - record.at < RECORD_FRESH_MS) return `the kernel was killed: ${record.explanation}`;
  }
  if (limits && limits.cpuSeconds > 0 && signal === "SIGXCPU") {
    return `the kernel was killed: it used more than its CPU time limit of ${limits.cpuSeconds} s (TETHER_SANDBOX_CPU_SECONDS, CPU time per process)`;
  }
  return `the kernel process was killed by ${signal}`;
}

function killRecord(file: string, readRecord: (file: string) => string): LimitKillRecord | undefined {
  try {
    const record = JSON.parse(readRecord(file)) as Partial<LimitKillRecord>;
    if (typeof record.at === "number" && typeof record.pid === "number" && typeof record.explanation === "string") {
      return { at: record.at, pid: record.pid, explanation: record.explanation };
    }
  } catch {
    // No kill yet (no file), or a partial one: no record.
  }
  return undefined;
}

function signalName(number: number): string {
  return Object.entries(constants.signals).find(([, value]) => value === number)?.[0] ?? `signal ${number}`;
}
