import { parsePythonProbeAnswer } from "@tether/shared";
import { ErrorCodes, tetherError } from "./errors.js";
import { runCommand } from "./launchers/sandbox/run-command.js";
import type { CommandSpec } from "./launchers/sandbox/sandbox-setup.js";

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
 * only passes the answer on to every worker as TETHER_PYTHON. `wrap` runs the
 * probe where workers run (inside a sandbox: what is found there works there).
 */
export async function probePython(workerCommand: readonly string[], python?: string, wrap: (argv: string[]) => CommandSpec = direct): Promise<PythonRuntime> {
  const argv = [...workerCommand, "--probe-python", ...(python ? ["--python", python] : [])];
  const { code, stdout, stderr } = await runCommand(wrap(argv), PROBE_TIMEOUT_MS);
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

function direct(argv: string[]): CommandSpec {
  const [command = "node", ...args] = argv;
  return { command, args };
}
