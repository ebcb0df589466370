import { readdir, readFile } from "node:fs/promises";

/**
 * Finds processes whose environment holds `TETHER_LAUNCH_ID=<launchId>`.
 * Jupyter starts kernels in their own session, so a process-group kill can
 * miss them; the launch id every descendant inherits still names them.
 * Linux only; elsewhere it finds nothing.
 */
export async function findLaunchProcesses(launchId: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return [];
  }
  const needle = Buffer.from(`TETHER_LAUNCH_ID=${launchId}\0`);
  const pids: number[] = [];
  await Promise.all(
    entries.map(async (entry) => {
      if (!/^\d+$/.test(entry)) return;
      const pid = Number(entry);
      if (pid === process.pid) return;
      try {
        const environ = await readFile(`/proc/${entry}/environ`);
        const at = environ.indexOf(needle);
        // Must start a variable: either at offset 0 or right after a NUL.
        if (at === 0 || (at > 0 && environ[at - 1] === 0)) pids.push(pid);
      } catch {
        // Gone already, or not ours to read.
      }
    }),
  );
  return pids;
}

/** SIGKILLs every process of the launch still alive; returns how many it hit. */
export async function killLaunchStragglers(launchId: string): Promise<number> {
  let killed = 0;
  for (const pid of await findLaunchProcesses(launchId)) {
    try {
      process.kill(pid, "SIGKILL");
      killed += 1;
    } catch {
      // Exited between the scan and the kill.
    }
  }
  return killed;
}
