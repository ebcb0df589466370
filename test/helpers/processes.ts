import { readdir, readFile, readlink } from "node:fs/promises";

/** A live process as seen in /proc. */
export interface ProcessInfo {
  pid: number;
  /** argv joined with spaces. */
  cmdline: string;
}

/** Processes that make up a Tether run: workers, orchestrator children, Jupyter servers, kernels, the sandboxes around them. */
export const TETHER_PROCESS_PATTERN = /worker\/dist\/main\.js|orchestrator\/dist\/server\.js|jupyter|ipykernel|python|\bbwrap\b/;

async function listPids(): Promise<number[]> {
  const entries = await readdir("/proc");
  return entries.filter((name) => /^\d+$/.test(name)).map(Number);
}

async function readCmdline(pid: number): Promise<string | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return raw.split("\u0000").filter(Boolean).join(" ");
  } catch {
    return undefined; // the process exited while we looked
  }
}

async function readEnviron(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/environ`, "utf8");
    return raw.split("\u0000");
  } catch {
    return undefined;
  }
}

/** True while the process exists and is not a zombie waiting to be reaped. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // State is the field after the parenthesised command name.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * Live processes (other than this one) whose environment holds `name=value`.
 * Zombies are left out: they hold no resources and vanish when reaped.
 */
export async function processesWithEnvMarker(name: string, value: string): Promise<ProcessInfo[]> {
  const wanted = `${name}=${value}`;
  const found: ProcessInfo[] = [];
  for (const pid of await listPids()) {
    if (pid === process.pid) continue;
    const environ = await readEnviron(pid);
    if (!environ?.includes(wanted)) continue;
    if (!(await isAlive(pid))) continue;
    const cmdline = await readCmdline(pid);
    if (cmdline !== undefined) found.push({ pid, cmdline });
  }
  return found;
}

/**
 * Live processes whose working directory or environment points inside `dir`
 * (unsandboxed kernels run with the workspace as cwd, workers get it in
 * TETHER_WORKSPACE), or that have a mount of something inside it (a sandboxed
 * worker, Jupyter and kernel see their workspace at /mnt/data, bind-mounted
 * from the data dir: their cwd and environment name only /mnt/data).
 */
export async function processesUsingDirectory(dir: string): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  const source = await mountSourceOf(dir);
  for (const pid of await listPids()) {
    if (pid === process.pid) continue;
    let uses = false;
    try {
      const cwd = await readlink(`/proc/${pid}/cwd`);
      uses = cwd === dir || cwd.startsWith(`${dir}/`);
    } catch {
      // exited, or not ours to read
    }
    if (!uses) uses = (await readEnviron(pid))?.some((entry) => entry.includes(dir)) ?? false;
    if (!uses && source) uses = await mountsFrom(pid, source);
    if (!uses || !(await isAlive(pid))) continue;
    const cmdline = await readCmdline(pid);
    if (cmdline !== undefined) found.push({ pid, cmdline });
  }
  return found;
}

/**
 * Waits until `probe` finds no process, checking /proc every 100 ms (there is
 * no event for "a process of someone else's tree exited"). Returns what is
 * still alive after `timeoutMs`, so the caller can fail with the list.
 */
export async function waitUntilNoProcesses(probe: () => Promise<ProcessInfo[]>, timeoutMs: number): Promise<ProcessInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = await probe();
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until `pid` has exited; false if it is still alive after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const left = await waitUntilNoProcesses(async () => ((await isAlive(pid)) ? [{ pid, cmdline: "" }] : []), timeoutMs);
  return left.length === 0;
}

export function describeProcesses(processes: ProcessInfo[]): string {
  return processes.map((p) => `  pid ${p.pid}: ${p.cmdline}`).join("\n");
}

/** Last-resort cleanup after a failed assertion, so one leak does not poison later tests. */
export function killProcesses(processes: ProcessInfo[]): void {
  for (const p of processes) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

interface MountSource {
  /** `major:minor` of the filesystem holding the directory. */
  device: string;
  /** The directory's path inside that filesystem (what mountinfo's root field shows for a bind mount of it). */
  root: string;
}

interface MountInfoLine {
  device: string;
  root: string;
  mountPoint: string;
}

function parseMountInfo(text: string): MountInfoLine[] {
  const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(" ");
      return { device: fields[2] ?? "", root: unescape(fields[3] ?? ""), mountPoint: unescape(fields[4] ?? "") };
    });
}

/** Where `dir` lives: the mount that holds it in our mount namespace, and its path inside that filesystem. */
async function mountSourceOf(dir: string): Promise<MountSource | undefined> {
  let mounts: MountInfoLine[];
  try {
    mounts = parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"));
  } catch {
    return undefined;
  }
  const holding = mounts
    .filter((m) => dir === m.mountPoint || dir.startsWith(m.mountPoint === "/" ? "/" : `${m.mountPoint}/`))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0];
  if (!holding) return undefined;
  const rest = holding.mountPoint === "/" ? dir : dir.slice(holding.mountPoint.length);
  return { device: holding.device, root: `${holding.root.replace(/\/$/, "")}${rest}` || "/" };
}

async function mountsFrom(pid: number, source: MountSource): Promise<boolean> {
  try {
    const mounts = parseMountInfo(await readFile(`/proc/${pid}/mountinfo`, "utf8"));
    return mounts.some((m) => m.device === source.device && (m.root === source.root || m.root.startsWith(`${source.root}/`)));
  } catch {
    return false;
  }
}

/** Kernel code printing the kernel's PID namespace and its pid there (sandboxed kernels see their own pid numbers). */
export const KERNEL_PID_CODE = "import os\nprint(os.readlink('/proc/self/ns/pid'), os.getpid())";

/**
 * The host pid of a process that printed `pid:[<inode>] <pid>` (KERNEL_PID_CODE): the
 * process in that PID namespace whose innermost pid is that one. In the host's own
 * namespace it is the same number.
 */
export async function hostPidOf(printed: string): Promise<number> {
  const [namespace, nsPidText] = printed.trim().split(/\s+/);
  const nsPid = Number(nsPidText);
  if (!namespace?.startsWith("pid:[") || !Number.isInteger(nsPid)) throw new Error(`Not a namespace and pid: '${printed}'.`);
  for (const pid of await listPids()) {
    try {
      if ((await readlink(`/proc/${pid}/ns/pid`)) !== namespace) continue;
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      const innermost = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).pop();
      if (Number(innermost) === nsPid) return pid;
    } catch {
      // exited, or not ours to read
    }
  }
  throw new Error(`No process with pid ${nsPid} in ${namespace} (it has exited?).`);
}
