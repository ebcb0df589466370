import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promisify } from "node:util";
import { KERNEL_BOOT } from "./jupyter-launch.js";
import { JUPYTER_BOOTSTRAP, startJupyterServer, type JupyterServer } from "./jupyter-server.js";

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

describe("the Jupyter Server bootstrap", () => {
  it("finds the python3 kernelspec where jupyter_client does, without importing IPython, ipykernel or debugpy into the server", async () => {
    // The bootstrap's patches, then what a kernel start asks of the kernelspec manager; an unpatched manager answers the same.
    const patches = JUPYTER_BOOTSTRAP.slice(0, JUPYTER_BOOTSTRAP.indexOf("from jupyter_server.serverapp import main"));
    const probe = [
      "import json",
      "from jupyter_client.kernelspec import KernelSpecManager",
      "manager = KernelSpecManager()",
      "spec = manager.get_kernel_spec('python3')",
      "print(json.dumps({'dirs': manager.kernel_dirs, 'argv': spec.argv, 'loaded': sorted(m for m in ('IPython', 'ipykernel', 'debugpy') if m in sys.modules)}))",
    ].join("\n");
    const run = async (code: string): Promise<{ dirs: string[]; argv: string[]; loaded: string[] }> => {
      const { stdout } = await promisify(execFile)(python, ["-c", code], { env: { ...process.env, TETHER_JUPYTER_TOKEN: "probe" } });
      return JSON.parse(stdout) as { dirs: string[]; argv: string[]; loaded: string[] };
    };
    const [patched, stock] = await Promise.all([run(`${patches}\n${probe}`), run(`import sys\n${probe}`)]);
    expect(patched.loaded).toEqual([]);
    expect(stock.loaded).toContain("IPython");
    expect(patched.dirs).toEqual(stock.dirs);
    // An ipykernel spec runs KERNEL_BOOT instead of `-m ipykernel_launcher` (no debugpy, the workspace off sys.path while it imports).
    expect(stock.argv.slice(1, 4)).toEqual(["-m", "ipykernel_launcher", "-f"]);
    expect(patched.argv).toEqual([stock.argv[0], "-c", KERNEL_BOOT, "-f", stock.argv[4]]);
  });
});
