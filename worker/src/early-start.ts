import { readFileSync, realpathSync, unlinkSync } from "node:fs";
import { freePort, kernelEnvironment, spawnJupyter, type SpawnedJupyter } from "./jupyter-launch.js";

/**
 * What main.ts does before it loads the rest of the worker (Node built-ins
 * only): take the join token file away, then spawn Jupyter Server, so Python
 * boots while Node loads @tether/shared, the agent and @jupyterlab/services
 * (~0.2 s and ~0.3 s here; the server and then its kernel are the critical
 * path of a start). Anything unusual (no TETHER_PYTHON, so a probe first; the
 * token on stdin; an unreadable token file or workspace) is left to the
 * normal path, which reports it.
 */
export interface EarlyStart {
  /** The token file's content, read (and the file unlinked) before Jupyter started. */
  tokenFile?: { path: string; content: string; unlinked: "removed" | string };
  /** The Jupyter Server process, spawned in the realpath of the workspace with TETHER_PYTHON. */
  jupyter?: { python: string; workspace: string; spawned: Promise<SpawnedJupyter> };
}

export function startEarly(env: NodeJS.ProcessEnv, cwd: string): EarlyStart {
  const python = env.TETHER_PYTHON?.trim();
  if (!python || env.TETHER_JOIN_TOKEN_STDIN?.trim() === "1") return {};
  const early: EarlyStart = {};
  const file = env.TETHER_JOIN_TOKEN_FILE?.trim();
  if (file) {
    let content: string;
    try {
      content = readFileSync(file, "utf8");
    } catch {
      return {};
    }
    let unlinked = "removed";
    try {
      unlinkSync(file);
    } catch (error) {
      unlinked = (error as NodeJS.ErrnoException).code ?? "failed";
    }
    early.tokenFile = { path: file, content, unlinked };
  }
  let workspace: string;
  try {
    workspace = realpathSync(env.TETHER_WORKSPACE?.trim() || cwd);
  } catch {
    return early;
  }
  const spawned = freePort().then((port) => spawnJupyter({ python, workspace, env: kernelEnvironment(env) }, port));
  spawned.catch(() => undefined); // startJupyterServer spawns anew when this failed
  early.jupyter = { python, workspace, spawned };
  return early;
}

/** Ends an early Jupyter Server nobody will use (the worker's config was invalid): it runs in its own process group and would outlive us. */
export async function abandonEarly(early: EarlyStart): Promise<void> {
  const spawned = await early.jupyter?.spawned.catch(() => undefined);
  const pid = spawned?.child.pid;
  if (pid === undefined || spawned?.exit) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}
