import { parsePythonProbeAnswer } from "@tether/shared";
import { spawn } from "node:child_process";
import { ErrorCodes, tetherError } from "./errors.js";

export interface PythonRuntime {
  python: string;
  pythonVersion?: string;
  jupyterServer?: string;
  ipykernel?: string;
}

const PROBE_TIMEOUT_MS = 60_000;

/**
 * Runs `<worker> --probe-python [--python P]` once and returns the
 * interpreter it found (only P, when TETHER_PYTHON names one).
 * The worker owns the knowledge of what a usable runtime is; the orchestrator
 * only passes the answer on to every worker as TETHER_PYTHON.
 */
export async function probePython(workerCommand: readonly string[], python?: string): Promise<PythonRuntime> {
  const [command, ...args] = workerCommand;
  const { code, stdout, stderr } = await run(command ?? "node", [...args, "--probe-python", ...(python ? ["--python", python] : [])]);
  const answer = parsePythonProbeAnswer(stdout);
  if (answer?.ok === true) {
    const { ok: _ok, ...runtime } = answer;
    return runtime;
  }
  if (answer?.ok === false) {
    const tried = answer.tried.map((t) => `${t.python}: ${t.error}`).join("; ");
    throw tetherError(ErrorCodes.RUNTIME_PYTHON_NOT_FOUND, `No Python with jupyter_server and ipykernel was found${tried ? ` (tried ${tried})` : ""}.`, { hint: answer.hint });
  }
  const tail = stderr.trim().split("\n").slice(-5).join("\n");
  throw tetherError(ErrorCodes.RUNTIME_PYTHON_NOT_FOUND, `The worker's Python probe failed (exit code ${String(code)})${tail ? `: ${tail}` : "."}`, {
    hint: `Build the worker (npm run build) or set TETHER_WORKER_COMMAND; the probe ran: ${workerCommand.join(" ")} --probe-python`,
  });
}

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), PROBE_TIMEOUT_MS);
    child.once("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}${error.message}` });
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
