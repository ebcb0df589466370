import { describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { readSandboxConfig, type SandboxOn } from "../../config-sandbox.js";
import { preflightSandbox } from "./sandbox-preflight.js";
import type { SandboxContext } from "./sandbox-setup.js";

const config = readSandboxConfig({}) as SandboxOn;
const layout = { system: [{ path: "/usr", dir: true as const }], etc: [], readOnly: ["/repo/node_modules"], nprocPerNamespace: true };

describe("preflightSandbox", () => {
  it("fails with one line and the fix when bwrap is not installed", async () => {
    const context: SandboxContext = { config, layout, identity: undefined, bwrap: undefined };
    await expect(preflightSandbox(context, "/tmp/tether-unused")).rejects.toMatchObject({
      code: ErrorCodes.RUNTIME_SANDBOX_UNAVAILABLE,
      message: expect.stringMatching(/^bubblewrap \(bwrap\) is not installed[^\n]*$/),
      hint: expect.stringMatching(/apt-get install bubblewrap.*TETHER_SANDBOX=off/),
    });
  });

  it("refuses a data dir that every sandbox would see (inside a read-only bind)", async () => {
    const context: SandboxContext = { config, layout, identity: undefined, bwrap: "/usr/bin/bwrap" };
    await expect(preflightSandbox(context, "/repo/node_modules/.tether")).rejects.toMatchObject({
      code: ErrorCodes.RUNTIME_SANDBOX_UNAVAILABLE,
      message: expect.stringContaining("is inside /repo/node_modules"),
    });
  });

  it("refuses a data dir too long for the gateway socket's path", async () => {
    const context: SandboxContext = { config, layout, identity: undefined, bwrap: "/usr/bin/bwrap" };
    await expect(preflightSandbox(context, `/tmp/${"d".repeat(80)}`)).rejects.toMatchObject({ message: expect.stringContaining("too long") });
  });
});
