#!/usr/bin/env node
import { TetherError } from "@tether/shared";
import { loadConfig } from "./config.js";
import { startOrchestrator, type RunningOrchestrator } from "./start.js";

/** `node orchestrator/dist/server.js`: listen, print how to connect, stop cleanly on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let orchestrator: RunningOrchestrator;
  try {
    orchestrator = await startOrchestrator(loadConfig(process.env));
  } catch (error) {
    if (error instanceof TetherError) {
      console.error(`tether: ${error.message} [${error.code}]${error.hint ? `\n  hint: ${error.hint}` : ""}`);
    } else {
      console.error("tether: failed to start:", error);
    }
    process.exit(1);
  }
  printBanner(orchestrator);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.error(`tether: ${signal} again; exiting now`);
      process.exit(1);
    }
    stopping = true;
    console.error(`tether: ${signal}: stopping workers and the server`);
    orchestrator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("tether: error while stopping:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
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
