#!/usr/bin/env node
// Run by `npm start` (prestart), after the build: makes sure a Python with
// jupyter_server + ipykernel exists for the local-process launcher's workers.
//
// It asks the worker itself (`<worker command> --probe-python`, the contract is
// in docs/internals.md), exactly as the orchestrator does at start
// (orchestrator/src/python-runtime.ts), so that the check and the real start
// agree on which interpreter is used. The worker command is
// TETHER_WORKER_COMMAND when set (split on spaces, quotes honoured, like
// orchestrator/src/config.ts), else `node worker/dist/main.js`. When the runtime is missing and we are root on
// a machine with apt-get, it runs infra/install-worker-runtime.sh (the same
// script CI and the worker image use) and probes again. Otherwise it prints the
// exact fix and exits 1.
//
// Env: TETHER_PYTHON (probe only that interpreter), TETHER_WORKER_COMMAND (the
// command probed), TETHER_SKIP_RUNTIME_INSTALL=1 (never install, only check),
// TETHER_LAUNCHER (unset or empty means `local`; anything else, `docker`,
// `kubernetes` or `azure`, runs workers elsewhere, in their own image, so there is
// nothing to check on this machine and the orchestrator validates the value itself).
// Plain Node ESM with no dependencies: it runs before anything else is trusted.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const workerMain = join(repoRoot, "worker", "dist", "main.js");
const installScript = join(repoRoot, "infra", "install-worker-runtime.sh");
const env = process.env;
/** The probe starts Python a few times; a minute covers a cold disk. */
const PROBE_TIMEOUT_MS = 60_000;

/** TETHER_WORKER_COMMAND as argv, or undefined when unset (the default worker). */
const customWorkerCommand = env.TETHER_WORKER_COMMAND?.trim() ? splitCommand(env.TETHER_WORKER_COMMAND) : undefined;

function main() {
  // Same reading as orchestrator/src/config.ts: trimmed, empty means local.
  const launcher = env.TETHER_LAUNCHER?.trim() || "local";
  if (launcher !== "local") {
    console.log(`Python kernel runtime: not checked here (TETHER_LAUNCHER=${launcher} runs workers elsewhere).`);
    return 0;
  }
  if (customWorkerCommand?.length === 0) {
    console.error("TETHER_WORKER_COMMAND is empty.");
    return 1;
  }
  if (!customWorkerCommand && !existsSync(workerMain)) {
    console.error(`The worker is not built (${relative(process.cwd(), workerMain) || workerMain} is missing): run npm run build`);
    return 1;
  }

  let probe = runProbe();
  if (probe.ok) return printOk(probe);
  if (probe.broken) return printBroken(probe);

  const python = env.TETHER_PYTHON?.trim();
  const skip = env.TETHER_SKIP_RUNTIME_INSTALL === "1";
  // apt installs for /usr/bin/python3 only: with another TETHER_PYTHON it would not help.
  const aptHelps = python === undefined || python === "" || python === "/usr/bin/python3";
  const canInstall = !skip && aptHelps && isRoot() && hasCommand("apt-get") && hasCommand("bash");

  if (canInstall) {
    console.log("Installing the Python kernel runtime with apt-get (one time, ~1 min)...");
    const install = spawnSync("bash", [installScript], {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (install.error || install.status !== 0) {
      console.error(`\n${installScript} failed (${install.error?.message ?? `exit code ${install.status}`}).`);
      printFix(probe, { skip, aptHelps });
      return 1;
    }
    probe = runProbe();
    if (probe.ok) return printOk(probe);
    if (probe.broken) return printBroken(probe);
  }

  printFix(probe, { skip, aptHelps });
  return 1;
}

/**
 * Runs the worker's probe and returns its JSON verdict. Anything that breaks
 * the contract (crash, no JSON) becomes { ok: false, broken: true, error }.
 */
function runProbe() {
  const [command, ...args] = customWorkerCommand ?? [process.execPath, workerMain];
  args.push("--probe-python");
  const python = env.TETHER_PYTHON?.trim();
  if (python) args.push("--python", python);
  const result = spawnSync(command, args, { encoding: "utf8", env, timeout: PROBE_TIMEOUT_MS, maxBuffer: 1024 * 1024 });
  if (result.error) return broken(`could not run the probe: ${result.error.message}`);
  const line = (result.stdout ?? "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("{"))
    .pop();
  let verdict;
  try {
    verdict = line === undefined ? undefined : JSON.parse(line);
  } catch {
    verdict = undefined;
  }
  if (typeof verdict !== "object" || verdict === null || typeof verdict.ok !== "boolean") {
    const stderr = (result.stderr ?? "").trim().split("\n").slice(-5).join("\n");
    return broken(`the probe exited with code ${result.status ?? result.signal} and printed no verdict${stderr ? `:\n${stderr}` : ""}`);
  }
  if (verdict.ok && result.status !== 0) return broken(`the probe said ok but exited with code ${result.status}`);
  return verdict;
}

function broken(error) {
  return { ok: false, broken: true, error };
}

/** The probe itself failed: installing Python would not help, so say what broke. */
function printBroken(probe) {
  console.error(`Could not check the Python kernel runtime: ${probe.error}`);
  if (customWorkerCommand) {
    console.error(
      `The probe ran TETHER_WORKER_COMMAND: ${customWorkerCommand.join(" ")} --probe-python; check that command (it must accept --probe-python like worker/dist/main.js).`,
    );
  } else {
    console.error("Rebuild with `npm run build`; if it persists, run `node worker/dist/main.js --probe-python` to see the problem.");
  }
  return 1;
}

function printOk(probe) {
  console.log(
    `Python kernel runtime: ${probe.python} (Python ${probe.pythonVersion}, jupyter_server ${probe.jupyterServer}, ipykernel ${probe.ipykernel})`,
  );
  return 0;
}

function printFix(probe, { skip, aptHelps }) {
  const lines = ["", "Tether needs a Python 3 with jupyter_server and ipykernel to run code, and found none."];
  for (const attempt of Array.isArray(probe.tried) ? probe.tried : []) {
    lines.push(`  tried ${attempt?.python ?? "?"}: ${attempt?.error ?? "unusable"}`);
  }
  if (probe.hint) lines.push(`  hint: ${probe.hint}`);
  if (skip) lines.push("", "TETHER_SKIP_RUNTIME_INSTALL=1 is set, so nothing was installed.");
  lines.push("", "Fix it with one of:");
  if (hasCommand("apt-get") && aptHelps) {
    const sudo = isRoot() ? "" : "sudo ";
    lines.push(`  ${sudo}bash infra/install-worker-runtime.sh   # Debian/Ubuntu: apt-get install python3-jupyter-server python3-ipykernel ...`);
  }
  if (env.TETHER_PYTHON?.trim()) lines.push(`  unset TETHER_PYTHON                        # it points at ${env.TETHER_PYTHON}; without it every python3 on PATH is tried`);
  // Debian's own python3 refuses `pip install` outside a venv (PEP 668), hence the
  // venv (on Debian, `python3 -m venv` itself needs the python3-venv package).
  lines.push(
    "  python3 -m venv ~/.tether-venv && ~/.tether-venv/bin/pip install jupyter_server ipykernel matplotlib numpy pandas",
    "      then: TETHER_PYTHON=~/.tether-venv/bin/python npm start",
    "",
  );
  console.error(lines.join("\n"));
}

/** Splits a command line on whitespace, honouring single and double quotes (splitCommand in orchestrator/src/config.ts). */
function splitCommand(raw) {
  const out = [];
  for (const match of raw.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(match[1] ?? match[2] ?? match[3] ?? "");
  return out;
}

function isRoot() {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

function hasCommand(name) {
  return (env.PATH ?? "").split(delimiter).some((dir) => dir !== "" && existsSync(join(dir, name)));
}

process.exitCode = main();
