import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { joinTokenOnStdin, loadWorkerConfig } from "./config.js";
import { readFirstLine } from "./stdin-token.js";

const url = { TETHER_ORCHESTRATOR_URL: "ws://127.0.0.1:1/v1/workers/connect" };

describe("readFirstLine", () => {
  it("returns the first line without its newline and stops reading", async () => {
    const input = new PassThrough();
    const line = readFirstLine(input);
    input.write("tok");
    input.write("en-1\r\nsecond line\n");
    await expect(line).resolves.toBe("token-1");
    expect(input.destroyed).toBe(true);
  });

  it("returns what arrived when stdin ends without a newline", async () => {
    const input = new PassThrough();
    const line = readFirstLine(input);
    input.end("token-2");
    await expect(line).resolves.toBe("token-2");
  });

  it("fails with CONFIG_INVALID when no line arrives in time or the line is too long", async () => {
    await expect(readFirstLine(new PassThrough(), 20)).rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID });
    const long = new PassThrough();
    const line = readFirstLine(long, 1000, 10);
    long.write("x".repeat(11));
    await expect(line).rejects.toThrow(/longer than 10 bytes/);
  });
});

describe("join token on stdin", () => {
  it("takes the token from stdin when TETHER_JOIN_TOKEN_STDIN=1, over TETHER_JOIN_TOKEN", () => {
    const env = { ...url, TETHER_JOIN_TOKEN_STDIN: "1", TETHER_JOIN_TOKEN: "from-env" };
    expect(joinTokenOnStdin(env)).toBe(true);
    expect(loadWorkerConfig(env, "/w", { stdinToken: "from-stdin" }).joinToken).toBe("from-stdin");
  });

  it("keeps reading TETHER_JOIN_TOKEN from the environment otherwise", () => {
    expect(joinTokenOnStdin({ ...url })).toBe(false);
    expect(loadWorkerConfig({ ...url, TETHER_JOIN_TOKEN: "from-env" }, "/w").joinToken).toBe("from-env");
    expect(loadWorkerConfig({ ...url, TETHER_JOIN_TOKEN: "from-env", TETHER_JOIN_TOKEN_STDIN: "0" }, "/w", { stdinToken: "ignored" }).joinToken).toBe("from-env");
  });

  it("refuses an empty stdin token and a bad TETHER_JOIN_TOKEN_STDIN", () => {
    expect(() => loadWorkerConfig({ ...url, TETHER_JOIN_TOKEN_STDIN: "1" }, "/w", { stdinToken: "  " })).toThrow(/TETHER_JOIN_TOKEN_STDIN/);
    expect(() => joinTokenOnStdin({ TETHER_JOIN_TOKEN_STDIN: "yes" })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
  });

  it("accepts a ws+unix: orchestrator URL (a relay socket)", () => {
    const env = { TETHER_ORCHESTRATOR_URL: "ws+unix:/run/tether/orchestrator.sock:/v1/workers/connect", TETHER_JOIN_TOKEN: "t" };
    expect(loadWorkerConfig(env, "/w").orchestratorUrl).toBe(env.TETHER_ORCHESTRATOR_URL);
  });
});
