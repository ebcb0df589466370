#!/usr/bin/env node
// Run by `npm start` (prestart), after the build: makes sure a Python with
// jupyter_server + ipykernel exists for the local-process launcher's workers,
// and, unless TETHER_SANDBOX=off, that bubblewrap can sandbox them.
//
// It asks the worker itself (`<worker command> --probe-python`, the contract is
// in docs/internals.md), exactly as the orchestrator does at start
// (orchestrator/src/python-runtime.ts), so that the check and the real start
// agree on which interpreter is used. The worker command is
// TETHER_WORKER_COMMAND when set (split on spaces, quotes honoured, like
// orchestrator/src/config.ts), else `node worker/dist/main.js`. With the
// sandbox on (the default) the probe runs inside a sandbox, as workers do,
// after the orchestrator's own sandbox preflight (bwrap installed, user
// namespaces allowed, data dir reachable; imported from orchestrator/dist so the
// two cannot disagree). When the runtime or bwrap is missing and we are root on
// a machine with apt-get, it runs infra/install-worker-runtime.sh (the same
// script CI and the worker image use) and checks again. Otherwise it prints the
// exact fix and exits 1.
//
// Env: TETHER_PYTHON (probe only that interpreter), TETHER_WORKER_COMMAND (the
// command probed), TETHER_SKIP_RUNTIME_INSTALL=1 (never install, only check),
// TETHER_LAUNCHER (unset or empty means `local`; anything else, `docker`,
// `kubernetes` or `azure`, runs workers elsewhere, in their own image, so there is
// nothing to check on this machine and the orchestrator validates the value itself),
// TETHER_SANDBOX / TETHER_SANDBOX_* and TETHER_DATA_DIR (read as the orchestrator reads them).
// Plain Node ESM with no dependencies but our own built orchestrator.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const workerMain = join(repoRoot, "worker", "dist", "main.js");
const orchestratorDist = join(repoRoot, "orchestrator", "dist");
const installScript = join(repoRoot, "infra", "install-worker-runtime.sh");
const env = process.env;
/** The probe starts Python a few times; a minute covers a cold disk. */
const PROBE_TIMEOUT_MS = 60_000;

/** TETHER_WORKER_COMMAND as argv, or undefined when unset (the default worker). */
const customWorkerCommand = env.TETHER_WORKER_COMMAND?.trim() ? splitCommand(env.TETHER_WORKER_COMMAND) : undefined;

async function main() {
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

  const python = env.TETHER_PYTHON?.trim();
  const skip = env.TETHER_SKIP_RUNTIME_INSTALL === "1";
  // apt installs for /usr/bin/python3 only: with another TETHER_PYTHON it would not help.
  const aptHelps = python === undefined || python === "" || python === "/usr/bin/python3";
  const canInstall = !skip && aptHelps && isRoot() && hasCommand("apt-get") && hasCommand("bash");

  const sandbox = await loadSandbox();
  if (sandbox.error) return printSandboxProblem(sandbox.error);
  if (sandbox.context && !sandbox.context.bwrap && !skip && isRoot() && hasCommand("apt-get") && hasCommand("bash")) {
    console.log("Installing bubblewrap and the Python kernel runtime with apt-get (one time, ~1 min)...");
    if (!runInstallScript()) return 1;
    sandbox.context = sandbox.module.sandboxContext(sandbox.config, customWorkerCommand ?? [process.execPath, workerMain]);
  }
  if (sandbox.context) {
    try {
      await sandbox.preflight(sandbox.context, dataDir());
    } catch (error) {
      return printSandboxProblem(error);
    }
  }

  let probe = await runProbe(sandbox);
  if (probe.ok) return printOk(probe, sandbox);
  if (probe.broken) return printBroken(probe);

  if (canInstall) {
    console.log("Installing the Python kernel runtime with apt-get (one time, ~1 min)...");
    if (!runInstallScript()) {
      printFix(probe, { skip, aptHelps });
      return 1;
    }
    probe = await runProbe(sandbox);
    if (probe.ok) return printOk(probe, sandbox);
    if (probe.broken) return printBroken(probe);
  }

  printFix(probe, { skip, aptHelps });
  return 1;
}

/**
 * Runs the worker's probe and returns its JSON verdict. Anything that breaks
 * the contract (crash, no JSON) becomes { ok: false, broken: true, error }.
 */
async function runProbe(sandbox) {
  const argv = [...(customWorkerCommand ?? [process.execPath, workerMain]), "--probe-python"];
  const python = env.TETHER_PYTHON?.trim();
  if (python) argv.push("--python", python);
  let result;
  if (sandbox.context) {
    // Inside a sandbox, as workers run: what is found there works there.
    const ran = await sandbox.runCommand(sandbox.module.sandboxedCommand(sandbox.context, argv), PROBE_TIMEOUT_MS);
    result = { status: ran.code, signal: ran.signal, stdout: ran.stdout, stderr: ran.stderr, error: undefined };
  } else {
    const [command, ...args] = argv;
    result = spawnSync(command, args, { encoding: "utf8", env, timeout: PROBE_TIMEOUT_MS, maxBuffer: 1024 * 1024 });
  }
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

function printOk(probe, sandbox) {
  console.log(
    `Python kernel runtime: ${probe.python} (Python ${probe.pythonVersion}, jupyter_server ${probe.jupyterServer}, ipykernel ${probe.ipykernel})${sandbox.context ? ", checked inside the sandbox" : ""}`,
  );
  if (!sandbox.context) console.log("Sandbox: OFF (TETHER_SANDBOX=off): workers will run unsandboxed, as this user.");
  return 0;
}

/**
 * TETHER_SANDBOX* read as the orchestrator reads them, and its preflight,
 * from the built orchestrator. `context` is undefined with the sandbox off.
 */
async function loadSandbox() {
  const load = (file) => import(pathToFileURL(join(orchestratorDist, file)).href);
  try {
    const [config, module, preflight, run] = await Promise.all([
      load("config-sandbox.js"),
      load("launchers/sandbox/sandbox-setup.js"),
      load("launchers/sandbox/sandbox-preflight.js"),
      load("launchers/sandbox/run-command.js"),
    ]);
    const setting = config.readSandboxConfig(env);
    if (setting.mode === "off") return { context: undefined };
    return {
      config: setting,
      module,
      preflight: preflight.preflightSandbox,
      runCommand: run.runCommand,
      context: module.sandboxContext(setting, customWorkerCommand ?? [process.execPath, workerMain]),
    };
  } catch (error) {
    return { error };
  }
}

/** TETHER_DATA_DIR as orchestrator/src/config.ts resolves it (relative to the cwd, default .tether). */
function dataDir() {
  return resolve(env.TETHER_DATA_DIR?.trim() || ".tether");
}

/** One line: what is wrong with the sandbox and how to fix it (no stack trace). */
function printSandboxProblem(error) {
  const message = error?.message ?? String(error);
  const hint = error?.hint ? ` Fix: ${error.hint}` : "";
  console.error(`Sandbox: ${message}${hint}${error?.code ? ` [${error.code}]` : ""}`);
  return 1;
}

/** Runs infra/install-worker-runtime.sh (apt-get); false when it failed (it said why). */
function runInstallScript() {
  const install = spawnSync("bash", [installScript], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (install.error || install.status !== 0) {
    console.error(`\n${installScript} failed (${install.error?.message ?? `exit code ${install.status}`}).`);
    return false;
  }
  return true;
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

process.exitCode = await main();
