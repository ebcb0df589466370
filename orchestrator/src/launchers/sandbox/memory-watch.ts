import { readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";

/** How often the sandboxes' memory is summed. A scan of /proc takes ~1 ms with a hundred host processes. */
export const MEMORY_WATCH_INTERVAL_MS = 100;
/** After a kill, the sandbox is left alone this long so the memory can be freed before the next sum. */
const COOLDOWN_MS = 1000;
/** After a PSS sum that found the sandbox under its limit (its RSS sum was over: forked children), the next PSS sum waits this long. */
const PSS_RECHECK_MS = 1000;
const PAGE_BYTES = 4096;
const MiB = 1024 * 1024;

/** What the watch writes to `<run dir>/limit-kill.json` just before the kill; the worker reads it to explain the kernel's death. */
export interface LimitKillRecord {
  /** Epoch ms. */
  at: number;
  limit: "memory";
  /** The killed process's pid inside the sandbox (as the kernel's own os.getpid() says). */
  pid: number;
  limitMb: number;
  usedMb: number;
  /** Completes "the kernel was killed: …". */
  explanation: string;
}

interface Watched {
  launchId: string;
  /** Inode of the sandbox's PID namespace, as in `pid:[4026532182]`. */
  pidNamespace: string;
  limitMb: number;
  /** Host path of the record (the run dir is bound read-only into the sandbox). */
  recordPath: string;
  logger: Logger;
  quietUntil: number;
  /** A PSS sum is running (it reads smaps_rollup off the event loop). */
  measuring: boolean;
}

/**
 * Enforces each sandbox's memory limit on the sum of its processes' anonymous
 * memory (close to what cgroup v2's memory.max would count, which this
 * machine kind has no writable controller for): every 100 ms it groups host
 * processes by PID namespace (a process cannot leave its sandbox's, whatever
 * it does to its environment) and, over the limit, SIGKILLs the largest one,
 * normally the kernel, after leaving a record saying why. It runs in the
 * orchestrator, out of reach of code in the sandbox.
 *
 * Resident pages are counted proportionally (PSS): forked children share
 * their parent's pages copy-on-write, and summing each one's RSS counted a
 * kernel that forked 40 sleepers as 2 GB and killed Jupyter Server. PSS costs a
 * page-table walk (smaps_rollup), so it is read only when the cheap RSS sum
 * (always at least the PSS sum) is over the limit.
 */
export class MemoryWatch {
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;

  /** Starts watching the sandbox whose first process has host pid `initPid`; returns the function that stops it. */
  add(options: { launchId: string; initPid: number; limitMb: number; recordPath: string; logger: Logger }): () => void {
    let pidNamespace: string;
    try {
      pidNamespace = readlinkSync(`/proc/${options.initPid}/ns/pid`);
    } catch (error) {
      options.logger.warn({ err: error, pid: options.initPid }, "cannot watch the sandbox's memory: its first process is gone");
      return () => undefined;
    }
    const entry: Watched = { ...options, pidNamespace, quietUntil: 0, measuring: false };
    this.watched.set(options.launchId, entry);
    this.timer ??= setInterval(() => this.tick(), MEMORY_WATCH_INTERVAL_MS).unref();
    return () => {
      if (this.watched.get(options.launchId) !== entry) return;
      this.watched.delete(options.launchId);
      if (this.watched.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** One scan: sums every watched sandbox and kills over the limit. Exposed for tests. */
  tick(now = Date.now()): void {
    const byNamespace = new Map<string, Watched>();
    for (const entry of this.watched.values()) if (entry.quietUntil <= now && !entry.measuring) byNamespace.set(entry.pidNamespace, entry);
    if (byNamespace.size === 0) return;
    const members = new Map<Watched, string[]>();
    const rss = new Map<Watched, number>();
    for (const name of listPids()) {
      const entry = byNamespace.get(readNamespace(name) ?? "");
      if (!entry) continue;
      members.set(entry, [...(members.get(entry) ?? []), name]);
      rss.set(entry, (rss.get(entry) ?? 0) + anonymousResidentBytes(name));
    }
    for (const [entry, pids] of members) {
      if ((rss.get(entry) ?? 0) > entry.limitMb * MiB) void this.measure(entry, pids);
    }
  }

  /** The precise (PSS) sum, read off the event loop (~20 ms per GiB mapped); kills when it is over too. */
  private async measure(entry: Watched, pids: readonly string[]): Promise<void> {
    entry.measuring = true;
    try {
      const sizes = await Promise.all(pids.map(async (name) => ({ pid: Number(name), bytes: await proportionalAnonymousBytes(name) })));
      const totalBytes = sizes.reduce((sum, size) => sum + size.bytes, 0);
      const largest = sizes.reduce<{ pid: number; bytes: number } | undefined>((max, size) => (!max || size.bytes > max.bytes ? size : max), undefined);
      const now = Date.now();
      if (totalBytes <= entry.limitMb * MiB || !largest) {
        entry.quietUntil = now + PSS_RECHECK_MS;
        return;
      }
      entry.quietUntil = now + COOLDOWN_MS;
      const top = [...sizes].sort((a, b) => b.bytes - a.bytes).slice(0, 4).map((size) => ({ pid: size.pid, mb: Math.round(size.bytes / MiB), command: commandOf(size.pid) }));
      if (this.watched.get(entry.launchId) === entry) this.kill(entry, largest.pid, Math.round(totalBytes / MiB), now, top);
    } finally {
      entry.measuring = false;
    }
  }

  private kill(entry: Watched, hostPid: number, usedMb: number, now: number, top: readonly { pid: number; mb: number; command: string }[]): void {
    const record: LimitKillRecord = {
      at: now,
      limit: "memory",
      pid: namespacePid(hostPid) ?? hostPid,
      limitMb: entry.limitMb,
      usedMb,
      explanation: `the session's processes used ${usedMb} MiB, over its memory limit of ${entry.limitMb} MiB (TETHER_SANDBOX_MEMORY_MB)`,
    };
    try {
      // Written whole (rename) before the kill, so the worker finds it when it learns of the death.
      writeFileSync(`${entry.recordPath}.tmp`, JSON.stringify(record), { mode: 0o644 });
      renameSync(`${entry.recordPath}.tmp`, entry.recordPath);
    } catch (error) {
      entry.logger.warn({ err: error }, "could not write the limit-kill record");
    }
    try {
      process.kill(hostPid, "SIGKILL");
      entry.logger.warn({ pid: hostPid, sandboxPid: record.pid, usedMb, limitMb: entry.limitMb, largest: top }, "sandbox over its memory limit: killed its largest process");
    } catch {
      // It exited on its own meanwhile.
    }
  }
}

function listPids(): string[] {
  try {
    return readdirSync("/proc").filter((name) => name.charCodeAt(0) >= 48 && name.charCodeAt(0) <= 57);
  } catch {
    return [];
  }
}

function readNamespace(pid: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined; // exited, or not ours to look at
  }
}

/** smaps_rollup's Pss_Anon (Linux 5.9+; Pss before): anonymous pages, shared ones divided among their sharers. */
export async function proportionalAnonymousBytes(pid: string): Promise<number> {
  try {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, "latin1");
    const kb = /^Pss_Anon:\s+(\d+) kB/m.exec(text)?.[1] ?? /^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? "0";
    return Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** statm: resident minus shared (file-backed and shmem) pages; pages shared copy-on-write after a fork count in each process. */
export function anonymousResidentBytes(pid: string): number {
  try {
    const [, resident = "0", shared = "0"] = readFileSync(`/proc/${pid}/statm`, "latin1").split(" ");
    return Math.max(0, Number(resident) - Number(shared)) * PAGE_BYTES;
  } catch {
    return 0;
  }
}

/** The start of a process's command line, for the log. */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ").slice(0, 80);
  } catch {
    return "";
  }
}

/** The pid inside the innermost namespace (last NSpid field). */
function namespacePid(hostPid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${hostPid}/status`, "latin1").split("\n").find((l) => l.startsWith("NSpid:"));
    const last = line?.trim().split(/\s+/).pop();
    return last ? Number(last) : undefined;
  } catch {
    return undefined;
  }
}
