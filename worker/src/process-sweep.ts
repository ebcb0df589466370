import { readdir, readFile } from "node:fs/promises";

/**
 * SIGKILLs every process whose environment holds `name=value` (Linux /proc;
 * elsewhere it finds nothing). Kernels run in their own session, out of reach
 * of a process-group kill; the marker they inherit still names them.
 * Returns how many it hit.
 */
export async function killProcessesMarked(name: string, value: string): Promise<number> {
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return 0;
  }
  const needle = Buffer.from(`${name}=${value}\0`);
  let killed = 0;
  await Promise.all(
    entries.map(async (entry) => {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) return;
      try {
        const environ = await readFile(`/proc/${entry}/environ`);
        const at = environ.indexOf(needle);
        // Must start a variable: at offset 0 or right after a NUL.
        if (at !== 0 && !(at > 0 && environ[at - 1] === 0)) return;
        process.kill(Number(entry), "SIGKILL");
        killed += 1;
      } catch {
        // Gone already, or not ours to read.
      }
    }),
  );
  return killed;
}
