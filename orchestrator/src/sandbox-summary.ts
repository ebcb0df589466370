import type { OrchestratorConfig } from "./config.js";

/** What the start banner and log say about how local workers are confined. */
export interface SandboxSummary {
  /** `on`, `off`, or `n/a` for launchers that run workers elsewhere (their container is the boundary). */
  mode: "on" | "off" | "n/a";
  description: string;
  /** Printed at every start, in the banner and the log. */
  warnings: string[];
}

export function sandboxSummary(config: Pick<OrchestratorConfig, "launcher" | "sandbox">): SandboxSummary {
  if (config.launcher !== "local") return { mode: "n/a", description: `workers run in ${config.launcher} containers`, warnings: [] };
  const sandbox = config.sandbox;
  if (sandbox.mode === "off") {
    return {
      mode: "off",
      description: "OFF",
      warnings: [
        "TETHER_SANDBOX=off: workers run unsandboxed, as this user. Code sent to any session can read this user's files (the API key in the data dir, other sessions' workspaces), see every process and use the network, including this orchestrator's port. Use it only for code you trust.",
      ],
    };
  }
  const cpu = sandbox.cpuSeconds > 0 ? `${sandbox.cpuSeconds} CPU-s per process` : "no CPU limit";
  const description = `bubblewrap, ${sandbox.network ? "host network" : "no network"}, ${sandbox.memoryMb} MiB, ${sandbox.maxProcesses} processes, ${cpu}`;
  const warnings = sandbox.network
    ? ["TETHER_SANDBOX_NETWORK=on: sandboxed code shares this machine's network. It can reach the internet and every local port, this orchestrator's included (its API still needs a key)."]
    : [];
  return { mode: "on", description, warnings };
}
