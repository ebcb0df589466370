import { describe, expect, it } from "vitest";
import { inheritableEnvironment } from "./worker-environment.js";

describe("inheritableEnvironment", () => {
  it("keeps ordinary variables and drops the ones that look like secrets", () => {
    const env = inheritableEnvironment({
      PATH: "/usr/bin",
      HOME: "/home/u",
      TETHER_LOG_LEVEL: "info",
      TETHER_API_KEYS: "alice:key-a",
      AZURE_CLIENT_SECRET: "s",
      GITHUB_TOKEN: "t",
      DB_PASSWORD: "p",
      OPENAI_API_KEY: "k",
      REDIS_CONNECTION_STRING: "c",
      TETHER_REDIS_URL: "redis://:password@redis:6379",
      UNSET: undefined,
    });
    expect(env).toEqual({ PATH: "/usr/bin", HOME: "/home/u", TETHER_LOG_LEVEL: "info" });
  });
});
