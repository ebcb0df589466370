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
  const line = stdout.trim().split("\n").pop() ?? "";
  let answer: { ok?: unknown; python?: unknown; hint?: unknown; tried?: unknown; pythonVersion?: unknown; jupyterServer?: unknown; ipykernel?: unknown } | undefined;
  try {
    answer = JSON.parse(line) as typeof answer;
  } catch {
    answer = undefined;
  }
  if (answer?.ok === true && typeof answer.python === "string") {
    return {
      python: answer.python,
      ...(typeof answer.pythonVersion === "string" ? { pythonVersion: answer.pythonVersion } : {}),
      ...(typeof answer.jupyterServer === "string" ? { jupyterServer: answer.jupyterServer } : {}),
      ...(typeof answer.ipykernel === "string" ? { ipykernel: answer.ipykernel } : {}),
    };
  }
  if (answer?.ok === false) {
    const tried = Array.isArray(answer.tried)
      ? (answer.tried as { python?: unknown; error?: unknown }[]).map((t) => `${String(t.python)}: ${String(t.error)}`).join("; ")
      : "";
    throw tetherError(ErrorCodes.RUNTIME_PYTHON_NOT_FOUND, `No Python with jupyter_server and ipykernel was found${tried ? ` (tried ${tried})` : ""}.`, {
      hint: typeof answer.hint === "string" ? answer.hint : "Install python3-ipykernel and python3-jupyter-server, or set TETHER_PYTHON.",
    });
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
