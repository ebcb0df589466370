import { describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { loadWorkerConfig } from "./config.js";

const base = { TETHER_ORCHESTRATOR_URL: "ws://127.0.0.1:1/v1/workers/connect", TETHER_JOIN_TOKEN: "tok" };

describe("loadWorkerConfig", () => {
  it("applies the documented defaults", () => {
    expect(loadWorkerConfig(base, "/work")).toEqual({
      orchestratorUrl: base.TETHER_ORCHESTRATOR_URL,
      joinToken: "tok",
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
});
