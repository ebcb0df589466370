import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { probePython } from "./python-probe.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-probe-test-"));
  // A python3 without Jupyter, first on PATH (like the pyenv shim on the dev machine).
  await writeFile(path.join(dir, "python3"), "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'jupyter_server'\" >&2\nexit 1\n");
  await chmod(path.join(dir, "python3"), 0o755);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("probePython", () => {
  it.skipIf(!existsSync("/usr/bin/python3"))("skips a python3 without Jupyter and finds /usr/bin/python3", async () => {
    const result = await probePython({ pathEnv: dir });
    expect(result).toMatchObject({ ok: true, python: "/usr/bin/python3" });
    if (result.ok) expect(result.jupyterServer).toMatch(/^\d+\./);
  });

  it("refuses an interpreter without Jupyter and gives the install hint", async () => {
    const result = await probePython({ python: path.join(dir, "python3") });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.tried).toEqual([{ python: path.join(dir, "python3"), error: "ModuleNotFoundError: No module named 'jupyter_server'" }]);
    expect(result.hint).toContain("apt-get install -y python3-ipykernel python3-jupyter-server");
  });
});
