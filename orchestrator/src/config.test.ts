import path from "node:path";
import { describe, expect, it } from "vitest";
import { effectiveExecTimeoutMs, loadConfig, splitCommand } from "./config.js";
import { ErrorCodes, TetherError } from "./errors.js";

function configError(env: Record<string, string>): TetherError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof TetherError) return error;
    throw error;
  }
  throw new Error("loadConfig accepted the environment");
}

describe("loadConfig", () => {
  it("applies the documented defaults to an empty environment", () => {
    const config = loadConfig({});
    expect(config.host).toBe("127.0.0.1");
    expect(config.port).toBe(8080);
    expect(config.apiKeys).toEqual([]);
    expect(config.dataDir).toBe(path.resolve(".tether"));
    expect(config.publicUrl).toBeUndefined();
    expect(config.launcher).toBe("local");
    expect(config.workerCommand.at(-1)).toMatch(/worker\/dist\/main\.js$/);
    expect(config.defaultExecTimeoutMs).toBe(60_000);
    expect(config.maxExecTimeoutMs).toBe(600_000);
    expect(config.maxOutputBytes).toBe(1024 * 1024);
    expect(config.startTimeoutMs).toBe(60_000);
    expect(config.joinTokenTtlMs).toBe(120_000);
    expect(config.heartbeatIntervalMs).toBe(5000);
    expect(config.interruptGraceMs).toBe(2000);
    expect(config.maxUploadBytes).toBe(1024 * 1024 * 1024);
    expect(config.maxRequestBytes).toBe(8 * 1024 * 1024);
    expect(config.maxClientFrameBytes).toBe(1024 * 1024);
    expect(config.logLevel).toBe("info");
  });

  it("parses tenants and keys, keeping any ':' inside a key", () => {
    const config = loadConfig({ TETHER_API_KEYS: " alice:key-a , bob:key:b ", TETHER_PORT: "0" });
    expect(config.apiKeys).toEqual([
      { tenant: "alice", key: "key-a" },
      { tenant: "bob", key: "key:b" },
    ]);
    expect(config.port).toBe(0);
  });

  it.each([["abc"], ["-1"], ["65536"], ["80.5"]])("refuses TETHER_PORT=%s", (port) => {
    const error = configError({ TETHER_PORT: port });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toContain("TETHER_PORT");
  });

  it.each([["alice"], ["alice:"], [":key"], ["alice:a,,bob:b"], ["alice:same,bob:same"], ["al ice:k"]])("refuses TETHER_API_KEYS=%s", (keys) => {
    const error = configError({ TETHER_API_KEYS: keys });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toContain("TETHER_API_KEYS");
  });

  it("never echoes a key in its error", () => {
    const error = configError({ TETHER_API_KEYS: "alice:secret-1,bob:secret-1" });
    expect(error.message).not.toContain("secret-1");
  });

  it("refuses unknown launchers, log levels and non-websocket public URLs", () => {
    expect(configError({ TETHER_LAUNCHER: "azure" }).code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(configError({ TETHER_LOG_LEVEL: "loud" }).code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(configError({ TETHER_PUBLIC_URL: "http://x" }).code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(configError({ TETHER_HEARTBEAT_INTERVAL_MS: "10" }).code).toBe(ErrorCodes.CONFIG_INVALID);
  });

  it("gives Azure starts a longer default start timeout than local ones, and lets TETHER_START_TIMEOUT_MS override it", () => {
    const azure = {
      TETHER_LAUNCHER: "azure",
      TETHER_PUBLIC_URL: "wss://tether.example.org",
      TETHER_AZURE_SUBSCRIPTION_ID: "00000000-0000-0000-0000-000000000000",
      TETHER_AZURE_RESOURCE_GROUP: "rg",
      TETHER_AZURE_JOB_NAME: "tether-worker",
      TETHER_AZURE_WORKER_IMAGE: "example.azurecr.io/tether-worker:1",
    };
    expect(loadConfig({}).startTimeoutMs).toBe(60_000);
    expect(loadConfig(azure).startTimeoutMs).toBe(180_000);
    expect(loadConfig({ ...azure, TETHER_START_TIMEOUT_MS: "90000" }).startTimeoutMs).toBe(90_000);
  });

  it("refuses a default timeout above the maximum", () => {
    expect(configError({ TETHER_DEFAULT_EXEC_TIMEOUT_MS: "5000", TETHER_MAX_EXEC_TIMEOUT_MS: "1000" }).code).toBe(ErrorCodes.CONFIG_INVALID);
  });

  it("strips a trailing slash from the public URL and splits the worker command", () => {
    const config = loadConfig({ TETHER_PUBLIC_URL: "wss://tether.example.com/", TETHER_WORKER_COMMAND: `node "/opt/my worker/main.js" --x` });
    expect(config.publicUrl).toBe("wss://tether.example.com");
    expect(config.workerCommand).toEqual(["node", "/opt/my worker/main.js", "--x"]);
    expect(splitCommand("a 'b c'")).toEqual(["a", "b c"]);
  });

  it("caps execution timeouts at the maximum", () => {
    const limits = { defaultExecTimeoutMs: 60_000, maxExecTimeoutMs: 100_000 };
    expect(effectiveExecTimeoutMs(limits, undefined)).toBe(60_000);
    expect(effectiveExecTimeoutMs(limits, 5)).toBe(5);
    expect(effectiveExecTimeoutMs(limits, 1_000_000)).toBe(100_000);
  });
});
