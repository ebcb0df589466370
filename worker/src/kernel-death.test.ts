import { describe, expect, it } from "vitest";
import { explainKernelDeath, kernelExitOf } from "./kernel-death.js";

const limits = { memoryMb: 768, maxProcesses: 64, cpuSeconds: 30, killRecord: "/run/tether/limit-kill.json" };
const NOW = 1_000_000;
const record = (pid: number, at = NOW - 500) => () => JSON.stringify({ at, limit: "memory", pid, limitMb: 768, usedMb: 800, explanation: "the session's processes used 800 MiB, over its memory limit of 768 MiB (TETHER_SANDBOX_MEMORY_MB)" });
const noRecord = () => {
  throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
};

describe("kernelExitOf", () => {
  it("reads the tether_exit the bootstrap adds to a restarting status, and nothing else", () => {
    expect(kernelExitOf({ execution_state: "restarting", tether_exit: { pid: 16, returncode: -9 } })).toEqual({ pid: 16, returncode: -9 });
    expect(kernelExitOf({ execution_state: "restarting", tether_exit: { pid: 16, returncode: null } })).toEqual({ pid: 16, returncode: null });
    expect(kernelExitOf({ execution_state: "restarting" })).toBeUndefined();
    expect(kernelExitOf(undefined)).toBeUndefined();
  });
});

describe("explainKernelDeath", () => {
  it("names the memory limit when the memory watch left a fresh record for this very process", () => {
    expect(explainKernelDeath("the kernel process died", { pid: 16, returncode: -9 }, limits, record(16), NOW)).toBe(
      "the kernel was killed: the session's processes used 800 MiB, over its memory limit of 768 MiB (TETHER_SANDBOX_MEMORY_MB)",
    );
  });

  it("does not blame the memory limit for another process's record, a stale one, or no record", () => {
    expect(explainKernelDeath("x", { pid: 16, returncode: -9 }, limits, record(17), NOW)).toBe("the kernel process was killed by SIGKILL");
    expect(explainKernelDeath("x", { pid: 16, returncode: -9 }, limits, record(16, NOW - 120_000), NOW)).toBe("the kernel process was killed by SIGKILL");
    expect(explainKernelDeath("x", { pid: 16, returncode: -9 }, limits, noRecord, NOW)).toBe("the kernel process was killed by SIGKILL");
  });

  it("names the CPU time limit for SIGXCPU", () => {
    expect(explainKernelDeath("x", { pid: 16, returncode: -24 }, limits, noRecord, NOW)).toBe(
      "the kernel was killed: it used more than its CPU time limit of 30 s (TETHER_SANDBOX_CPU_SECONDS, CPU time per process)",
    );
  });

  it("otherwise says how the process ended, or keeps the fallback when nobody told", () => {
    expect(explainKernelDeath("x", { pid: 16, returncode: -11 }, limits, noRecord, NOW)).toBe("the kernel process was killed by SIGSEGV");
    expect(explainKernelDeath("x", { pid: 16, returncode: 3 }, undefined)).toBe("the kernel process exited with code 3");
    expect(explainKernelDeath("x", { pid: 16, returncode: 0 }, undefined)).toBe("the kernel process exited");
    expect(explainKernelDeath("the kernel process died", undefined, limits)).toBe("the kernel process died");
    expect(explainKernelDeath("the kernel process died", { pid: 16, returncode: null }, limits)).toBe("the kernel process died");
    // Unsandboxed: no limits, so a SIGKILL is only a SIGKILL.
    expect(explainKernelDeath("x", { pid: 16, returncode: -9 }, undefined, record(16), NOW)).toBe("the kernel process was killed by SIGKILL");
  });
});
