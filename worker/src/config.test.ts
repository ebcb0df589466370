import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { loadWorkerConfig, removeJoinTokenFile } from "./config.js";

const base = { TETHER_ORCHESTRATOR_URL: "ws://127.0.0.1:1/v1/workers/connect", TETHER_JOIN_TOKEN: "tok" };

describe("loadWorkerConfig", () => {
  it("applies the documented defaults", () => {
    expect(loadWorkerConfig(base, "/work")).toEqual({
      orchestratorUrl: base.TETHER_ORCHESTRATOR_URL,
      joinToken: "tok",
      joinTokenFile: undefined,
      launchId: undefined,
      workspace: "/work",
      python: undefined,
      interruptGraceMs: 2000,
      logLevel: "info",
    });
  });

  it("fails with CONFIG_INVALID naming the variable", () => {
    expect(() => loadWorkerConfig({ TETHER_JOIN_TOKEN: "tok" })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
    expect(() => loadWorkerConfig({ ...base, TETHER_INTERRUPT_GRACE_MS: "soon" })).toThrow(/TETHER_INTERRUPT_GRACE_MS/);
    expect(() => loadWorkerConfig({ ...base, TETHER_ORCHESTRATOR_URL: "http://x" })).toThrow(/ws:\/\//);
  });

  it("reads the join token from TETHER_JOIN_TOKEN_FILE, trimmed, instead of TETHER_JOIN_TOKEN", () => {
    const dir = mkdtempSync(join(tmpdir(), "tether-token-"));
    try {
      const file = join(dir, "join-token");
      writeFileSync(file, "tok-from-file\n", { mode: 0o400 });
      const config = loadWorkerConfig({ TETHER_ORCHESTRATOR_URL: base.TETHER_ORCHESTRATOR_URL, TETHER_JOIN_TOKEN_FILE: file }, "/work");
      expect(config.joinToken).toBe("tok-from-file");
      expect(config.joinTokenFile).toBe(file);
      expect(removeJoinTokenFile(file)).toBe("removed");
      expect(existsSync(file)).toBe(false);
      expect(removeJoinTokenFile(file)).toBe("gone");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a missing or empty token file, and a token given both ways", () => {
    const url = { TETHER_ORCHESTRATOR_URL: base.TETHER_ORCHESTRATOR_URL };
    expect(() => loadWorkerConfig({ ...url, TETHER_JOIN_TOKEN_FILE: "/nonexistent/join-token" })).toThrow(/TETHER_JOIN_TOKEN_FILE.*ENOENT/);
    expect(() => loadWorkerConfig({ ...url, TETHER_JOIN_TOKEN_FILE: "/t" }, "/", { readFile: () => " \n" })).toThrow(/empty/);
    expect(() => loadWorkerConfig({ ...base, TETHER_JOIN_TOKEN_FILE: "/t" }, "/", { readFile: () => "x" })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
  });

  it("keeps a token file it may not remove (a read-only Secret mount) and fails on anything else", () => {
    const refuse = (code: string) => () => {
      throw Object.assign(new Error(code), { code });
    };
    expect(removeJoinTokenFile("/t", refuse("EROFS"))).toBe("kept-read-only");
    expect(removeJoinTokenFile("/t", refuse("EACCES"))).toBe("kept-read-only");
    expect(() => removeJoinTokenFile("/t", refuse("EIO"))).toThrow("EIO");
  });

  it("accepts the ws+unix URL a sandboxed worker dials, and reads the sandbox's limits", () => {
    const config = loadWorkerConfig({
      ...base,
      TETHER_ORCHESTRATOR_URL: "ws+unix:///run/tether/gateway.sock:/v1/workers/connect",
      TETHER_SANDBOX_LIMITS: '{"memoryMb":768,"maxProcesses":64,"cpuSeconds":0,"killRecord":"/run/tether/limit-kill.json"}',
    });
    expect(config.orchestratorUrl).toBe("ws+unix:///run/tether/gateway.sock:/v1/workers/connect");
    expect(config.sandboxLimits).toEqual({ memoryMb: 768, maxProcesses: 64, cpuSeconds: 0, killRecord: "/run/tether/limit-kill.json" });
    expect(() => loadWorkerConfig({ ...base, TETHER_ORCHESTRATOR_URL: "ws+unix://relative.sock" })).toThrow(/TETHER_ORCHESTRATOR_URL/);
    expect(() => loadWorkerConfig({ ...base, TETHER_SANDBOX_LIMITS: '{"memoryMb":"lots"}' })).toThrow(/TETHER_SANDBOX_LIMITS/);
  });
});
