import { execFile } from "node:child_process";
import { parsePythonVersions, type PythonProbeAnswer } from "@tether/shared";
import { access, constants, realpath } from "node:fs/promises";
import path from "node:path";

/** What `--probe-python` prints (docs/internals.md). */
/** The answer `--probe-python` prints (its schema lives in shared: the orchestrator parses it). */
export type ProbeResult = PythonProbeAnswer;

export const PYTHON_RUNTIME_HINT =
  "Install Jupyter for Python: sudo apt-get install -y python3-ipykernel python3-jupyter-server python3-matplotlib python3-numpy python3-pandas " +
  "(or pip install jupyter_server ipykernel matplotlib numpy pandas in the chosen interpreter), or point TETHER_PYTHON at an interpreter that has them.";

const PROBE_SCRIPT =
  "import sys, json, platform, jupyter_server, ipykernel; " +
  "print(json.dumps({'pythonVersion': platform.python_version(), 'jupyterServer': jupyter_server.__version__, 'ipykernel': ipykernel.__version__}))";

const PROBE_TIMEOUT_MS = 20_000;
const FALLBACK_PYTHONS = ["/usr/bin/python3", "/usr/local/bin/python3"];

export interface ProbeOptions {
  /** TETHER_PYTHON or --python: probe only this interpreter. */
  python?: string | undefined;
  /** PATH to search for python3 when no interpreter is given. */
  pathEnv?: string | undefined;
}

/**
 * Finds an interpreter that imports jupyter_server and ipykernel. The candidates
 * run in parallel (each import takes ~0.3 s) but the first in order wins.
 */
export async function probePython(options: ProbeOptions = {}): Promise<ProbeResult> {
  const candidates = options.python ? [options.python] : await pythonCandidates(options.pathEnv ?? "");
  const outcomes = await Promise.all(candidates.map((python) => probeOne(python)));
  const tried: { python: string; error: string }[] = [];
  for (const [index, outcome] of outcomes.entries()) {
    const python = candidates[index] ?? "";
    if (outcome.ok) return { ok: true, python, ...outcome.info };
    tried.push({ python, error: outcome.error });
  }
  if (tried.length === 0) tried.push({ python: "python3", error: "no python3 found on PATH, /usr/bin or /usr/local/bin" });
  return { ok: false, tried, hint: PYTHON_RUNTIME_HINT };
}

/** Every python3 on PATH in order, then the system locations; one entry per real file. */
export async function pythonCandidates(pathEnv: string): Promise<string[]> {
  const found = [...pathEnv.split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, "python3")), ...FALLBACK_PYTHONS];
  const seen = new Set<string>();
  const out: string[] = [];
  for (const candidate of found) {
    try {
      await access(candidate, constants.X_OK);
      // pyenv shims are scripts, so the shim and the interpreter it picks have different realpaths: both stay.
      const real = await realpath(candidate);
      if (seen.has(real)) continue;
      seen.add(real);
      out.push(candidate);
    } catch {
      // Not there or not executable: not a candidate.
    }
  }
  return out;
}

type ProbeOutcome = { ok: true; info: { pythonVersion: string; jupyterServer: string; ipykernel: string } } | { ok: false; error: string };

function probeOne(python: string): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    execFile(python, ["-c", PROBE_SCRIPT], { timeout: PROBE_TIMEOUT_MS, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) {
        const lastLine = stderr.trim().split("\n").pop() ?? "";
        resolve({ ok: false, error: lastLine || error.message });
        return;
      }
      const info = parsePythonVersions(stdout);
      resolve(info ? { ok: true, info } : { ok: false, error: `unexpected probe output: ${stdout.slice(0, 200)}` });
    });
  });
}
