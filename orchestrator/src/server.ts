#!/usr/bin/env node
import { TetherError, errnoCode } from "@tether/shared";
import { loadConfig, type OrchestratorConfig } from "./config.js";
import { startOrchestrator, type RunningOrchestrator } from "./start.js";

/** `node orchestrator/dist/server.js`: listen, print how to connect, stop cleanly on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let orchestrator: RunningOrchestrator | undefined;
  let stopping: { signal: NodeJS.Signals; at: number } | undefined;
  const close = (running: RunningOrchestrator): void => {
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("tether: error while stopping:", error);
        process.exit(1);
      },
    );
  };
  const stop = (signal: NodeJS.Signals, why: string = signal): void => {
    if (stopping) {
      // Under `npm start` a terminal's Ctrl-C arrives twice: from the terminal and relayed by npm.
      if (signal === stopping.signal && Date.now() - stopping.at < DUPLICATE_SIGNAL_MS) return;
      console.error(`tether: ${signal} again; exiting now`);
      process.exit(1);
    }
    stopping = { signal, at: Date.now() };
    console.error(`tether: ${why}: stopping workers and the server`);
    // A signal during start-up is honoured once the start finished (it may have launched workers).
    if (orchestrator) close(orchestrator);
  };
  // Installed before anything starts: a signal in the middle of the start still stops cleanly.
  // Node passes the signal's number as a second argument: not a reason.
  process.on("SIGTERM", (signal) => stop(signal));
  process.on("SIGINT", (signal) => stop(signal));

  let config: OrchestratorConfig | undefined;
  try {
    config = loadConfig(process.env);
    orchestrator = await startOrchestrator(config, { processMetrics: true });
  } catch (error) {
    console.error(startFailure(error, config));
    process.exit(1);
  }
  if (stopping) return close(orchestrator);
  printBanner(orchestrator);
  if (process.env.npm_lifecycle_event) {
    watchParent(() => {
      // Already stopping (npm forwarded a signal, then died): let that finish.
      if (!stopping) stop("SIGTERM", "the npm process that started it is gone");
    });
  }
}

/** The same signal again within this is the same request (see stop), not an "exit now". */
const DUPLICATE_SIGNAL_MS = 1000;
/** How often a server run by an npm script checks that npm is still its parent. */
const PARENT_CHECK_MS = 1000;

/**
 * Under `npm start` the parent is npm (the script execs node, so npm's
 * forwarded SIGINT/SIGTERM reach this process). If npm itself dies without
 * forwarding anything (SIGKILL, a crash) this process is re-parented: stop
 * then, rather than keep serving with nobody left to stop it.
 */
function watchParent(onOrphaned: () => void): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onOrphaned();
  }, PARENT_CHECK_MS);
  timer.unref();
}

/** What to print when the start fails: one actionable line where we know the cause, the error otherwise. */
function startFailure(error: unknown, config: OrchestratorConfig | undefined): unknown {
  if (error instanceof TetherError) return `tether: ${error.message} [${error.code}]${error.hint ? `\n  hint: ${error.hint}` : ""}`;
  const where = config ? `${config.host}:${config.port}` : "the configured address";
  switch (errnoCode(error)) {
    case "EADDRINUSE":
      return `tether: ${where} is already in use; set TETHER_PORT to a free port (or 0 to pick one), or stop what listens there.`;
    case "EACCES":
      return `tether: may not listen on ${where}; set TETHER_PORT to 1024 or above.`;
    case "EADDRNOTAVAIL":
      return `tether: ${where} is not an address of this machine; check TETHER_HOST.`;
    default:
      return error instanceof Error ? `tether: failed to start: ${error.stack ?? error.message}` : `tether: failed to start: ${String(error)}`;
  }
}

function printBanner(orchestrator: RunningOrchestrator): void {
  const lines = [`Tether orchestrator listening on ${orchestrator.url}`];
  const key = orchestrator.apiKey;
  if (key.source === "env") lines.push("API keys: from TETHER_API_KEYS");
  else if (key.key) lines.push(`API key (generated now, shown once; saved in ${key.path}):`, `  ${key.key}`);
  else lines.push(`API key: in ${key.path} (cat it to use it)`);
  const py = orchestrator.python;
  lines.push(`Python: ${py.python}${py.pythonVersion ? ` (${py.pythonVersion}, jupyter_server ${py.jupyterServer ?? "?"}, ipykernel ${py.ipykernel ?? "?"})` : ""}`);
  lines.push(`Sandbox: ${orchestrator.sandbox.description}`);
  for (const warning of orchestrator.sandbox.warnings) lines.push(`WARNING: ${warning}`);
  lines.push(`Try: curl -X POST -H "Authorization: Bearer <key>" ${orchestrator.url}/v1/sessions`);
  console.log(lines.join("\n"));
}

void main();
