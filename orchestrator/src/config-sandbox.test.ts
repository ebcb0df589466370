import { describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { loadConfig } from "./config.js";
import { readSandboxConfig } from "./config-sandbox.js";

describe("TETHER_SANDBOX*", () => {
  it("is on by default for the local launcher, with no network and the documented limits", () => {
    expect(loadConfig({}).sandbox).toEqual({ mode: "on", network: false, memoryMb: 2048, maxProcesses: 256, cpuSeconds: 3600, passEnv: [], readOnlyBinds: [] });
  });

  it("is off with TETHER_SANDBOX=off, and never applies to launchers that run workers elsewhere", () => {
    expect(readSandboxConfig({ TETHER_SANDBOX: "off" })).toEqual({ mode: "off" });
    expect(loadConfig({ TETHER_LAUNCHER: "kubernetes", TETHER_K8S_WORKER_IMAGE: "img:1", TETHER_PUBLIC_URL: "ws://t:8080", TETHER_SANDBOX: "bogus" }).sandbox).toEqual({ mode: "off" });
  });

  it("reads the limits, the network switch, variables to pass and extra read-only binds", () => {
    expect(
      readSandboxConfig({
        TETHER_SANDBOX_NETWORK: "on",
        TETHER_SANDBOX_MEMORY_MB: "768",
        TETHER_SANDBOX_MAX_PROCESSES: "64",
        TETHER_SANDBOX_CPU_SECONDS: "0",
        TETHER_SANDBOX_PASS_ENV: "HTTPS_PROXY, OMP_NUM_THREADS",
        TETHER_SANDBOX_RO_BINDS: "/opt/venv/, /srv/data",
      }),
    ).toEqual({ mode: "on", network: true, memoryMb: 768, maxProcesses: 64, cpuSeconds: 0, passEnv: ["HTTPS_PROXY", "OMP_NUM_THREADS"], readOnlyBinds: ["/opt/venv", "/srv/data"] });
  });

  it("refuses bad values naming the variable", () => {
    const cases: Record<string, string>[] = [
      { TETHER_SANDBOX: "yes" },
      { TETHER_SANDBOX_NETWORK: "true" },
      { TETHER_SANDBOX_MEMORY_MB: "100" },
      { TETHER_SANDBOX_MAX_PROCESSES: "8" },
      { TETHER_SANDBOX_CPU_SECONDS: "-1" },
      { TETHER_SANDBOX_PASS_ENV: "NOT A NAME" },
      { TETHER_SANDBOX_RO_BINDS: "relative/path" },
    ];
    for (const env of cases) {
      const [name] = Object.keys(env);
      expect(() => readSandboxConfig(env), name).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID, message: expect.stringContaining(name!) }));
    }
  });

  it("refuses to pass a variable that looks like a secret into sandboxes", () => {
    expect(() => readSandboxConfig({ TETHER_SANDBOX_PASS_ENV: "LANG,OPENAI_API_KEY" })).toThrow(/OPENAI_API_KEY.*looks like a secret/);
  });
});
