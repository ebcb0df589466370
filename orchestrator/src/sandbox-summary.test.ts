import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { sandboxSummary } from "./sandbox-summary.js";

describe("sandboxSummary", () => {
  it("describes the default sandbox without warnings", () => {
    expect(sandboxSummary(loadConfig({}))).toEqual({ mode: "on", description: "bubblewrap, no network, 2048 MiB, 256 processes, 3600 CPU-s per process", warnings: [] });
  });

  it("warns at every start when the sandbox is off, or shares the host network", () => {
    expect(sandboxSummary(loadConfig({ TETHER_SANDBOX: "off" }))).toMatchObject({ mode: "off", warnings: [expect.stringMatching(/^TETHER_SANDBOX=off: workers run unsandboxed/)] });
    expect(sandboxSummary(loadConfig({ TETHER_SANDBOX_NETWORK: "on" }))).toMatchObject({ mode: "on", warnings: [expect.stringContaining("this orchestrator's included")] });
  });

  it("says nothing about a sandbox for launchers whose workers run in containers", () => {
    expect(sandboxSummary(loadConfig({ TETHER_LAUNCHER: "kubernetes", TETHER_K8S_WORKER_IMAGE: "i:1", TETHER_PUBLIC_URL: "ws://t:1" }))).toMatchObject({ mode: "n/a", warnings: [] });
  });
});
