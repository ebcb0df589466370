import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startJupyterServer, type JupyterServer } from "./jupyter-server.js";

const python = process.env.TETHER_PYTHON ?? "/usr/bin/python3";

describe("the Jupyter Server a worker starts", () => {
  let workspace: string;
  let server: JupyterServer;

  beforeAll(async () => {
    workspace = await mkdtemp(path.join(tmpdir(), "tether-jupyter-"));
    server = await startJupyterServer({ python, workspace, env: { ...process.env }, logger: pino({ level: "silent" }) });
  });

  afterAll(async () => {
    await server?.stop();
    await rm(workspace, { recursive: true, force: true });
  });

  it("keeps its token off the command line, where any user of the machine reads it with ps", async () => {
    const cmdline = (await readFile(`/proc/${server.pid}/cmdline`, "utf8")).split("\0").join(" ");
    expect(cmdline).toContain("--ServerApp.port=");
    expect(cmdline).not.toContain(server.token);
    // ...and it still demands the token.
    const anonymous = await fetch(`${server.baseUrl}api/kernels`);
    expect(anonymous.status).toBe(403);
    const authed = await fetch(`${server.baseUrl}api/kernels`, { headers: { Authorization: `token ${server.token}` } });
    expect(authed.status).toBe(200);
  });

  it("serves no terminals", async () => {
    const terminals = await fetch(`${server.baseUrl}api/terminals`, { headers: { Authorization: `token ${server.token}` } });
    expect(terminals.status).toBe(404);
  });
});
